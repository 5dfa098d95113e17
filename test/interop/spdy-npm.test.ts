/**
 * Interop of our SPDY core with an independent JavaScript implementation: spdy-transport, the engine
 * of the npm `spdy` package (docs/design.md "The SPDY core"). It is an HTTP-over-SPDY/3.1 engine with
 * flow control, so only part of what Kubernetes peers do can work with it.
 *
 * What works, and is tested below:
 * - our client → spdy-transport server: streams opened with HTTP pseudo-headers, SYN_REPLY with its
 *   headers, header blocks decoded both ways across many frames (its own zlib stream and dictionary
 *   copy), our DATA of any size with FIN, its DATA up to 64 KiB with FIN, PING both ways, GOAWAY
 *   both ways;
 * - spdy-transport client → our server: its SYN_STREAM headers, its SETTINGS and WINDOW_UPDATE
 *   skipped, its PING echoed.
 *
 * What cannot work (measured here, asserted in the "limits" tests so a change shows):
 * - its sending stalls after exactly 65536 bytes per stream: it waits for WINDOW_UPDATE, which
 *   Kubernetes peers and we never send (docs/protocols.md §6.4);
 * - as a server it needs `:method` and `:path`: a Kubernetes-style SYN_STREAM (only `streamtype`)
 *   makes it fail the connection with "Missing `:method` and/or `:path` header" and never reply;
 * - as a client it needs `:status` in SYN_REPLY: our Kubernetes-style empty reply makes it reset the
 *   stream with PROTOCOL_ERROR, so nothing useful flows from it to us;
 * - the `spdy` package's HTTP layer on Node 20 (spdy.createServer plain) answers a stream, then
 *   resets it with CANCEL after its first write, and request bodies never reach the handler; so the
 *   tests drive spdy-transport's connection API directly.
 * - a GOAWAY whose last-good id is below its open streams (kubectl's is 0) makes every such stream
 *   emit 'error' ("New stream after GOAWAY"), which kills a program without an error listener; our
 *   close() resets streams before its GOAWAY, so it never triggers this.
 * It also never stops reading: 4 MiB written to a spdy-transport stream nobody reads went out
 * without our writer ever waiting, and without a FLOW_CONTROL_ERROR (no backpressure).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { type EventEmitter, once } from 'node:events';
import { createRequire } from 'node:module';
import { connect, createServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { FrameType, GoAwayStatus, RstStatus } from '../../src/spdy/constants.js';
import { goAwayFrame } from '../../src/spdy/frame-writer.js';
import { SpdySession, type SpdySessionError, type SpdyStream } from '../../src/spdy/session.js';
import { waitFor, withTimeout } from '../support/wait.js';

/** The parts of spdy-transport's API used here (it ships no types). */
interface TransportStream extends Duplex {
  id: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  respond(status: number, headers: Record<string, string>): void;
}
interface TransportConnection extends EventEmitter {
  start(version: number): void;
  ping(cb: (err: Error | null) => void): void;
  request(
    uri: { method: string; path: string; headers: Record<string, string> },
    cb: (err: Error | null, stream: TransportStream) => void,
  ): TransportStream;
  end(): void;
}
interface Transport {
  connection: {
    create(socket: Socket, options: { protocol: 'spdy'; isServer: boolean }): TransportConnection;
  };
}

// the engine the installed `spdy` package uses, resolved from that package
const require = createRequire(import.meta.url);
const transport = createRequire(require.resolve('spdy'))('spdy-transport') as Transport;

/** HTTP pseudo-headers spdy-transport's server insists on (SPDY/3 names). */
const PSEUDO = {
  ':method': 'POST',
  ':path': '/exec',
  ':version': 'HTTP/1.1',
  ':host': 'localhost',
  ':scheme': 'http',
};

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface TransportServer {
  port: number;
  connections: TransportConnection[];
  errors: string[];
}

/** A spdy-transport server on 127.0.0.1; `onStream` gets every stream it accepts. */
async function transportServer(
  t: { after(fn: () => unknown): void },
  onStream: (s: TransportStream) => void,
): Promise<TransportServer> {
  const connections: TransportConnection[] = [];
  const errors: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const conn = transport.connection.create(socket, { protocol: 'spdy', isServer: true });
    conn.on('error', (e: Error) => errors.push(e.message));
    conn.on('stream', onStream);
    connections.push(conn);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as { port: number }).port, connections, errors };
}

async function ourClient(t: { after(fn: () => unknown): void }, port: number, replyTimeoutMs = 10_000) {
  const socket = connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  const session = new SpdySession(socket, { role: 'client', replyTimeoutMs });
  t.after(() => session.destroy());
  return session;
}

/**
 * Our server on 127.0.0.1, replying to every stream and reading it, with a spdy-transport client
 * connected: our sessions, the streams they accepted, the frame types they skipped, and the client.
 */
async function transportClient(t: { after(fn: () => unknown): void }) {
  const server = createServer({ allowHalfOpen: true });
  const sessions: SpdySession[] = [];
  const streams: SpdyStream[] = [];
  const ignored: number[] = [];
  server.on('connection', (socket) => {
    const s = new SpdySession(socket, { role: 'server' });
    s.on('ignoredFrame', (type) => ignored.push(type));
    s.on('stream', (stream) => {
      streams.push(stream);
      stream.reply();
      stream.resume();
    });
    sessions.push(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const socket = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1' });
  socket.on('error', () => {});
  t.after(() => {
    socket.destroy();
    for (const s of sessions) s.destroy();
    server.close();
  });
  await once(socket, 'connect');
  const theirs = transport.connection.create(socket, { protocol: 'spdy', isServer: false });
  theirs.on('error', () => {});
  theirs.start(3.1);
  return { sessions, streams, ignored, theirs };
}

function collect(stream: Duplex): { bytes: () => Buffer; ended: Promise<unknown> } {
  const parts: Buffer[] = [];
  stream.on('data', (d: Buffer) => parts.push(d));
  return { bytes: () => Buffer.concat(parts), ended: once(stream, 'end') };
}

test('our client → spdy-transport server: streams, replies and header blocks across many frames', async (t) => {
  const seen: [number, string, string, Record<string, string>][] = [];
  const srv = await transportServer(t, (s) => {
    seen.push([s.id, s.method, s.path, s.headers]);
    s.respond(200, { 'x-stream': String(s.id) });
    s.resume();
  });
  const client = await ourClient(t, srv.port);
  const ignored: number[] = [];
  client.on('ignoredFrame', (type) => ignored.push(type));
  for (let i = 0; i < 20; i++) {
    const stream = await client.openStream({
      ...PSEUDO,
      ':path': `/api/v1/namespaces/default/pods/p${i}/portforward`,
      streamtype: i % 2 ? 'data' : 'error',
      port: String(8000 + i),
      requestid: String(i),
    });
    assert.equal(stream.id, 2 * i + 1);
    assert.equal(stream.replied, true);
  }
  assert.equal(seen.length, 20);
  for (const [i, [id, method, path, headers]] of seen.entries()) {
    assert.equal(id, 2 * i + 1);
    assert.equal(method, 'POST');
    assert.equal(path, `/api/v1/namespaces/default/pods/p${i}/portforward`);
    assert.equal(headers['streamtype'], i % 2 ? 'data' : 'error');
    assert.equal(headers['port'], String(8000 + i));
    assert.equal(headers['requestid'], String(i));
  }
  assert.ok(ignored.includes(FrameType.SETTINGS), 'its SETTINGS was skipped');
  assert.deepEqual(srv.errors, []);
});

test('our client → spdy-transport server: 8 MiB of our DATA arrive intact; FIN ends its stream', async (t) => {
  let received: Promise<Buffer> | undefined;
  const srv = await transportServer(t, (s) => {
    s.respond(200, {});
    const c = collect(s);
    received = c.ended.then(() => c.bytes());
  });
  const client = await ourClient(t, srv.port);
  const stream = await client.openStream({ ...PSEUDO, streamtype: 'stdin' });
  const payload = randomBytes(8 * 1024 * 1024);
  for (let off = 0; off < payload.length; off += 64 * 1024) {
    if (!stream.write(payload.subarray(off, off + 64 * 1024))) await once(stream, 'drain');
  }
  stream.end();
  await waitFor('its stream', () => received !== undefined);
  const got = await withTimeout(received!, 10_000, 'its end');
  assert.equal(got.length, payload.length);
  assert.equal(sha(got), sha(payload));
  assert.deepEqual(srv.errors, []);
});

test('our client → spdy-transport server: its DATA up to 64 KiB arrives intact with FIN', async (t) => {
  const payload = randomBytes(60_000);
  const srv = await transportServer(t, (s) => {
    s.respond(200, {});
    s.resume();
    s.end(payload);
  });
  const client = await ourClient(t, srv.port);
  const stream = await client.openStream({ ...PSEUDO, streamtype: 'stdout' });
  const c = collect(stream);
  await withTimeout(c.ended, 5000, 'our stream end');
  assert.equal(sha(c.bytes()), sha(payload));
});

test('our client ⇄ spdy-transport server: PING both ways', async (t) => {
  const srv = await transportServer(t, () => {});
  const client = await ourClient(t, srv.port);
  const rtt = await withTimeout(client.ping(), 3000, 'our ping answered');
  assert.ok(rtt >= 0);
  const theirs = srv.connections[0]!;
  const peerPings: number[] = [];
  client.on('ping', (id) => peerPings.push(id));
  await withTimeout(
    new Promise<void>((resolve, reject) => theirs.ping((err) => (err ? reject(err) : resolve()))),
    3000,
    'their ping answered',
  );
  assert.equal(peerPings.length, 1);
  assert.equal(peerPings[0]! % 2, 0, 'a server pings with even ids; we echoed it');
});

test('GOAWAY both ways: our close() ends its connection cleanly, its end() ends our session cleanly', async (t) => {
  const srv = await transportServer(t, (s) => {
    s.respond(200, {});
    s.resume(); // no 'error' listener: an error on the stream would crash this process
    s.on('end', () => s.end()); // FIN answered with FIN
  });
  const client = await ourClient(t, srv.port);
  await client.openStream({ ...PSEUDO, streamtype: 'stdin' });
  const theirClose = once(srv.connections[0]!, 'close');
  const ours = once(client, 'close');
  client.close(); // RST_STREAM CANCEL on the open stream, then GOAWAY, as Kubernetes peers do
  await withTimeout(theirClose, 3000, 'their close');
  assert.equal((await withTimeout(ours, 3000, 'our close'))[0], undefined);
  assert.deepEqual(srv.errors, []);

  // its end() sends GOAWAY and waits for open streams to finish before it closes the socket
  const client2 = await ourClient(t, srv.port);
  const stream = await client2.openStream({ ...PSEUDO, streamtype: 'stdin' });
  const goaway = once(client2, 'goaway');
  const closed2 = once(client2, 'close');
  srv.connections[1]!.end();
  assert.deepEqual(await withTimeout(goaway, 3000, 'goaway'), [1, 0]);
  await assert.rejects(client2.openStream({ ...PSEUDO }), /closing/, 'no new streams after GOAWAY');
  const rest = collect(stream);
  stream.end('last bytes');
  await withTimeout(rest.ended, 3000, 'its FIN');
  assert.equal(
    (await withTimeout(closed2, 3000, 'our close 2'))[0] as SpdySessionError | undefined,
    undefined,
  );
});

test('spdy-transport client → our server: its streams, SETTINGS, WINDOW_UPDATE and PING', async (t) => {
  const { sessions, streams, ignored, theirs } = await transportClient(t);
  for (let i = 0; i < 5; i++) {
    const s = theirs.request(
      { method: 'POST', path: `/exec/${i}`, headers: { streamtype: 'stdin' } },
      () => {},
    );
    s.on('error', () => {});
  }
  await waitFor('its streams', () => streams.length === 5);
  for (const [i, s] of streams.entries()) {
    assert.equal(s.id, 2 * i + 1);
    assert.equal(s.headers[':path'], `/exec/${i}`);
    assert.equal(s.headers[':method'], 'POST');
    assert.equal(s.streamType, 'stdin');
  }
  assert.ok(ignored.includes(FrameType.SETTINGS));
  assert.ok(ignored.includes(FrameType.WINDOW_UPDATE));
  await withTimeout(
    new Promise<void>((resolve, reject) => theirs.ping((err) => (err ? reject(err) : resolve()))),
    3000,
    'its ping echoed',
  );
  assert.equal(sessions[0]!.closed, false);
});

test('limits of spdy-transport as a Kubernetes-style peer (measured)', async (t) => {
  // 1. its sending stalls at its 64 KiB window: we never send WINDOW_UPDATE (§6.4)
  const streamErrors: string[] = [];
  const srv = await transportServer(t, (s) => {
    s.respond(200, {});
    s.resume();
    s.on('error', (e: Error) => streamErrors.push(e.message));
    s.write(randomBytes(256 * 1024));
  });
  const client = await ourClient(t, srv.port, 1000);
  const stream = await client.openStream({ ...PSEUDO, streamtype: 'stdout' });
  const c = collect(stream);
  await waitFor('its first window', () => c.bytes().length === 65536, 5000);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(c.bytes().length, 65536, 'no byte beyond the initial window');

  // 2. without :method/:path (what kubectl sends) its server fails and never replies
  await assert.rejects(client.openStream({ streamtype: 'error' }), /Timeout occurred/);
  await waitFor('its error', () => srv.errors.length > 0);
  assert.match(srv.errors[0]!, /Missing `:method` and\/or `:path` header/);

  // 3. a client's GOAWAY naming last-good stream 0 (kubectl's, when it accepted no server streams)
  // while its streams are open: each stream emits an error, fatal to a program without a listener
  const client2 = await ourClient(t, srv.port);
  await client2.openStream({ ...PSEUDO, streamtype: 'stdout' });
  client2.socket.write(goAwayFrame(0, GoAwayStatus.OK)); // no RST first, unlike our close()
  await waitFor('stream error', () => streamErrors.length > 0, 3000);
  assert.deepEqual(streamErrors, ['New stream after GOAWAY']);

  // 4. as a client it resets a stream whose SYN_REPLY has no :status (what Kubernetes servers send)
  const { streams: ours, theirs } = await transportClient(t);
  const req = theirs.request({ method: 'POST', path: '/exec', headers: { streamtype: 'stdin' } }, () => {});
  req.on('error', () => {});
  const ourStream = await waitFor('its stream', () => ours[0]);
  await waitFor('its reset', () => ourStream.resetStatus, 5000);
  assert.equal(ourStream.resetStatus, RstStatus.PROTOCOL_ERROR);
});
