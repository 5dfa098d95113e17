/**
 * `npm run build:binary`: kubeshim as one file (Node's single executable, Node 26 inside), run with
 * nothing else: no node on PATH, no node_modules. --version, the plugin name, and serve in front of
 * the emulator with a real kubectl exec through it, stderr clean.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { kubectlPath, makeKubeEnv, runKubectl, runProcess } from '../support/kubectl.js';
import { REPO, startServe } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

let work: string;
let binary: string;
let env: NodeJS.ProcessEnv;
let emulator: Emulator;
let version: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kubeshim-sea-'));
  binary = join(work, 'bin', 'kubeshim');
  execFileSync(join(REPO, 'scripts/build-binary.sh'), [binary], {
    cwd: REPO,
    timeout: 300_000,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  version = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  // no node anywhere on PATH: the binary carries its own
  env = { PATH: [dirname(binary), dirname(kubectlPath('1.36'))].join(':'), HOME: work };
  assert.throws(() => execFileSync('/bin/sh', ['-c', 'command -v node'], { env }), 'node is not on PATH');
  emulator = await startEmulator({ generation: 'legacy' });
});
after(async () => {
  await emulator?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

test('the binary: --version from the define, run from a directory without node_modules', async () => {
  const r = await runProcess(binary, ['--version'], { env, cwd: work, timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), `kubeshim ${version}\n`);
  assert.equal(r.stderr, '', 'no experimental-feature or deprecation warning');
  assert.ok((await stat(binary)).size > 50 * 1024 * 1024, 'Node itself is inside');
});

test('the binary as kubectl-shim: kubectl shim version and usage', async () => {
  await copyFile(binary, join(dirname(binary), 'kubectl-shim'));
  const r = await runProcess(kubectlPath('1.36'), ['shim', 'help'], { env, timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.toString(), /^ {2}kubectl shim serve /m);
});

test('the binary serves: kubectl 1.36 exec through it to a legacy cluster (fallback to SPDY), recorded, stderr clean', async () => {
  // recording runs a thread of its own, whose module the binary carries as an asset
  const casts = join(work, 'casts');
  const serve = await startServe(['--upstream', emulator.url, '--record-dir', casts], env, {
    command: [binary],
  });
  const kube = await makeKubeEnv(serve.url);
  try {
    const r = await runKubectl('1.36', ['exec', '-i', 'demo', '--', 'sh', '-c', 'cat; exit 4'], {
      env: kube.env,
      input: 'one file\n',
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stdout.toString(), 'one file\n');
    const line = await waitFor(
      'the session line',
      () => serve.lines().find((l) => l['msg'] === 'session'),
      5000,
    );
    assert.equal(line['client'], 'websocket/v5.channel.k8s.io');
    assert.equal(line['upstream'], 'spdy/v4.channel.k8s.io');
    assert.equal(line['exitCode'], 4);
    const [cast] = await waitFor('the recording', async () => {
      const files = (await readdir(casts).catch(() => [])).filter((f) => f.endsWith('.cast'));
      if (files.length === 0) return undefined;
      const text = await readFile(join(casts, files[0]!), 'utf8');
      return text.includes('exit code 4') ? [text] : undefined;
    });
    assert.match(cast!, /"o", ?"one file\\n"/);
    const metrics = await (await fetch(`${serve.url}/metrics`)).text();
    assert.match(metrics, /^kubeshim_fallbacks_total\{subresource="exec",reason="[^"]+"\} 1$/m);
  } finally {
    await serve.stop();
    await kube.cleanup();
  }
  const noise = serve
    .output()
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('{'));
  assert.deepEqual(noise, []);
});
