/**
 * Who may use the shim, with `kubeshim serve` as a real process and real kubectl: the listener
 * token (and that it never travels upstream), client certificates, Host and Origin checks (DNS
 * rebinding, cross-origin WebSockets), path lists, the non-loopback listen rule — and that
 * credentials stay where they belong: the one the shim injects never reaches the client or the
 * log, the client's own never reaches the log (debug level, every line searched).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { type KubectlVersion, type KubeEnv, makeKubeEnv, runKubectl } from '../support/kubectl.js';
import { runCli, type ServeProcess, startServe } from '../support/processes.js';
import { startTap, type Tap } from '../support/tap.js';

const INJECTED = 'upstream-injected-secret-5f0c1e';
const LISTENER = 'listener-token-7d2a9b';
const CLIENT = 'client-own-token-3e8f41';

let dir: string;
/** Dev CA, server and client certificates (certs/make-certs.sh). */
let certs: string;
let caData: string;
let emu: Emulator;
/** Between the shim and the emulator: everything the upstream was sent. */
let tap: Tap;
const started: ServeProcess[] = [];
const envs: KubeEnv[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-access-'));
  certs = join(dir, 'certs');
  const made = spawnSync('certs/make-certs.sh', [certs], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(made.status, 0, made.stderr);
  caData = await readFile(join(certs, 'ca.crt'), 'utf8');
  emu = await startEmulator({ generation: 'legacy', auth: { token: INJECTED } });
  tap = await startTap(emu.port);
});

after(async () => {
  for (const s of started) await s.stop();
  for (const e of envs) await e.cleanup();
  await tap?.close();
  await emu?.close();
  await rm(dir, { recursive: true, force: true });
});

async function kubeEnv(server: string, opts: Parameters<typeof makeKubeEnv>[1] = {}): Promise<KubeEnv> {
  const e = await makeKubeEnv(server, opts);
  envs.push(e);
  return e;
}

/**
 * `kubeshim serve` at debug level, its upstream the tap in front of the emulator, with the injected
 * credential unless told otherwise.
 */
async function serve(args: string[], opts: { inject?: boolean } = {}): Promise<ServeProcess> {
  const upstream = await kubeEnv(tap.url, opts.inject === false ? {} : { token: INJECTED });
  const s = await startServe(['--kubeconfig', upstream.kubeconfig, '--log-level', 'debug', ...args], {
    PATH: process.env.PATH,
    HOME: upstream.home,
  });
  started.push(s);
  return s;
}

/** TLS on the listener: kubectl sends bearer tokens only over https. */
const TLS = () => ['--tls-cert', join(certs, 'server.crt'), '--tls-key', join(certs, 'server.key')];

function kubectl(version: KubectlVersion, kube: KubeEnv, args: string[], input?: string) {
  return runKubectl(version, args, { env: kube.env, input, timeoutMs: 30_000 });
}

function request(url: string, headers: http.OutgoingHttpHeaders): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    (url.startsWith('https:') ? https : http)
      .get(url, { headers, ca: caData }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

/** A WebSocket handshake's answer: 101, or the refusal's status. */
function wsHandshake(url: string, headers: Record<string, string>, extra: string[] = []): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['v5.channel.k8s.io', ...extra], {
      headers,
      perMessageDeflate: false,
      ca: caData,
    });
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode!);
      res.resume();
    });
    ws.once('error', reject);
  });
}

describe('a listener token (--token-file)', () => {
  let shim: ServeProcess;
  before(async () => {
    const file = join(dir, 'listener-token');
    await writeFile(file, `${LISTENER}\n`, { mode: 0o600 });
    shim = await serve(['--token-file', file, ...TLS()]);
  });

  test('kubectl with the token: exec over WebSocket (translated) and SPDY (relayed), get; the token never goes upstream', async () => {
    const kube = await kubeEnv(shim.url, { token: LISTENER, caData });
    const ws = await kubectl('1.33', kube, ['exec', '-i', 'demo', '--', 'cat'], 'over websocket\n');
    assert.equal(ws.code, 0, ws.stderr);
    assert.equal(ws.stdout.toString(), 'over websocket\n');
    const spdy = await kubectl('1.28', kube, ['exec', '-i', 'demo', '--', 'cat'], 'over spdy\n');
    assert.equal(spdy.code, 0, spdy.stderr);
    assert.equal(spdy.stdout.toString(), 'over spdy\n');
    const get = await kubectl('1.33', kube, ['get', 'pods', '-v=8']);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout.toString(), /demo/);
    const upstreamSaw = tap.text();
    assert.ok(upstreamSaw.includes(INJECTED), 'the shim authenticated upstream with its own credential');
    assert.ok(!upstreamSaw.includes(LISTENER), 'the listener token crossed to the upstream');
    // -v=8 prints response headers: nothing of the injected credential comes back to the client
    assert.ok(!get.stderr.includes(INJECTED) && !get.stdout.toString().includes(INJECTED));
  });

  test('without the token, or with another: 401 for kubectl, plain requests and WebSocket upgrades', async () => {
    // (kubectl without any credential asks for a password on stdin instead of trying)
    const kube = await kubeEnv(shim.url, { token: 'not-the-token', caData });
    const r = await kubectl('1.33', kube, ['get', 'pods']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Unauthorized|provide credentials/i);
    const e = await kubectl('1.28', kube, ['exec', 'demo', '--', 'true']);
    assert.notEqual(e.code, 0);
    assert.match(e.stderr, /Unauthorized|provide credentials/i);
    assert.equal((await request(`${shim.url}/api`, {})).status, 401);
    const wsUrl = `${shim.url.replace('https', 'wss')}/api/v1/namespaces/default/pods/demo/exec?command=true&stdout=true`;
    assert.equal(await wsHandshake(wsUrl, {}), 401);
    assert.equal(await wsHandshake(wsUrl, { authorization: `Bearer ${LISTENER}` }), 101);
    const bearer = `base64url.bearer.authorization.k8s.io.${Buffer.from(LISTENER).toString('base64url')}`;
    assert.equal(await wsHandshake(wsUrl, {}, [bearer]), 101, 'the browser way (§1.3)');
  });

  test('the log, at debug level, holds neither the listener token nor the injected credential', () => {
    const log = shim.output();
    assert.ok(log.includes('"msg":"session"'), 'sessions were logged');
    assert.ok(log.includes('request denied'), 'refusals were logged');
    assert.ok(!log.includes(LISTENER), 'listener token in the log');
    assert.ok(!log.includes(INJECTED), 'injected credential in the log');
  });
});

describe('Host and Origin', () => {
  let shim: ServeProcess;
  before(async () => {
    shim = await serve([]);
  });

  test('a foreign Host (DNS rebinding) is refused; the loopback names pass', async () => {
    const version = `${shim.url}/version`;
    assert.equal((await request(version, { host: 'attacker.example' })).status, 403);
    assert.equal((await request(version, { host: 'attacker.example:8001' })).status, 403);
    const ok = await request(version, { host: `localhost:${new URL(shim.url).port}` });
    assert.equal(ok.status, 200, ok.body);
  });

  test('a cross-origin WebSocket is refused; without Origin (kubectl) or from an allowed one it passes', async () => {
    const url = `${shim.url.replace('http', 'ws')}/api/v1/namespaces/default/pods/demo/exec?command=true&stdout=true`;
    assert.equal(await wsHandshake(url, { origin: 'https://attacker.example' }), 403);
    assert.equal(await wsHandshake(url, { origin: 'null' }), 403);
    assert.equal(await wsHandshake(url, { origin: 'http://localhost:3000' }), 101);
    assert.equal(await wsHandshake(url, {}), 101);
    const kube = await kubeEnv(shim.url);
    const r = await kubectl('1.33', kube, ['exec', 'demo', '--', 'echo', 'same origin']);
    assert.equal(r.code, 0, r.stderr);
  });

  test('--accept-hosts replaces the default list (the listen host stays)', async () => {
    const named = await serve(['--accept-hosts', '^shim\\.internal$']);
    const version = `${named.url}/version`;
    assert.equal((await request(version, { host: 'shim.internal:1234' })).status, 200);
    assert.equal((await request(version, { host: 'localhost' })).status, 403);
    assert.equal((await request(version, { host: new URL(named.url).host })).status, 200);
  });
});

describe('paths', () => {
  test("--reject-paths like kubectl proxy's default refuses exec (403) and serves the rest", async () => {
    const shim = await serve(['--reject-paths', '^/api/.*/pods/.*/exec,^/api/.*/pods/.*/attach']);
    const kube = await kubeEnv(shim.url);
    for (const version of ['1.28', '1.33'] as const) {
      const r = await kubectl(version, kube, ['exec', 'demo', '--', 'true']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Forbidden|does not serve the path/);
    }
    const get = await kubectl('1.33', kube, ['get', 'pods']);
    assert.equal(get.code, 0, get.stderr);
  });

  test('by default exec and attach are served (unlike kubectl proxy)', async () => {
    const shim = await serve([]);
    const kube = await kubeEnv(shim.url);
    const r = await kubectl('1.33', kube, ['exec', 'demo', '--', 'echo', 'served']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'served\n');
  });
});

describe('listening off loopback', () => {
  test('is refused without TLS and client authentication, and allowed with --insecure-listen-anywhere', async () => {
    const home = await kubeEnv(tap.url);
    const env = { PATH: process.env.PATH, HOME: home.home };
    const r = await runCli(['serve', '--listen', '0.0.0.0:0', '--upstream', emu.url], env);
    assert.equal(r.code, 1);
    assert.match(r.stdout.toString() + r.stderr, /reachable from other hosts.*--insecure-listen-anywhere/);
    const tlsOnly = await runCli(
      ['serve', '--listen', '0.0.0.0:0', '--upstream', emu.url, '--tls-cert', 'x', '--tls-key', 'y'],
      env,
    );
    assert.match(tlsOnly.stdout.toString() + tlsOnly.stderr, /--client-ca or --token-file/);
    const anywhere = await serve(['--listen', '0.0.0.0:0', '--insecure-listen-anywhere']);
    assert.match(anywhere.url, /^http:\/\/0\.0\.0\.0:\d+$/);
  });
});

describe('client certificates (--client-ca)', () => {
  test('kubectl with a certificate from the CA gets in over TLS; without one it is refused (401), probes are not', async () => {
    const read = (f: string) => readFile(join(certs, f), 'utf8');
    const shim = await serve(['--listen', '0.0.0.0:0', ...TLS(), '--client-ca', join(certs, 'ca.crt')]);
    const url = `https://127.0.0.1:${new URL(shim.url).port}`;
    const withCert = await kubeEnv(url, {
      caData,
      clientCertData: await read('client.crt'),
      clientKeyData: await read('client.key'),
    });
    for (const version of ['1.28', '1.33'] as const) {
      const r = await kubectl(version, withCert, ['exec', '-i', 'demo', '--', 'cat'], 'mtls\n');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), 'mtls\n');
    }
    // (with a token, so that kubectl reports the 401 instead of prompting for a user name)
    const without = await kubeEnv(url, { caData, token: CLIENT });
    for (const args of [
      ['get', 'pods'],
      ['exec', 'demo', '--', 'true'],
    ]) {
      const r = await kubectl('1.33', without, args);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Unauthorized|client certificate|must be logged in/i, args.join(' '));
    }
    // container probes bring no certificate: the probe paths answer them
    const probe = (path: string) =>
      new Promise<number>((resolve, reject) =>
        https
          .get(`${url}${path}`, { ca: caData }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on('error', reject),
      );
    assert.equal(await probe('/healthz'), 200);
    assert.equal(await probe('/readyz'), 200);
    assert.equal(await probe('/api'), 401);
  });
});

describe("the client's own credentials (passed through)", () => {
  test('reach the upstream and never the log, at debug level', async () => {
    const shim = await serve(TLS(), { inject: false });
    const kube = await kubeEnv(shim.url, { token: INJECTED, caData });
    const ws = await kubectl('1.33', kube, ['exec', '-i', 'demo', '--', 'cat'], 'mine\n');
    assert.equal(ws.code, 0, ws.stderr);
    const spdy = await kubectl('1.28', kube, ['exec', '-i', 'demo', '--', 'cat'], 'mine\n');
    assert.equal(spdy.code, 0, spdy.stderr);
    const wrong = await kubeEnv(shim.url, { token: CLIENT, caData });
    const denied = await kubectl('1.33', wrong, ['exec', 'demo', '--', 'true']);
    assert.notEqual(denied.code, 0, 'the upstream refused a wrong token');
    const log = shim.output();
    assert.ok(log.includes('"msg":"session"'));
    assert.ok(!log.includes(INJECTED) && !log.includes(CLIENT), 'a client credential is in the log');
  });
});
