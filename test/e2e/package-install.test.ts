/**
 * The npm package as a user gets it: `npm pack` builds it (prepack), `npm install -g` from the
 * tarball into a temporary prefix puts `kubeshim` and `kubectl-shim` on PATH, and they run on plain
 * Node (no tsx, no development dependencies): --version, serve in front of the emulator with a real
 * kubectl exec through it, and the kubectl plugin form (`kubectl shim serve`, `kubectl shim doctor`).
 * Installed without optional dependencies, as a machine without a compiler installs it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { kubectlPath, makeKubeEnv, runKubectl, runProcess } from '../support/kubectl.js';
import { linkNode } from '../support/node.js';
import { REPO, type ServeProcess, startServe } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

const PKG = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  files: string[];
  bin: Record<string, string>;
};

let work: string;
let tarball: string;
let prefix: string;
/** PATH with only node, kubectl and the installed package's bin. */
let env: NodeJS.ProcessEnv;
/** The same with Node 24 as `node`. */
let env24: NodeJS.ProcessEnv;
let emulator: Emulator;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kubeshim-package-'));
  const npm = {
    ...process.env,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
  const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', work], {
    cwd: REPO,
    env: npm,
    encoding: 'utf8',
    timeout: 240_000,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .pop()!;
  tarball = join(work, name);
  prefix = join(work, 'prefix');
  execFileSync('npm', ['install', '-g', '--prefix', prefix, '--omit=optional', '--prefer-offline', tarball], {
    cwd: work,
    env: npm,
    timeout: 240_000,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const bin = join(prefix, 'bin');
  const kubectlDir = dirname(kubectlPath('1.36'));
  env = {
    PATH: [bin, dirname(process.execPath), kubectlDir, '/usr/bin', '/bin'].join(':'),
    HOME: work,
    LANG: 'C.UTF-8',
  };
  const node24 = await linkNode('24', await mkdtemp(join(work, 'node24-')));
  env24 = { ...env, PATH: [bin, node24, kubectlDir, '/usr/bin', '/bin'].join(':') };
  emulator = await startEmulator({ generation: 'modern' });
});
after(async () => {
  await emulator?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

const installed = () => join(prefix, 'lib', 'node_modules', 'kubeshim');

test('the tarball holds the built program, README, LICENSE, docs, examples and certs, not the sources', () => {
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
  const expected = ['dist/cli.js', 'dist/commands/serve.js', 'README.md', 'LICENSE', 'package.json'];
  // the docs that the README and the code's comments cite
  for (const f of [...expected, 'docs/protocols.md', 'docs/design.md'])
    assert.ok(files.includes(`package/${f}`), f);
  assert.ok(
    files.some((f) => f.startsWith('package/examples/krew/')),
    'the krew manifest',
  );
  assert.ok(
    files.some((f) => f.startsWith('package/certs/')),
    'certs/',
  );
  assert.ok(
    !files.some((f) => /^package\/(src|test|bench|node_modules)\//.test(f)),
    'no sources, tests or modules',
  );
  assert.match(readFileSync(join(installed(), 'dist/cli.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/);
  // the image runs the package's contents unpacked in /opt/kubeshim
  const entry = /^ENTRYPOINT \["node", "\/opt\/kubeshim\/(.+)"\]$/m.exec(
    readFileSync(join(REPO, 'Dockerfile'), 'utf8'),
  );
  assert.ok(entry, 'the Dockerfile ENTRYPOINT runs a file of the package');
  assert.ok(files.includes(`package/${entry[1]}`), `${entry[1]} is in the tarball`);
  for (const bin of Object.values(PKG.bin)) assert.ok(files.includes(`package/${bin}`), bin);
});

// (npm puts node-pty's files there even with --omit=optional on a global install, unbuilt: the
// emulator then reports terminals as unavailable, which test/e2e/demo-without-terminals covers)
test('installed: runtime dependencies only, no tsx, no TypeScript', () => {
  const modules = readdirSync(join(installed(), 'node_modules'));
  for (const dev of ['tsx', 'typescript', 'esbuild', '@biomejs', 'fast-check', 'spdy'])
    assert.ok(!modules.includes(dev), `${dev} is installed`);
  for (const dep of Object.keys(PKG.dependencies))
    assert.ok(existsSync(join(installed(), 'node_modules', dep)), `${dep} is missing`);
});

test('kubeshim --version on plain node, 20 and 24', async () => {
  for (const e of [env, env24]) {
    const r = await runProcess(join(prefix, 'bin', 'kubeshim'), ['--version'], { env: e, timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), `kubeshim ${PKG.version}\n`);
    assert.equal(r.stderr, '');
  }
});

/** kubectl 1.36 exec through a running serve: stdin to cat and back, and the shim's session line. */
async function execThrough(serve: ServeProcess): Promise<void> {
  const kube = await makeKubeEnv(serve.url);
  try {
    const r = await runKubectl('1.36', ['exec', '-i', 'demo', '--', 'cat'], {
      env: kube.env,
      input: 'through the package\n',
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'through the package\n');
    const line = await waitFor(
      'the session line',
      () => serve.lines().find((l) => l['msg'] === 'session'),
      5000,
    );
    assert.equal(line['subresource'], 'exec');
  } finally {
    await kube.cleanup();
  }
}

test('kubeshim serve on Node 24 in front of the emulator: a real kubectl exec through it, stderr clean', async () => {
  // (kubectl's GET of the pod is the first proxied request: http-proxy's DEP0060 would show here)
  const serve = await startServe(['--upstream', emulator.url], env24, {
    command: [join(prefix, 'bin', 'kubeshim')],
  });
  try {
    await execThrough(serve);
  } finally {
    await serve.stop();
  }
  const noise = serve
    .output()
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('{'));
  assert.deepEqual(noise, [], 'only JSON log lines, no warnings');
});

describe('the kubectl plugin: kubectl-shim on PATH', () => {
  test('kubectl shim --help names the plugin form', async () => {
    const r = await runProcess(kubectlPath('1.36'), ['shim', '--help'], { env, timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), /^ {2}kubectl shim serve /m);
    assert.match(r.stdout.toString(), /Run 'kubectl shim <command> --help'/);
    const v = await runProcess(kubectlPath('1.36'), ['shim', 'version'], { env, timeoutMs: 20_000 });
    assert.equal(v.stdout.toString(), `kubeshim ${PKG.version}\n`);
  });

  test('kubectl plugin list finds it', async () => {
    const r = await runProcess(kubectlPath('1.36'), ['plugin', 'list'], { env, timeoutMs: 20_000 });
    assert.match(r.stdout.toString(), /kubectl-shim$/m, r.stderr);
  });

  test('kubectl shim serve: a real kubectl exec through it', async () => {
    const serve = await startServe(['--upstream', emulator.url], env, {
      command: [kubectlPath('1.36'), 'shim'],
    });
    try {
      await execThrough(serve);
    } finally {
      await serve.stop();
    }
  });

  test('kubectl shim doctor: the emulator passes every streaming probe', async () => {
    const r = await runProcess(
      kubectlPath('1.36'),
      ['shim', 'doctor', '--upstream', emulator.url, '--pod', 'demo', '--output', 'json'],
      { env, timeoutMs: 60_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout.toString()) as { probes: { id: string; verdict: string }[] };
    assert.ok(report.probes.length >= 4);
    for (const p of report.probes) assert.equal(p.verdict, 'pass', p.id);
  });
});
