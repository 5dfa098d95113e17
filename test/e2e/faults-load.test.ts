/**
 * 10,000 sessions opened and closed through the shim — WebSocket v5 clients translated to SPDY, SPDY
 * clients relayed and translated to WebSocket v5, 50 at a time, against a scripted upstream that
 * speaks both — leave no open handles and no
 * memory behind: handles by type are back to where they were, the heap (after full collections)
 * and RSS grow by no more than a few MiB, and no session is left registered.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { CH_ERROR, CH_STDOUT } from '../../src/channel/codec.js';
import { acceptWebSocket, createWebSocketServer } from '../../src/channel/ws-accept.js';
import { SUCCESS_STATUS_JSON } from '../../src/k8s/status.js';
import { createLogger } from '../../src/observe/logger.js';
import { type Shim, startShim } from '../../src/server/listener.js';
import { SpdySession, type SpdyStream } from '../../src/spdy/session.js';
import { connectSpdyExec, connectWsExec } from '../support/exec-clients.js';
import { activeResources, MiB, settledHeap } from '../support/memory.js';
import { waitFor, withTimeout } from '../support/wait.js';

const EXEC = '/api/v1/namespaces/default/pods/p/exec?command=hi&stdout=true&stderr=true';
const SESSIONS = 10_000;
const CONCURRENCY = 50;

// The test harness must keep nothing per session either: a counting log sink, an upstream that
// remembers nothing (test/support's keep every line and request, which is what their tests want).
let upstream: http.Server;
/** WebSocket clients translated to SPDY; SPDY clients relayed. */
let shim: Shim;
/** SPDY clients translated to WebSocket v5 (the upstream answers both protocols). */
let wsShim: Shim;
let sessionLines = 0;
const agent = new http.Agent({ keepAlive: true });

before(async () => {
  upstream = http.createServer();
  const wss = createWebSocketServer();
  upstream.on('upgrade', (req, socket, head) => {
    socket.on('error', () => {});
    if (/websocket/i.test(String(req.headers.upgrade))) {
      void acceptWebSocket(wss, req, socket, head, 'v5.channel.k8s.io').then((ws) => {
        ws.on('error', () => {});
        ws.resume();
        ws.send(Buffer.from([CH_STDOUT]));
        ws.send(Buffer.from([CH_STDOUT, 0x68, 0x69]));
        ws.send(Buffer.concat([Buffer.from([CH_ERROR]), Buffer.from(SUCCESS_STATUS_JSON)]));
        ws.close(1000);
      });
      return;
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n',
    );
    const session = new SpdySession(socket, { role: 'server', head });
    const streams = new Map<string, SpdyStream>();
    session.on('stream', (stream) => {
      stream.reply();
      streams.set(stream.streamType ?? '', stream);
      if (streams.size < 3) return;
      streams.get('stdout')!.write('hi');
      streams.get('error')!.write(SUCCESS_STATUS_JSON);
      session.close();
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      if (chunk.includes('"msg":"session"')) sessionLines++;
      done();
    },
  });
  const log = createLogger({ level: 'info', destination: sink, pretty: false });
  const target = {
    url: new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`),
    agent,
    authHeaders: async () => ({}),
    injectsCredentials: false,
  };
  shim = await startShim({ host: '127.0.0.1', port: 0, mode: 'spdy', log, target });
  wsShim = await startShim({ host: '127.0.0.1', port: 0, mode: 'websocket', log, target });
});

after(async () => {
  await shim?.close();
  await wsShim?.close();
  upstream?.close();
  agent.destroy();
});

/** One short session, in turn: WebSocket translated to SPDY, SPDY relayed, SPDY translated to WebSocket. */
async function oneSession(i: number): Promise<void> {
  if (i % 3 === 0) {
    const c = await connectWsExec(`${shim.url.replace(/^http/, 'ws')}${EXEC}`, ['v5.channel.k8s.io']);
    const r = await withTimeout(c.done, 5000, `session ${i}`);
    assert.equal(r.closeCode, 1000);
    assert.equal(c.text(CH_STDOUT), 'hi');
    assert.equal(c.text(CH_ERROR), SUCCESS_STATUS_JSON);
  } else {
    const c = await connectSpdyExec(
      `${i % 3 === 1 ? shim.url : wsShim.url}${EXEC}`,
      ['v4.channel.k8s.io'],
      ['error', 'stdout', 'stderr'],
    );
    const [out, error] = await withTimeout(
      Promise.all([c.read('stdout'), c.read('error')]),
      5000,
      `session ${i}`,
    );
    assert.equal(out.toString(), 'hi');
    assert.equal(error.toString(), SUCCESS_STATUS_JSON);
    c.socket.destroy();
  }
}

async function run(count: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await oneSession(next++);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await waitFor(
    'every session to be unregistered',
    () => shim.sessions.size + wsShim.sessions.size === 0,
    5000,
  );
}

/** Handle counts once the last sockets have closed (their close events come a tick later). */
async function settledResources(): Promise<Record<string, number>> {
  await new Promise((r) => setTimeout(r, 300));
  return activeResources();
}

test(`${SESSIONS.toLocaleString('en')} sessions opened and closed: no growth in handles or memory`, async () => {
  await run(1000); // warm-up: pools, JIT, agents
  const handlesBefore = await settledResources();
  const heapBefore = await settledHeap();
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  await run(SESSIONS);
  const seconds = (performance.now() - started) / 1000;
  const handlesAfter = await settledResources();
  const heapAfter = await settledHeap();
  const rssAfter = process.memoryUsage().rss;
  const figures = {
    seconds: seconds.toFixed(1),
    perSecond: Math.round(SESSIONS / seconds),
    heapGrowthMiB: ((heapAfter - heapBefore) / MiB).toFixed(2),
    rssGrowthMiB: ((rssAfter - rssBefore) / MiB).toFixed(1),
    handlesBefore,
    handlesAfter,
  };
  process.stdout.write(`# ${JSON.stringify(figures)}\n`);
  assert.equal(sessionLines, 1000 + SESSIONS);
  for (const kind of ['TCPSocketWrap', 'TCPServerWrap'])
    assert.equal(handlesAfter[kind] ?? 0, handlesBefore[kind] ?? 0, `${kind}: ${JSON.stringify(figures)}`);
  assert.ok((handlesAfter['Timeout'] ?? 0) <= (handlesBefore['Timeout'] ?? 0) + 5, JSON.stringify(figures));
  assert.ok(heapAfter - heapBefore < 8 * MiB, JSON.stringify(figures));
  assert.ok(rssAfter - rssBefore < 64 * MiB, JSON.stringify(figures));
});
