/**
 * Slots and sockets always come back. With --max-sessions 1, a client resets at each step of the
 * handshake — before the upstream answers (which then switches protocols, or refuses), while the
 * shim turns the upstream's 101 into its own (the WebSocket accept of a translation), and after the
 * session began — for SPDY, WebSocket v5, the port-forward tunnel, legacy port-forward and other
 * upgrades, relayed and translated. The upstream holds each answer until the test has seen the shim
 * notice the reset, so every step is hit exactly, not by timing luck; a client that leaves while the
 * upstream never answers (a reset; for WebSocket clients, their end too) has the dial abandoned at
 * once, and the recording opened for it deleted
 * (every shim here records). After each: no place of the
 * limit taken, no session registered, the active gauge at 0, no connection open on either side, and
 * the next client gets in.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/observe/logger.js';
import { Metrics } from '../../src/observe/metrics.js';
import { Recorder } from '../../src/record/recorder.js';
import type { UpstreamMode } from '../../src/upstream/choice.js';
import { type HeldUpstream, startHeldUpstream } from '../support/held-upstream.js';
import { startTestShim, type TestShim } from '../support/shim.js';
import { waitFor } from '../support/wait.js';

const POD = '/api/v1/namespaces/default/pods/p';
const WS_HEAD = (path: string, protocol: string) =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
  `${protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : ''}\r\n`;
const SPDY_HEAD = (path: string, protocol: string) =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`;

interface Case {
  name: string;
  head: string;
  /** The shim's --upstream-protocol for this path through it. */
  mode: UpstreamMode;
  /** What the upstream switches to. */
  answer: string;
}

const EXEC = `${POD}/exec?command=sh&stdin=1&stdout=1`;
const CASES: Case[] = [
  {
    name: 'SPDY exec, relayed',
    head: SPDY_HEAD(EXEC, 'v4.channel.k8s.io'),
    mode: 'spdy',
    answer: 'v4.channel.k8s.io',
  },
  {
    name: 'SPDY exec → WebSocket',
    head: SPDY_HEAD(EXEC, 'v4.channel.k8s.io'),
    mode: 'websocket',
    answer: 'v5.channel.k8s.io',
  },
  {
    name: 'WebSocket v5 exec, relayed',
    head: WS_HEAD(EXEC, 'v5.channel.k8s.io'),
    mode: 'websocket',
    answer: 'v5.channel.k8s.io',
  },
  {
    name: 'WebSocket v5 exec → SPDY',
    head: WS_HEAD(EXEC, 'v5.channel.k8s.io'),
    mode: 'spdy',
    answer: 'v4.channel.k8s.io',
  },
  {
    name: 'tunnel, relayed',
    head: WS_HEAD(`${POD}/portforward`, 'SPDY/3.1+portforward.k8s.io'),
    mode: 'websocket',
    answer: 'SPDY/3.1+portforward.k8s.io',
  },
  {
    name: 'tunnel → SPDY',
    head: WS_HEAD(`${POD}/portforward`, 'SPDY/3.1+portforward.k8s.io'),
    mode: 'spdy',
    answer: 'portforward.k8s.io',
  },
  {
    name: 'legacy port-forward → SPDY',
    head: WS_HEAD(`${POD}/portforward?ports=80`, 'v4.channel.k8s.io'),
    mode: 'spdy',
    answer: 'portforward.k8s.io',
  },
  { name: 'other upgrade, relayed', head: WS_HEAD('/api/v1/watch/pods', ''), mode: 'auto', answer: '' },
];

let upstream: HeldUpstream;
const shims = new Map<UpstreamMode, { shim: TestShim; metrics: Metrics }>();

let recordDir: string;
const recorders: Recorder[] = [];

before(async () => {
  upstream = await startHeldUpstream();
  recordDir = await mkdtemp(join(tmpdir(), 'kubeshim-slots-'));
  for (const mode of ['auto', 'spdy', 'websocket'] as const) {
    const metrics = new Metrics();
    // recording on: a recording opened for a client that leaves early must be given back too
    const recorder = await Recorder.create({ recordDir, log: createLogger({ level: 'silent' }) });
    recorders.push(recorder);
    const shim = await startTestShim(upstream.url, mode, { maxSessions: 1, metrics, recorder });
    shims.set(mode, { shim, metrics });
  }
});

after(async () => {
  for (const { shim } of shims.values()) await shim.close();
  for (const recorder of recorders) await recorder.close();
  await upstream?.close();
  await rm(recordDir, { recursive: true, force: true });
});

const recordings = async () => (await readdir(recordDir)).length;

function connect(shim: TestShim, head: string): { socket: net.Socket; received: () => string } {
  const socket = net.connect(Number(new URL(shim.url).port), '127.0.0.1');
  let text = '';
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  socket.on('error', () => {});
  socket.write(head);
  return { socket, received: () => text };
}

const connections = (shim: TestShim) =>
  new Promise<number>((resolve, reject) =>
    shim.server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );

async function gauge(metrics: Metrics): Promise<number> {
  const m = await metrics.registry.getSingleMetric('kubeshim_sessions_active')!.get();
  return m.values.reduce((sum, v) => sum + v.value, 0);
}

/** Everything given back: places, sessions, the gauge, connections on both sides. */
async function allReturned(shim: TestShim, metrics: Metrics, what: string): Promise<void> {
  await waitFor(
    `${what}: everything given back`,
    async () =>
      shim.placesTaken() === 0 &&
      shim.sessions.size === 0 &&
      (await gauge(metrics)) === 0 &&
      (await connections(shim)) === 0 &&
      upstream.open.size === 0,
    10_000,
  ).catch(async (err: Error) => {
    const state = `places ${shim.placesTaken()}, sessions ${shim.sessions.size}, gauge ${await gauge(metrics)}, shim connections ${await connections(shim)}, upstream connections ${upstream.open.size}`;
    throw new Error(`${err.message} (${state})`);
  });
}

/** The client resets; returns once the shim has seen its connection close. */
async function reset(shim: TestShim, socket: net.Socket): Promise<void> {
  socket.resetAndDestroy();
  await waitFor('the shim to see the reset', async () => (await connections(shim)) === 0, 10_000, 5);
}

for (const c of CASES) {
  describe(c.name, () => {
    test('reset before the upstream answers, which then switches protocols', async () => {
      const { shim, metrics } = shims.get(c.mode)!;
      const client = connect(shim, c.head);
      const held = await upstream.next();
      await reset(shim, client.socket);
      held.answer101(c.answer);
      await allReturned(shim, metrics, 'after the late 101');
    });

    // a SPDY client may end its side and still read (dialFor): only a WebSocket client's end is leaving
    const leaving: [string, (socket: net.Socket) => void][] = [
      ['resets', (socket) => socket.resetAndDestroy()],
    ];
    if (c.head.includes('Upgrade: websocket')) leaving.push(['ends its side', (socket) => socket.end()]);
    for (const [how, leave] of leaving)
      test(`a client that ${how} while the upstream has not answered: the dial is abandoned at once`, async () => {
        const { shim, metrics } = shims.get(c.mode)!;
        const before = await recordings();
        const client = connect(shim, c.head);
        await upstream.next(); // never answered: only the shim can close it
        leave(client.socket);
        // within 10 s, where the handshake timeout is 30 s
        await allReturned(shim, metrics, 'without an answer');
        await waitFor(
          'the recording opened for it deleted',
          async () => (await recordings()) === before,
          10_000,
        );
        client.socket.destroy();
      });

    test('reset before the upstream answers, which then refuses: no second attempt is dialed', async () => {
      const { shim, metrics } = shims.get('auto')!;
      const client = connect(shim, c.head);
      const held = await upstream.next();
      const dialed = upstream.received;
      await reset(shim, client.socket);
      held.refuse(403);
      await allReturned(shim, metrics, 'after the refusal');
      assert.equal(upstream.received, dialed, 'no fallback dialed for a client that left');
    });

    test('reset after the session began', async () => {
      const { shim, metrics } = shims.get(c.mode)!;
      const client = connect(shim, c.head);
      const held = await upstream.next();
      held.answer101(c.answer);
      await waitFor('the client 101', () => client.received().startsWith('HTTP/1.1 101'), 10_000, 5);
      await reset(shim, client.socket);
      await allReturned(shim, metrics, 'after the session');
    });
  });
}
