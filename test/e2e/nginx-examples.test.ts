/**
 * The proxy examples, started as they are written with only their addresses changed: nginx and
 * HAProxy in front of kubeshim carry kubectl exec and port-forward over SPDY and WebSocket; the
 * WebSocket-only nginx carries WebSocket and strips SPDY; examples/two-shims.sh runs end to end.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { type KubectlVersion, kubectlPath, makeKubeEnv, runKubectl, runProcess } from '../support/kubectl.js';
import { echoThroughPortForward } from '../support/port-forward.js';
import { type ProxyProcess, REPO, requireProgram, startProxy } from '../support/processes.js';
import { startTestShim, type TestShim } from '../support/shim.js';
import { waitFor } from '../support/wait.js';

/** An example with its listen address (127.0.0.1:8080) and backend (127.0.0.1:8001) replaced. */
function example(file: string, port: number, backend: string): string {
  return readFileSync(join(REPO, 'examples', file), 'utf8')
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`)
    .replaceAll('127.0.0.1:8001', new URL(backend).host);
}

async function exec(version: KubectlVersion, server: string) {
  const kube = await makeKubeEnv(server);
  try {
    return await runKubectl(version, ['exec', '-i', 'demo', '--', 'cat'], {
      env: kube.env,
      input: `through ${version}\n`,
      timeoutMs: 20_000,
    });
  } finally {
    await kube.cleanup();
  }
}

async function assertCarries(server: string, portForward: KubectlVersion): Promise<void> {
  for (const version of ['1.27', '1.33'] as const) {
    const r = await exec(version, server);
    assert.equal(r.code, 0, `kubectl ${version}: ${r.stderr}`);
    assert.equal(r.stdout.toString(), `through ${version}\n`);
  }
  const kube = await makeKubeEnv(server);
  try {
    const { sent, echoed, output } = await echoThroughPortForward(portForward, kube.env);
    assert.equal(echoed, sent, output);
  } finally {
    await kube.cleanup();
  }
}

describe('in front of kubeshim (a legacy cluster behind it)', () => {
  let emu: Emulator;
  let shim: TestShim;
  let nginx: ProxyProcess;
  let haproxy: ProxyProcess;
  before(async () => {
    emu = await startEmulator({ generation: 'legacy' });
    shim = await startTestShim(emu.url, 'auto');
    nginx = await startProxy('nginx', (port) => example('nginx/kubeshim.conf', port, shim.url));
    haproxy = await startProxy('haproxy', (port) => example('haproxy/kubeshim.cfg', port, shim.url));
  });
  after(async () => {
    await nginx?.stop();
    await haproxy?.stop();
    await shim?.close();
    await emu?.close();
  });

  test('nginx/kubeshim.conf carries SPDY and WebSocket exec, and the port-forward tunnel', async () => {
    await assertCarries(nginx.url, '1.33');
    // both kubectl reached the shim in their own protocol through nginx
    await waitFor('the port-forward session line', () => shim.sessionLines().length === 3);
    const clients = shim.sessionLines().map((l) => String(l['client']).split('/')[0]);
    assert.deepEqual(clients, ['spdy', 'websocket', 'websocket']);
  });

  test('haproxy/kubeshim.cfg carries SPDY and WebSocket exec, and SPDY port-forward', async () => {
    const before = shim.sessionLines().length;
    await assertCarries(haproxy.url, '1.27');
    await waitFor('the port-forward session line', () => shim.sessionLines().length === before + 3);
    const clients = shim
      .sessionLines()
      .slice(before)
      .map((l) => String(l['client']).split('/')[0]);
    assert.deepEqual(clients, ['spdy', 'websocket', 'spdy']);
  });
});

describe('nginx/websocket-only.conf in front of a 1.33 cluster', () => {
  let emu: Emulator;
  let nginx: ProxyProcess;
  before(async () => {
    emu = await startEmulator({ generation: 'modern' });
    nginx = await startProxy('nginx', (port) => example('nginx/websocket-only.conf', port, emu.url));
  });
  after(async () => {
    await nginx?.stop();
    await emu?.close();
  });

  test('WebSocket exec passes; SPDY reaches the API server without its Upgrade', async () => {
    const ws = await exec('1.33', nginx.url);
    assert.equal(ws.code, 0, ws.stderr);
    assert.equal(ws.stdout.toString(), 'through 1.33\n');
    const spdy = await exec('1.27', nginx.url);
    assert.equal(spdy.code, 1);
    assert.match(spdy.stderr, /Error from server \(BadRequest\): Upgrade request required/);
  });
});

test('examples/two-shims.sh: kubectl 1.27 over SPDY through two shims and a WebSocket-only nginx', async () => {
  requireProgram('nginx');
  const r = await runProcess(join(REPO, 'examples/two-shims.sh'), [], {
    env: { PATH: process.env.PATH, HOME: '/nonexistent', KUBECTL: kubectlPath('1.27') },
    timeoutMs: 60_000,
  });
  const out = r.stdout.toString();
  assert.equal(r.code, 0, `${out}\n${r.stderr}`);
  assert.match(out, /^ {3}hello through two shims$/m);
  assert.match(out, /^ {3}piped stdin$/m);
  const count = (re: RegExp) => out.split('\n').filter((l) => re.test(l)).length;
  assert.equal(
    count(/kubeshim A +exec: client spdy\/v4\.channel\.k8s\.io → upstream websocket\/v5\.channel\.k8s\.io/),
    2,
  );
  assert.equal(count(/nginx +GET \/api\/v1\/namespaces\/default\/pods\/demo\/exec → 101/), 2);
  assert.equal(
    count(/kubeshim B +exec: client websocket\/v5\.channel\.k8s\.io → upstream spdy\/v4\.channel\.k8s\.io/),
    2,
  );
  assert.equal(count(/API server +exec over spdy, v4\.channel\.k8s\.io/), 2);
});
