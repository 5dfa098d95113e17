/**
 * `kubeshim serve --secure-local`, as a real process with real kubectl: the kubeconfig it writes is
 * all kubectl needs (the generated CA, the listener's token), over WebSocket (1.36) and SPDY (1.27);
 * without the token the listener answers 401, over plain HTTP it does not answer at all; the files
 * are its owner's only; a restart keeps the material, so a kubeconfig written before still works;
 * material that others can read is made anew. Flags it cannot go with are refused.
 */
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadYaml } from '@kubernetes/client-node';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { type KubectlVersion, type KubeEnv, makeKubeEnv, runKubectl } from '../support/kubectl.js';
import { runCli, type ServeProcess, startServe } from '../support/processes.js';
import { freePort, waitFor } from '../support/wait.js';

const INJECTED = 'secure-local-injected-4b9d2e';

let emu: Emulator;
/** The source kubeconfig (the injected credential), and the HOME whose state directory serve uses. */
let source: KubeEnv;
let state: string;
let port: number;
const started: ServeProcess[] = [];

/** serve's line after `listening` that says where the kubeconfig is: it may arrive a little later. */
function secureLocalLine(shim: ServeProcess): Promise<Record<string, unknown>> {
  return waitFor('the secure local mode line', () =>
    shim.lines().find((l) => String(l['msg']).startsWith('secure local mode')),
  );
}

before(async () => {
  emu = await startEmulator({ generation: 'legacy', auth: { token: INJECTED } });
  source = await makeKubeEnv(emu.url, { token: INJECTED });
  state = join(source.home, '.kubeshim', 'secure-local');
  port = await freePort();
});

after(async () => {
  for (const s of started) await s.stop();
  await source?.cleanup();
  await emu?.close();
});

async function serve(args: string[] = []): Promise<ServeProcess> {
  const s = await startServe(
    ['--secure-local', '--listen', `127.0.0.1:${port}`, '--kubeconfig', source.kubeconfig, ...args],
    { PATH: process.env.PATH, HOME: source.home },
  );
  started.push(s);
  return s;
}

/** kubectl with nothing but `kubeconfig`: its own empty HOME, no other file. */
async function kubectl(version: KubectlVersion, kubeconfig: string, args: string[], input?: string) {
  const home = await mkdtemp(join(tmpdir(), 'kubeshim-kubectl-home-'));
  try {
    return await runKubectl(version, args, {
      env: { PATH: process.env.PATH, HOME: home, KUBECONFIG: kubeconfig },
      input,
      timeoutMs: 30_000,
    });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

async function execCat(kubeconfig: string, text: string) {
  for (const version of ['1.36', '1.27'] as const) {
    const r = await kubectl(version, kubeconfig, ['exec', '-i', 'demo', '--', 'cat'], `${text} ${version}\n`);
    assert.equal(r.code, 0, `kubectl ${version}: ${r.stderr}`);
    assert.equal(r.stdout.toString(), `${text} ${version}\n`);
  }
}

function get(url: string, opts: https.RequestOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    (url.startsWith('https:') ? https : http)
      .get(url, opts, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      })
      .on('error', reject);
  });
}

const modeOf = async (file: string) => (await stat(file)).mode & 0o777;

describe('serve --secure-local', () => {
  let shim: ServeProcess;
  let kubeconfig: string;
  let token: string;
  let ca: string;

  before(async () => {
    shim = await serve();
    kubeconfig = join(state, 'kubeconfig');
    token = (await readFile(join(state, 'token'), 'utf8')).trim();
    ca = await readFile(join(state, 'ca.crt'), 'utf8');
  });

  test('the listening line and the next one say where the kubeconfig is', async () => {
    assert.equal(shim.url, `https://127.0.0.1:${port}`);
    const lines = shim.lines();
    const listening = lines.find((l) => l['msg'] === 'listening')!;
    assert.equal(listening['kubeconfig'], kubeconfig);
    const info = await secureLocalLine(shim);
    assert.equal(info['kubeconfig'], kubeconfig);
    assert.equal(info['generated'], true);
    assert.ok(!shim.output().includes(token), 'the token is in the log');
  });

  test('kubectl 1.36 (WebSocket) and 1.27 (SPDY) exec with only the written kubeconfig', async () => {
    const written = loadYaml(await readFile(kubeconfig, 'utf8')) as {
      clusters: { cluster: Record<string, string> }[];
      users: { user: Record<string, string> }[];
    };
    assert.equal(written.clusters[0]!.cluster['server'], shim.url);
    assert.equal(
      Buffer.from(written.clusters[0]!.cluster['certificate-authority-data']!, 'base64').toString(),
      ca,
    );
    assert.deepEqual(written.users[0]!.user, { token });
    assert.ok(token.length >= 43, 'at least 32 random bytes');
    await execCat(kubeconfig, 'secure local');
  });

  test('without the token, or with another: 401', async () => {
    assert.equal(await get(`${shim.url}/api`, { ca }), 401);
    assert.equal(await get(`${shim.url}/api`, { ca, headers: { authorization: 'Bearer not-it' } }), 401);
    assert.equal(await get(`${shim.url}/api`, { ca, headers: { authorization: `Bearer ${token}` } }), 200);
  });

  test('with the token over plain HTTP: no answer', async () => {
    await assert.rejects(
      get(`http://127.0.0.1:${port}/api`, { headers: { authorization: `Bearer ${token}` } }),
      /socket hang up|ECONNRESET/,
    );
  });

  test('the directory is 0700, its files 0600', async () => {
    assert.equal(await modeOf(state), 0o700);
    for (const f of ['ca.crt', 'tls.crt', 'tls.key', 'token', 'kubeconfig'])
      assert.equal(await modeOf(join(state, f)), 0o600, f);
  });

  test('a restart keeps the material: a kubeconfig written before still works', async () => {
    const kept = join(source.home, 'kept-kubeconfig');
    await copyFile(kubeconfig, kept);
    const before = await Promise.all(
      ['ca.crt', 'tls.crt', 'tls.key', 'token'].map((f) => readFile(join(state, f))),
    );
    await shim.stop();
    shim = await serve();
    const info = await secureLocalLine(shim);
    assert.equal(info['generated'], false);
    const now = await Promise.all(
      ['ca.crt', 'tls.crt', 'tls.key', 'token'].map((f) => readFile(join(state, f))),
    );
    assert.deepEqual(now, before);
    await execCat(kept, 'after a restart');
  });

  test('a token others can read is not trusted: everything is made anew, --write-kubeconfig is used', async () => {
    await shim.stop();
    await chmod(join(state, 'token'), 0o644);
    const elsewhere = join(source.home, 'elsewhere.yaml');
    shim = await serve(['--write-kubeconfig', elsewhere]);
    const info = await secureLocalLine(shim);
    assert.equal(info['generated'], true);
    assert.equal(info['kubeconfig'], elsewhere);
    assert.equal(await modeOf(join(state, 'token')), 0o600);
    assert.notEqual((await readFile(join(state, 'token'), 'utf8')).trim(), token);
    assert.equal(await modeOf(elsewhere), 0o600);
    const r = await kubectl('1.36', kubeconfig, ['get', 'pods']);
    assert.notEqual(r.code, 0, 'the kubeconfig of the old material still works');
    await execCat(elsewhere, 'new material');
  });
});

describe('serve --secure-local refuses', () => {
  const refusals: [string, string[], RegExp][] = [
    [
      'its own TLS and token flags',
      ['--secure-local', '--token-file', '/dev/null'],
      /leave out --token-file/,
    ],
    ['a listener off the loopback', ['--secure-local', '--listen', '0.0.0.0:0'], /loopback only/],
    ['--write-kubeconfig without it', ['--write-kubeconfig', '/tmp/x'], /goes with --secure-local/],
  ];
  for (const [name, args, message] of refusals) {
    test(name, async () => {
      const r = await runCli(['serve', '--kubeconfig', source.kubeconfig, ...args], {
        PATH: process.env.PATH,
        HOME: source.home,
      });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    });
  }

  test('credentials that pass through: nothing to guard, and the token would take their place', async () => {
    const r = await runCli(['serve', '--secure-local', '--listen', '127.0.0.1:0', '--upstream', emu.url], {
      PATH: process.env.PATH,
      HOME: source.home,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /--secure-local guards the credentials kubeshim injects/);
  });
});
