/**
 * Cluster generations refuse what their real counterparts refuse, the way those refuse it, so
 * that real kubectl behaves as it does in reality: falls back to SPDY where it would (and the
 * emulator records the refused first try), or fails with the error users see today.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type Emulator, type Generation, startEmulator } from '../../src/emulator/index.js';
import {
  type KubectlVersion,
  type KubeEnv,
  makeKubeEnv,
  runKubectl,
  startKubectl,
} from '../support/kubectl.js';
import { freePort, waitFor, withTimeout } from '../support/wait.js';

interface Cluster {
  emu: Emulator;
  kube: KubeEnv;
}

function cluster(generation: Generation): () => Cluster {
  let c: Cluster | undefined;
  before(async () => {
    const emu = await startEmulator({ generation });
    c = { emu, kube: await makeKubeEnv(emu.url) };
  });
  after(async () => {
    await c?.emu.close();
    await c?.kube.cleanup();
  });
  return () => c!;
}

async function gitVersion(emu: Emulator): Promise<string> {
  const res = await fetch(`${emu.url}/version`);
  return ((await res.json()) as { gitVersion: string }).gitVersion;
}

async function catHi(c: Cluster, version: KubectlVersion) {
  return runKubectl(version, ['exec', '-i', 'demo', '--', 'cat'], { env: c.kube.env, input: 'hi\n' });
}

/** kubectl `version`'s exec (`cat`) and port-forward (to the echo port) both work. */
async function execAndForward(c: Cluster, version: KubectlVersion): Promise<void> {
  const r = await catHi(c, version);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString(), 'hi\n');
  const { echoed } = await forwardEcho(c, version);
  assert.equal(echoed, 'ping\n');
}

/** Port-forward to the echo port, send a line, return what came back (and the kubectl output). */
async function forwardEcho(c: Cluster, version: KubectlVersion): Promise<{ echoed: string; output: string }> {
  const local = await freePort();
  const pf = startKubectl(version, ['port-forward', 'demo', `${local}:8080`], { env: c.kube.env });
  try {
    await waitFor('port-forward to listen', () => pf.output().includes('Forwarding from 127.0.0.1'), 15_000);
    const echoed = await withTimeout(
      new Promise<string>((resolve, reject) => {
        let text = '';
        const s = net.connect(local, '127.0.0.1', () => s.end('ping\n'));
        s.on('data', (d: Buffer) => {
          text += d.toString();
        });
        s.on('error', reject);
        s.on('close', () => resolve(text));
      }),
      15_000,
      'echo through port-forward',
    );
    return { echoed, output: pf.output() };
  } finally {
    await pf.stop();
  }
}

describe('legacy (1.28): kubectl 1.33 falls back to SPDY', () => {
  const c = cluster('legacy');

  test('/version is a 1.28', async () => {
    assert.match(await gitVersion(c().emu), /^v1\.28\./);
  });

  test('exec: the v5 WebSocket gets the CRI 403, the SPDY retry works', async () => {
    const r = await catHi(c(), '1.33');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'hi\n');
    const s = await c().emu.waitForSession((x) => x.subresource === 'exec');
    assert.equal(s.protocol, 'v4.channel.k8s.io');
    assert.equal(s.transport, 'spdy');
    const refused = c().emu.refusals.find((x) => x.subresource === 'exec');
    assert.deepEqual(
      { code: refused?.code, transport: refused?.transport, offered: refused?.offered },
      { code: 403, transport: 'websocket', offered: ['v5.channel.k8s.io'] },
    );
  });

  test('port-forward: the tunnel gets the kubelet 400, the SPDY retry works', async () => {
    const { echoed } = await forwardEcho(c(), '1.33');
    assert.equal(echoed, 'ping\n');
    const s = await c().emu.waitForSession((x) => x.subresource === 'portforward');
    assert.equal(s.protocol, 'portforward.k8s.io');
    const refused = c().emu.refusals.find((x) => x.subresource === 'portforward');
    assert.equal(refused?.code, 400);
    assert.equal(refused?.reason, 'query parameter "port" is required');
  });
});

describe('spdy: every WebSocket upgrade refused', () => {
  const c = cluster('spdy');

  test('kubectl 1.33 exec and port-forward fall back to SPDY', async () => {
    await execAndForward(c(), '1.33');
    assert.deepEqual(
      c().emu.sessions.map((s) => [s.subresource, s.transport]),
      [
        ['exec', 'spdy'],
        ['portforward', 'spdy'],
      ],
    );
    assert.deepEqual(
      c().emu.refusals.map((x) => [x.subresource, x.transport, x.code]),
      [
        ['exec', 'websocket', 403],
        ['portforward', 'websocket', 403],
      ],
    );
  });
});

describe('websocket: a path that carries only WebSocket', () => {
  const c = cluster('websocket');

  test('kubectl 1.27 exec fails with the error users see', async () => {
    const r = await catHi(c(), '1.27');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Error from server \(BadRequest\): Upgrade request required/);
    assert.equal(c().emu.sessions.length, 0);
    assert.equal(c().emu.refusals.at(-1)?.transport, 'spdy');
  });

  test('kubectl 1.27 port-forward fails at once, with the same reason', async () => {
    const local = await freePort();
    const r = await runKubectl('1.27', ['port-forward', 'demo', `${local}:8080`], {
      env: c().kube.env,
      timeoutMs: 15_000,
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error upgrading connection: Upgrade request required/);
    assert.equal(c().emu.sessions.length, 0);
  });

  test('kubectl 1.33 works over WebSocket v5 and the tunnel', async () => {
    await execAndForward(c(), '1.33');
    assert.deepEqual(
      c().emu.sessions.map((s) => s.protocol),
      ['v5.channel.k8s.io', 'SPDY/3.1+portforward.k8s.io'],
    );
  });
});
