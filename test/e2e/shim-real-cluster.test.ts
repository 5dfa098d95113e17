/**
 * `kubeshim serve` as a real process in front of a cluster that wants credentials — an HTTPS API
 * server demanding a client certificate, one demanding a bearer token, one behind an exec
 * credential plugin — with the credentials in the shim's kubeconfig only. Real kubectl, with the
 * kubeconfig `kubeshim kubeconfig` writes, execs and port-forwards; a wrong credential gives
 * kubectl the upstream's 401; the HTTPS listener is verified by kubectl against the CA; /metrics
 * counts the sessions.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runDoctor } from '../../src/doctor/doctor.js';
import { type Emulator, type Generation, startEmulator } from '../../src/emulator/index.js';
import { httpsGet } from '../support/https-get.js';
import { UNAUTHORIZED_BODY } from '../support/k8s-bodies.js';
import { type KubectlVersion, runKubectl } from '../support/kubectl.js';
import { echoThroughPortForward } from '../support/port-forward.js';
import { REPO, runCli, type ServeProcess, startServe } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

let dir: string;
let good: Certs;
let other: Certs;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-real-'));
  [good, other] = await Promise.all([makeCerts('good'), makeCerts('other')]);
});
after(() => rm(dir, { recursive: true, force: true }));

interface Certs {
  dir: string;
  ca: string;
  cert: string;
  key: string;
  clientCert: string;
  clientKey: string;
}

async function makeCerts(name: string): Promise<Certs> {
  const out = join(dir, name);
  const r = spawnSync(join(REPO, 'certs/make-certs.sh'), [out], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const read = (f: string) => readFile(join(out, f), 'utf8');
  return {
    dir: out,
    ca: await read('ca.crt'),
    cert: await read('server.crt'),
    key: await read('server.key'),
    clientCert: await read('client.crt'),
    clientKey: await read('client.key'),
  };
}

/** The shim's kubeconfig (JSON is YAML): the cluster, its CA, and `user` — the credentials. */
async function shimKubeconfig(name: string, server: string, user: Record<string, unknown>): Promise<string> {
  const path = join(dir, `${name}.kubeconfig`);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'real', cluster: { server, 'certificate-authority-data': b64(good.ca) } }],
    users: [{ name: 'someone', user }],
    contexts: [{ name: 'real', context: { cluster: 'real', user: 'someone', namespace: 'default' } }],
    'current-context': 'real',
  };
  await writeFile(path, JSON.stringify(config), { mode: 0o600 });
  return path;
}

/** A HOME of its own for each process: no ~/.kube/config, no $KUBECONFIG but the one given. */
async function home(): Promise<NodeJS.ProcessEnv> {
  return { PATH: process.env.PATH, HOME: await mkdtemp(join(dir, 'home-')), LANG: 'C.UTF-8' };
}

/** `kubeshim serve --kubeconfig shimKc [extra]`. */
async function serve(shimKc: string, extra: string[] = []): Promise<ServeProcess> {
  return startServe(['--kubeconfig', shimKc, ...extra], await home());
}

/** kubectl's environment, with the kubeconfig `kubeshim kubeconfig` writes for this shim. */
async function clientEnv(shim: ServeProcess, shimKc: string, tls: string[] = []): Promise<NodeJS.ProcessEnv> {
  const env = await home();
  const kubeconfig = join(env.HOME!, 'kubeconfig');
  const port = new URL(shim.url).port;
  const r = await runCli(
    ['kubeconfig', '--listen', `127.0.0.1:${port}`, '--kubeconfig', shimKc, '--output', kubeconfig, ...tls],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  return { ...env, KUBECONFIG: kubeconfig };
}

async function assertExec(version: KubectlVersion, env: NodeJS.ProcessEnv): Promise<void> {
  const r = await runKubectl(version, ['exec', '-i', 'demo', '--', 'cat'], {
    env,
    input: `hello from ${version}\n`,
    timeoutMs: 20_000,
  });
  assert.equal(r.code, 0, `kubectl ${version}: ${r.stderr}`);
  assert.equal(r.stdout.toString(), `hello from ${version}\n`);
}

async function assertPortForward(version: KubectlVersion, env: NodeJS.ProcessEnv): Promise<void> {
  const { sent, echoed, output } = await echoThroughPortForward(version, env);
  assert.equal(echoed, sent, output);
}

/**
 * kubectl fails with its words for a 401, and the Status behind them is the upstream's, as it was
 * sent (kubectl's own text depends on the request it was making).
 */
async function assertUnauthorized(shim: ServeProcess, env: NodeJS.ProcessEnv): Promise<void> {
  const r = await runKubectl('1.27', ['exec', 'demo', '--', 'true'], { env, timeoutMs: 20_000 });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /error: You must be logged in to the server \(the server has asked for the client to provide credentials\)/,
  );
  const res = await fetch(`${shim.url}/api/v1/namespaces/default/pods/demo`);
  assert.equal(res.status, 401);
  assert.deepEqual(await res.json(), UNAUTHORIZED_BODY);
}

function emulator(generation: Generation, opts: { token?: string; clientCert?: boolean }): Promise<Emulator> {
  return startEmulator({
    generation,
    tls: { cert: good.cert, key: good.key, ca: good.ca, requestClientCert: opts.clientCert === true },
    auth: opts.token ? { token: opts.token } : undefined,
  });
}

describe('an API server that demands a client certificate (legacy: kubectl 1.33 is translated to SPDY)', () => {
  let emu: Emulator;
  let shim: ServeProcess;
  let wrong: ServeProcess;
  let kc: string;
  let wrongKc: string;
  before(async () => {
    emu = await emulator('legacy', { clientCert: true });
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    kc = await shimKubeconfig('cert', emu.url, {
      'client-certificate-data': b64(good.clientCert),
      'client-key-data': b64(good.clientKey),
    });
    wrongKc = await shimKubeconfig('cert-wrong', emu.url, {
      'client-certificate-data': b64(other.clientCert),
      'client-key-data': b64(other.clientKey),
    });
    [shim, wrong] = await Promise.all([serve(kc), serve(wrongKc)]);
  });
  after(async () => {
    await Promise.all([shim?.stop(), wrong?.stop()]);
    await emu?.close();
  });

  test('kubectl 1.27 and 1.33 exec, 1.33 port-forwards, with the shim presenting the certificate', async () => {
    const env = await clientEnv(shim, kc);
    await assertExec('1.27', env);
    await assertExec('1.33', env);
    await assertPortForward('1.33', env);
    await emu.waitForSession((s) => s.subresource === 'portforward');
    assert.deepEqual(
      emu.sessions.map((s) => [s.subresource, s.transport]),
      [
        ['exec', 'spdy'],
        ['exec', 'spdy'],
        ['portforward', 'spdy'],
      ],
    );
  });

  test("a certificate from another CA: kubectl gets the upstream's 401, and so does an upgrade", async () => {
    await assertUnauthorized(wrong, await clientEnv(wrong, wrongKc));
    const report = await runDoctor({ upstream: wrong.url, pod: 'demo', timeoutMs: 5000 }, await home());
    for (const p of report.probes.slice(1)) assert.equal(p.answer, '401 Unauthorized', p.id);
  });
});

describe('an API server that demands a bearer token, behind the HTTPS listener', () => {
  let emu: Emulator;
  let shim: ServeProcess;
  let wrong: ServeProcess;
  let kc: string;
  let wrongKc: string;
  const tls = () => ['--tls-cert', join(good.dir, 'server.crt'), '--tls-key', join(good.dir, 'server.key')];
  before(async () => {
    emu = await emulator('modern', { token: 'the-right-token' });
    kc = await shimKubeconfig('token', emu.url, { token: 'the-right-token' });
    wrongKc = await shimKubeconfig('token-wrong', emu.url, { token: 'a-wrong-token' });
    [shim, wrong] = await Promise.all([serve(kc, tls()), serve(wrongKc)]);
  });
  after(async () => {
    await Promise.all([shim?.stop(), wrong?.stop()]);
    await emu?.close();
  });

  test('kubectl verifies the shim against the CA, execs and port-forwards; /metrics counts it all', async () => {
    assert.match(shim.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const env = await clientEnv(shim, kc, [
      '--tls-cert',
      join(good.dir, 'server.crt'),
      '--ca',
      join(good.dir, 'ca.crt'),
    ]);
    assert.match(await readFile(env.KUBECONFIG!, 'utf8'), /certificate-authority-data: /);
    for (const v of ['1.27', '1.33'] as const) {
      await assertExec(v, env);
      await assertPortForward(v, env);
    }
    const sum = (text: string, metric: string, labels: RegExp) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${metric}{`) && labels.test(l))
        .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    // the port-forward sessions end a moment after kubectl is stopped
    const metrics = await waitFor('both port-forward sessions counted', async () => {
      const text = await get(`${shim.url}/metrics`, good.ca);
      return sum(text, 'kubeshim_sessions_total', /subresource="portforward"/) === 2 && text;
    });
    assert.equal(sum(metrics, 'kubeshim_sessions_total', /subresource="exec".*outcome="success"/), 2);
    assert.equal(sum(metrics, 'kubeshim_upstream_upgrades_total', /subresource="exec".*result="ok"/), 2);
    assert.equal(sum(metrics, 'kubeshim_sessions_active', /./), 0);
    assert.ok(sum(metrics, 'kubeshim_session_bytes_total', /subresource="exec",.*direction="out"/) > 0);
    assert.equal(await get(`${shim.url}/healthz`, good.ca), 'ok\n');
  });

  test("doctor with the shim's kubeconfig reaches the upstream as serve does: TLS, token, every path", async () => {
    const report = await runDoctor({ kubeconfig: kc, pod: 'demo', timeoutMs: 5000 }, await home());
    assert.match(report.upstream, /context "real", auth: token/);
    assert.deepEqual(
      report.probes.map((p) => p.verdict),
      ['pass', 'pass', 'pass', 'pass', 'pass'],
    );
  });

  test("a wrong token: kubectl gets the upstream's 401", async () => {
    await assertUnauthorized(wrong, await clientEnv(wrong, wrongKc));
  });
});

describe('an API server behind an exec credential plugin (websocket: kubectl 1.27 is translated)', () => {
  let emu: Emulator;
  let shim: ServeProcess;
  let wrong: ServeProcess;
  let kc: string;
  let wrongKc: string;
  const counts = () => ({ right: join(dir, 'plugin-right.count'), wrong: join(dir, 'plugin-wrong.count') });
  const runs = async (file: string) =>
    (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
  before(async () => {
    emu = await emulator('websocket', { token: 'from-the-plugin' });
    const plugin = join(dir, 'plugin.sh');
    await writeFile(
      plugin,
      '#!/bin/sh\necho run >>"$COUNT"\nprintf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}\\n\' "$TOKEN"\n',
      { mode: 0o755 },
    );
    const exec = (token: string, count: string) => ({
      exec: {
        apiVersion: 'client.authentication.k8s.io/v1',
        command: plugin,
        env: [
          { name: 'TOKEN', value: token },
          { name: 'COUNT', value: count },
        ],
        interactiveMode: 'Never',
      },
    });
    kc = await shimKubeconfig('plugin', emu.url, exec('from-the-plugin', counts().right));
    wrongKc = await shimKubeconfig('plugin-wrong', emu.url, exec('not-the-token', counts().wrong));
    [shim, wrong] = await Promise.all([serve(kc), serve(wrongKc)]);
  });
  after(async () => {
    await Promise.all([shim?.stop(), wrong?.stop()]);
    await emu?.close();
  });

  test('kubectl 1.27 and 1.33 exec, 1.27 port-forwards; the plugin ran once for all of it', async () => {
    const env = await clientEnv(shim, kc);
    await assertExec('1.27', env);
    await assertExec('1.33', env);
    await assertPortForward('1.27', env);
    await emu.waitForSession((s) => s.subresource === 'portforward');
    assert.deepEqual(
      emu.sessions.map((s) => [s.subresource, s.transport]),
      [
        ['exec', 'websocket'],
        ['exec', 'websocket'],
        ['portforward', 'websocket'],
      ],
    );
    assert.equal(await runs(counts().right), 1);
  });

  test("a plugin with a wrong token: kubectl gets the upstream's 401, and the plugin runs again next time", async () => {
    const env = await clientEnv(wrong, wrongKc);
    await assertUnauthorized(wrong, env);
    // kubectl made several requests, the test one more: each 401 dropped the cached credential
    const n = await runs(counts().wrong);
    assert.ok(n >= 3, `${n} plugin runs`);
    assert.equal((await fetch(`${wrong.url}/version`)).status, 401);
    assert.equal(await runs(counts().wrong), n + 1);
  });
});

/** The body of a 200 answer to a GET over HTTPS trusting `ca`. */
async function get(url: string, ca: string): Promise<string> {
  const { status, body } = await httpsGet(url, ca);
  if (status !== 200) throw new Error(`${url}: ${status} ${body}`);
  return body;
}
