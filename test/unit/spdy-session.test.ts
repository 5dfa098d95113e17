/**
 * SpdySession over real loopback sockets (docs/protocols.md §3.2, §6.3–§6.8): streams, replies, echo,
 * half-close both ways, resets, pings, ping timeout, GOAWAY, protocol errors, backpressure.
 * Sockets allow half-open on both ends, as http.Server's upgraded sockets do.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import type { Logger } from '../../src/observe/logger.js';
import { FrameType, GoAwayStatus, RstStatus } from '../../src/spdy/constants.js';
import { type FrameHandler, FrameParser } from '../../src/spdy/frame-parser.js';
import { dataFrameHeader, pingFrame, synStreamFrame } from '../../src/spdy/frame-writer.js';
import { HeaderCompressor, HeaderDecompressor } from '../../src/spdy/header-block.js';
import {
  SpdySession,
  type SpdySessionError,
  type SpdySessionOptions,
  type SpdyStream,
} from '../../src/spdy/session.js';
import { readAll } from '../support/spdy-stream.js';
import { waitFor, withTimeout } from '../support/wait.js';

type Opts = Partial<Omit<SpdySessionOptions, 'role'>>;

interface Listening {
  server: Server;
  port: number;
  sessions: SpdySession[];
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1 that wraps every accepted socket in a server-role SpdySession. */
async function listen(onSession: (s: SpdySession) => void, opts: Opts = {}): Promise<Listening> {
  const sessions: SpdySession[] = [];
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    const s = new SpdySession(socket, { role: 'server', ...opts });
    sessions.push(s);
    onSession(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    server,
    port,
    sessions,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** `listen`, replying to every stream its sessions accept; `streams` holds them in order. */
async function listenReplying(opts: Opts = {}): Promise<Listening & { streams: SpdyStream[] }> {
  const streams: SpdyStream[] = [];
  const srv = await listen(
    (s) =>
      s.on('stream', (stream) => {
        streams.push(stream);
        stream.reply();
      }),
    opts,
  );
  return { ...srv, streams };
}

async function dial(port: number, opts: Opts = {}): Promise<SpdySession> {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(socket, 'connect');
  return new SpdySession(socket, { role: 'client', ...opts });
}

function closed(s: SpdySession, ms = 5000): Promise<SpdySessionError | undefined> {
  return withTimeout(
    once(s, 'close').then(([e]) => e as SpdySessionError | undefined),
    ms,
    'session close',
  );
}

/** A hand-driven SPDY peer: raw frames out, parsed frames in. */
class RawPeer implements FrameHandler {
  readonly events: unknown[][] = [];
  readonly compressor = new HeaderCompressor();
  readonly parser = new FrameParser(this, new HeaderDecompressor(65536, 64), { maxControlFrameSize: 65536 });
  ended = false;
  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.parser.write(d));
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('error', () => {});
  }
  static async dial(port: number): Promise<RawPeer> {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    await once(socket, 'connect');
    return new RawPeer(socket);
  }
  synStream(id: number, headers: Record<string, string>): void {
    this.socket.write(synStreamFrame(id, 0, 0, this.compressor.compress(headers)));
  }
  onData(id: number, payload: Buffer, fin: boolean) {
    this.events.push(['data', id, payload.toString(), fin]);
  }
  onSynStream(id: number) {
    this.events.push(['syn_stream', id]);
  }
  onSynReply(id: number) {
    this.events.push(['syn_reply', id]);
  }
  onRstStream(id: number, status: number) {
    this.events.push(['rst', id, status]);
  }
  onPing(id: number) {
    this.events.push(['ping', id]);
  }
  onGoAway(last: number, status: number) {
    this.events.push(['goaway', last, status]);
  }
  onIgnoredFrame(type: number) {
    this.events.push(['ignored', type]);
  }
  onError(err: Error) {
    this.events.push(['error', err.message]);
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('streams open with SYN_STREAM/SYN_REPLY, carry headers, echo, and FIN half-closes both ways', async (t) => {
  const srv = await listen((s) =>
    s.on('stream', (stream) => {
      stream.reply();
      stream.pipe(stream); // echo; our FIN follows the peer's FIN
    }),
  );
  t.after(() => srv.close());
  const client = await dial(srv.port);
  t.after(() => client.destroy());

  const types = ['error', 'stdin', 'stdout', 'stderr'];
  const streams = [];
  for (const streamtype of types) streams.push(await client.openStream({ streamtype }));
  assert.deepEqual(
    streams.map((s) => s.id),
    [1, 3, 5, 7],
    'client stream ids are odd and increase by 2',
  );
  await waitFor('server streams', () => srv.sessions[0]?.streamCount === 4);

  const payloads = streams.map((_, i) => randomBytes(100_000 + i));
  const echoes = streams.map((s) => readAll(s));
  streams.forEach((s, i) => {
    s.write(payloads[i]!.subarray(0, 1000));
    s.end(payloads[i]!.subarray(1000));
  });
  const got = await Promise.all(echoes);
  for (const [i, g] of got.entries()) assert.equal(sha(g), sha(payloads[i]!), `echo on ${types[i]}`);
  await waitFor('streams forgotten once closed both ways', () =>
    client.streamCount === 0 && srv.sessions[0]!.streamCount === 0 ? true : undefined,
  );
  assert.equal(client.closed, false);
});

test('half-close: each side keeps writing after the other sent FIN', async (t) => {
  const srv = await listenReplying();
  t.after(() => srv.close());
  const client = await dial(srv.port);
  t.after(() => client.destroy());

  // client FIN first; server still writes afterwards
  const a = await client.openStream({ streamtype: 'stdin' });
  const sa = await waitFor('server stream', () => srv.streams[0]);
  const serverGot = readAll(sa);
  a.end('from client');
  assert.equal((await serverGot).toString(), 'from client');
  const clientGot = readAll(a);
  sa.write('after ');
  sa.end('client FIN');
  assert.equal((await clientGot).toString(), 'after client FIN');

  // server FIN first; client still writes afterwards
  const b = await client.openStream({ streamtype: 'stdout' });
  const sb = await waitFor('server stream', () => srv.streams[1]);
  const clientGot2 = readAll(b);
  sb.end('from server');
  assert.equal((await clientGot2).toString(), 'from server');
  const serverGot2 = readAll(sb);
  b.write('after ');
  b.end('server FIN');
  assert.equal((await serverGot2).toString(), 'after server FIN');
});

test('a single write larger than a DATA frame can carry (16 MiB − 1) goes out as several frames', async (t) => {
  let received: Promise<Buffer> | undefined;
  const srv = await listen((s) =>
    s.on('stream', (stream) => {
      stream.reply();
      received = readAll(stream);
    }),
  );
  t.after(() => srv.close());
  const client = await dial(srv.port);
  t.after(() => client.destroy());
  const stream = await client.openStream({ streamtype: 'stdin' });
  const big = randomBytes(17 * 1024 * 1024);
  stream.end(big);
  await waitFor('server stream', () => received !== undefined);
  assert.equal(sha(await received!), sha(big));
});

test('RST_STREAM: data received before the reset stays readable; later writes are dropped', async (t) => {
  const srv = await listen((s) =>
    s.on('stream', (stream) => {
      if (stream.streamType === 'refuse') {
        stream.reset(RstStatus.REFUSED_STREAM);
        return;
      }
      stream.reply();
      stream.write(Buffer.alloc(50_000, 'x'));
      stream.write('tail', () => stream.reset(RstStatus.CANCEL));
    }),
  );
  t.after(() => srv.close());
  const client = await dial(srv.port);
  t.after(() => client.destroy());

  const stream = await client.openStream({ streamtype: 'stdout' });
  let resetEvent: number | undefined;
  stream.once('reset', (status: number) => {
    resetEvent = status;
  });
  // reply, data and reset may all arrive in one read, before openStream's promise resumes us:
  // resetStatus tells, the 'reset' event may already be past
  await waitFor('reset', () => stream.resetStatus, 5000);
  assert.equal(stream.resetStatus, RstStatus.CANCEL);
  assert.ok(resetEvent === undefined || resetEvent === RstStatus.CANCEL);
  // read only now, after the reset arrived
  const data = await readAll(stream);
  assert.equal(data.length, 50_004);
  assert.equal(data.subarray(-4).toString(), 'tail');
  // writing to a reset stream is not an error
  await new Promise<void>((resolve, reject) =>
    stream.write('ignored', (err) => (err ? reject(err) : resolve())),
  );

  await assert.rejects(client.openStream({ streamtype: 'refuse' }), /reset by the peer \(status 3\)/);
  assert.equal(client.closed, false, 'a reset stream does not end the session');
});

test('openStream times out without SYN_REPLY and resets the stream', async (t) => {
  // the server is a raw peer that never replies
  const server = createServer({ allowHalfOpen: true });
  const peers: RawPeer[] = [];
  server.on('connection', (socket) => peers.push(new RawPeer(socket)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const p of peers) p.socket.destroy();
    server.close();
  });
  const client = await dial((server.address() as { port: number }).port, { replyTimeoutMs: 150 });
  t.after(() => client.destroy());
  await assert.rejects(client.openStream({ streamtype: 'error' }), /Timeout occurred/);
  await waitFor('RST CANCEL on the wire', () =>
    peers[0]?.events.some((e) => e[0] === 'rst' && e[1] === 1 && e[2] === RstStatus.CANCEL),
  );
  assert.deepEqual(peers[0]!.events[0], ['syn_stream', 1]);
});

test('PING: the peer echoes ours (pong), we echo the peer’s, periodic pings flow', async (t) => {
  const serverPings: number[] = [];
  const srv = await listen((s) => s.on('ping', (id) => serverPings.push(id)));
  t.after(() => srv.close());
  const client = await dial(srv.port, { pingIntervalMs: 40 });
  t.after(() => client.destroy());
  const rtt = await withTimeout(client.ping(), 2000, 'ping');
  assert.ok(rtt >= 0 && rtt < 2000);
  let pongs = 0;
  client.on('pong', () => pongs++);
  await waitFor('periodic pongs', () => pongs >= 3, 3000);
  assert.ok(serverPings.length >= 4);
  assert.ok(
    serverPings.every((id) => id % 2 === 1),
    'client ping ids are odd',
  );
  assert.deepEqual(
    serverPings,
    [...serverPings].sort((a, b) => a - b),
  );

  // a peer's PING is echoed unchanged
  const raw = await RawPeer.dial(srv.port);
  t.after(() => raw.socket.destroy());
  raw.socket.write(pingFrame(1234567));
  await waitFor('echo', () => raw.events.find((e) => e[0] === 'ping'));
  assert.deepEqual(raw.events, [['ping', 1234567]]);
});

test('ping timeout closes a session whose peer stops answering', async (t) => {
  const silent = createServer({ allowHalfOpen: true }, (socket) => {
    socket.resume(); // reads everything, answers nothing
    socket.on('error', () => {});
  });
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.after(() => silent.close());
  const started = performance.now();
  const client = await dial((silent.address() as { port: number }).port, {
    pingIntervalMs: 50,
    pingTimeoutMs: 300,
  });
  const err = await closed(client, 3000);
  assert.equal(err?.kind, 'ping-timeout');
  const took = performance.now() - started;
  assert.ok(took >= 300 && took < 1500, `closed after ${took} ms`);
});

test('close(): RST CANCEL on open streams, then GOAWAY, then the socket ends; the peer sees a clean end', async (t) => {
  const srv = await listen((s) =>
    s.on('stream', (stream) => {
      stream.reply();
      stream.write('before close', () => s.close());
    }),
  );
  t.after(() => srv.close());
  const raw = await RawPeer.dial(srv.port);
  t.after(() => raw.socket.destroy());
  raw.synStream(1, { streamtype: 'stdout' });
  await waitFor('socket end', () => raw.ended);
  assert.deepEqual(raw.events, [
    ['syn_reply', 1],
    ['data', 1, 'before close', false],
    ['rst', 1, RstStatus.CANCEL],
    ['goaway', 1, GoAwayStatus.OK],
  ]);
  assert.equal(await closed(srv.sessions[0]!), undefined);

  // session to session: the peer's streams end after their data, 'goaway' and a clean 'close'
  const srv2 = await listen((s) =>
    s.on('stream', (stream) => {
      stream.reply();
      stream.resume();
    }),
  );
  t.after(() => srv2.close());
  const client = await dial(srv2.port);
  const stream = await client.openStream({ streamtype: 'stdin' });
  await waitFor('server stream', () => srv2.sessions[0]?.streamCount === 1);
  const server = srv2.sessions[0]!;
  const goaway = once(server, 'goaway');
  const serverClosed = closed(server);
  client.close();
  assert.deepEqual(await withTimeout(goaway, 2000, 'goaway'), [0, GoAwayStatus.OK]);
  assert.equal(await serverClosed, undefined);
  assert.equal(await closed(client), undefined);
  assert.equal(stream.destroyed || stream.readableEnded || stream.remoteClosed, true);
  await assert.rejects(client.openStream({ streamtype: 'x' }), /closing/);
});

test("a peer's GOAWAY and EOF on an http.Server upgraded socket end the session (no half-open linger)", async (t) => {
  const http = createHttpServer();
  const sessions: SpdySession[] = [];
  http.on('upgrade', (_req, socket, head) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
    sessions.push(new SpdySession(socket, { role: 'server', head }));
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  t.after(() => {
    http.closeAllConnections();
    http.close();
  });
  const socket = connect({
    port: (http.address() as { port: number }).port,
    host: '127.0.0.1',
    allowHalfOpen: true,
  });
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  socket.write(
    'POST /x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0\r\n\r\n',
  );
  await once(socket, 'data');
  const session = await waitFor('session', () => sessions[0]);
  const goaway = once(session, 'goaway');
  // what kubectl does at exit: GOAWAY, then its socket closes (here only half: we keep reading)
  socket.end(Buffer.from('80030007000000080000000000000000', 'hex'));
  await withTimeout(goaway, 2000, 'goaway');
  assert.equal(await closed(session, 3000), undefined);
  await withTimeout(once(socket, 'end'), 3000, 'our side ended too');
});

test('SYN_STREAMs that arrived with the upgrade (head) reach a listener attached after construction, in order', async (t) => {
  const server = createServer({ allowHalfOpen: true });
  const sessions: SpdySession[] = [];
  const seen: string[] = [];
  server.on('connection', (socket) => {
    socket.once('data', (first: Buffer) => {
      // the head ends inside the second frame; the rest waits in the socket's buffer
      const cut = first.readUIntBE(5, 3) + 8 + 5;
      socket.pause();
      socket.unshift(first.subarray(cut));
      const s = new SpdySession(socket, { role: 'server', head: first.subarray(0, cut) });
      socket.resume();
      s.on('stream', (stream) => {
        seen.push(stream.streamType ?? '');
        stream.reply();
      });
      sessions.push(s);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  const raw = await RawPeer.dial((server.address() as { port: number }).port);
  t.after(() => raw.socket.destroy());
  // one write: frame 3's header block continues frame 1's zlib stream, so order matters
  const c = raw.compressor;
  raw.socket.write(
    Buffer.concat([
      synStreamFrame(1, 0, 0, c.compress({ streamtype: 'error' })),
      synStreamFrame(3, 0, 0, c.compress({ streamtype: 'stdin' })),
    ]),
  );
  await waitFor('SYN_REPLYs', () => raw.events.length >= 2, 3000);
  assert.deepEqual(raw.events, [
    ['syn_reply', 1],
    ['syn_reply', 3],
  ]);
  assert.deepEqual(seen, ['error', 'stdin']);
});

/**
 * An echo server with two sessions: a healthy one with a stream open, and a hand-driven peer's (the
 * victim). `onStream` sees every stream before it is echoed.
 */
async function victimBesideHealthy(
  t: TestContext,
  opts: Opts = {},
  onStream: (s: SpdyStream) => void = () => {},
) {
  const srv = await listen(
    (s) =>
      s.on('stream', (stream) => {
        onStream(stream);
        stream.reply();
        stream.pipe(stream);
      }),
    opts,
  );
  t.after(() => srv.close());
  const healthy = await dial(srv.port);
  t.after(() => healthy.destroy());
  const before = await healthy.openStream({ streamtype: 'stdin' });

  const raw = await RawPeer.dial(srv.port);
  t.after(() => raw.socket.destroy());
  await waitFor('two sessions', () => srv.sessions.length === 2);
  const victimClosed = closed(srv.sessions[1]!);
  return { healthy, before, raw, victimClosed };
}

/** The healthy session's open stream still echoes. */
async function stillEchoes(before: SpdyStream): Promise<void> {
  const echo = readAll(before);
  before.end('still alive');
  assert.equal((await echo).toString(), 'still alive');
}

test('a protocol error sends GOAWAY(PROTOCOL_ERROR), closes that session with an error, others keep running', async (t) => {
  const { healthy, before, raw, victimClosed } = await victimBesideHealthy(t);
  raw.socket.write(Buffer.concat([dataFrameHeader(0, 0, 2), Buffer.from('hi')])); // DATA on stream 0
  const err = await victimClosed;
  assert.equal(err?.kind, 'protocol');
  assert.match(err!.message, /stream 0/);
  await waitFor('peer sees the end', () => raw.ended);
  assert.deepEqual(raw.events, [['goaway', 0, GoAwayStatus.PROTOCOL_ERROR]]);

  // the other session and the process are unaffected
  await stillEchoes(before);
  const after = await healthy.openStream({ streamtype: 'stdout' });
  const echo2 = readAll(after);
  after.end('new stream');
  assert.equal((await echo2).toString(), 'new stream');
});

test('a listener that throws ends its session as an internal error (GOAWAY INTERNAL_ERROR), not a protocol error; the process lives', async (t) => {
  const logged: unknown[][] = [];
  const log = { error: (...args: unknown[]) => logged.push(args) } as unknown as Logger;
  const bug = new Error('a bug in a stream listener');
  const { before, raw, victimClosed } = await victimBesideHealthy(t, { log }, (stream) => {
    if (stream.streamType === 'buggy') throw bug;
  });
  raw.synStream(1, { streamtype: 'buggy' });
  const err = await victimClosed;
  assert.equal(err?.kind, 'internal');
  assert.match(err!.message, /^internal error: a bug in a stream listener$/);
  await waitFor('peer sees the end', () => raw.ended);
  assert.deepEqual(raw.events, [['goaway', 1, GoAwayStatus.INTERNAL_ERROR]]);
  assert.equal(logged.length, 1);
  assert.equal((logged[0]![0] as { err: unknown }).err, bug);
  assert.match(String(logged[0]![1]), /^bug: /);

  // the other session and the process are unaffected
  await stillEchoes(before);
});

test('an oversized control frame from the peer is a protocol error with GOAWAY, and nothing is buffered', async (t) => {
  const srv = await listen(() => {}, { maxControlFrameSize: 1024 });
  t.after(() => srv.close());
  const raw = await RawPeer.dial(srv.port);
  t.after(() => raw.socket.destroy());
  await waitFor('session', () => srv.sessions[0]);
  const done = closed(srv.sessions[0]!);
  const h = Buffer.alloc(8);
  h.writeUInt32BE((0x80030000 | FrameType.SYN_STREAM) >>> 0, 0);
  h.writeUInt32BE(0xffffff, 4);
  raw.socket.write(h);
  assert.equal((await done)?.kind, 'protocol');
  await waitFor('GOAWAY', () => raw.events.length > 0);
  assert.deepEqual(raw.events, [['goaway', 0, GoAwayStatus.PROTOCOL_ERROR]]);
});

/** A client and a server session with `hwm` streams, the client's stdin stream opened and accepted. */
async function stdinPair(t: TestContext, hwm: number) {
  const srv = await listenReplying({ streamHighWaterMark: hwm });
  t.after(() => srv.close());
  const client = await dial(srv.port, { streamHighWaterMark: hwm });
  t.after(() => client.destroy());
  const stream = await client.openStream({ streamtype: 'stdin' });
  const ss = await waitFor('server stream', () => srv.streams[0]);
  return { srv, client, stream, ss, server: srv.sessions[0]! };
}

test('backpressure: an unread stream pauses the socket, memory stays bounded, reading resumes it', async (t) => {
  const hwm = 64 * 1024;
  const { stream, ss, server } = await stdinPair(t, hwm);

  const total = 64 * 1024 * 1024;
  const chunk = randomBytes(64 * 1024);
  let written = 0;
  let writerDone = false;
  const hash = createHash('sha256');
  const pump = async () => {
    while (written < total) {
      if (!stream.write(chunk)) await once(stream, 'drain');
      hash.update(chunk);
      written += chunk.length;
    }
    stream.end();
    writerDone = true;
  };
  const pumping = pump();

  // the reader does not read: the server socket pauses and the writer stalls
  await waitFor('server socket paused', () => server.socket.isPaused(), 5000);
  await new Promise((r) => setTimeout(r, 300));
  const stalledAt = written;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(written, stalledAt, 'writer stalled');
  assert.equal(writerDone, false);
  assert.ok(written < total / 4, `only ${written} of ${total} bytes went out`);
  // at most one socket read beyond the stream's high-water mark is held by the stream
  assert.ok(ss.readableLength <= hwm + 64 * 1024, `stream holds ${ss.readableLength} bytes`);
  const serverSocket = server.socket as Socket;
  assert.ok(
    serverSocket.readableLength <= 1024 * 1024,
    `paused socket holds ${serverSocket.readableLength} bytes`,
  );

  // reading resumes everything
  const received = createHash('sha256');
  let count = 0;
  ss.on('data', (d: Buffer) => {
    received.update(d);
    count += d.length;
  });
  await withTimeout(once(ss, 'end'), 30_000, 'all data');
  await pumping;
  assert.equal(count, total);
  assert.equal(received.digest('hex'), hash.digest('hex'));
});

test('a peer resetting the TCP connection ends the session with a transport error; streams end', async (t) => {
  const srv = await listenReplying();
  t.after(() => srv.close());
  const client = await dial(srv.port);
  await client.openStream({ streamtype: 'stdin' });
  const ss = await waitFor('server stream', () => srv.streams[0]);
  const server = srv.sessions[0]!;
  const done = closed(server);
  const ended = readAll(ss);
  (client.socket as Socket).resetAndDestroy();
  const err = await done;
  assert.equal(err?.kind, 'transport');
  await ended;
});

test('close(): a peer that reads slowly still gets every byte written before it, and the GOAWAY', async (t) => {
  // 32 MiB is far more than the kernel's socket buffers hold: most of it waits in the session's
  // socket while the peer does not read, for longer than the peer gets to close once all is sent.
  const payload = randomBytes(32 * 1024 * 1024);
  const srv = await listen((s) =>
    s.on('stream', (stream) => {
      stream.reply();
      stream.write(payload);
      s.close();
    }),
  );
  t.after(() => srv.close());
  const client = await dial(srv.port);
  const stream = await client.openStream({ streamtype: 'stdout' });
  const socket = (client as unknown as { socket: Socket }).socket;
  socket.pause();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  socket.resume();
  const received = await readAll(stream, 20_000);
  assert.equal(received.length, payload.length);
  assert.ok(received.equals(payload), 'every byte, in order');
  assert.equal(await closed(client, 20_000), undefined);
});

test('direct reading and writing: what arrived first comes first, holds pause the socket, end and its event both come', async (t) => {
  const { srv, client, stream, ss, server } = await stdinPair(t, 64 * 1024);

  // written before anyone reads: held by the readable side, then handed over first
  const early = randomBytes(10_000);
  assert.equal(stream.writeDirect(early), true);
  await waitFor('early bytes held', () => (ss.readableLength === early.length ? true : undefined));
  const got: Buffer[] = [];
  let ended = 0;
  ss.readDirect(
    (c) => got.push(Buffer.from(c)),
    () => ended++,
  );
  const endEvent = once(ss, 'end');
  assert.ok(Buffer.concat(got).equals(early));

  // a hold stops the socket at once; what follows waits in the kernel until release
  ss.hold();
  assert.equal(server.socket.isPaused(), true);
  const late = randomBytes(3 * 1024 * 1024);
  let drained = false;
  if (!stream.writeDirect(late)) stream.afterDrain(() => (drained = true));
  else drained = true;
  await new Promise((r) => setTimeout(r, 200));
  const heldAt = Buffer.concat(got).length;
  assert.ok(heldAt < early.length + late.length, 'nothing past the hold but the read under way');
  ss.release();
  stream.end();
  await withTimeout(endEvent, 10_000, "the readable side's end event");
  assert.equal(ended, 1, 'end runs once');
  assert.equal(drained, true, 'afterDrain ran');
  assert.ok(Buffer.concat(got).equals(Buffer.concat([early, late])));

  // a stream over before it was read: its data, then its end at once
  const second = await client.openStream({ streamtype: 'stdout' });
  const ss2 = await waitFor('second server stream', () => srv.streams[1]);
  second.end(Buffer.from('last words'));
  await waitFor('second stream over', () => (ss2.remoteClosed ? true : undefined));
  const got2: string[] = [];
  let ended2 = 0;
  ss2.readDirect(
    (c) => got2.push(c.toString()),
    () => ended2++,
  );
  assert.deepEqual(got2, ['last words']);
  assert.equal(ended2, 1);
});
