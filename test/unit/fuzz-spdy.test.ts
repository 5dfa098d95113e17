/**
 * Hostile input for the SPDY core: random bytes, and real kubectl sessions (test/fixtures) damaged
 * by mutation, through the frame parser, the header-block inflater and whole sessions over real
 * sockets. Nothing may throw out of the parser, a session must end (never hang) once its input
 * ends, and memory stays bounded against a zlib bomb, 16 MiB frame lengths, a million tiny frames
 * and an endless control frame.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { constants, createDeflate } from 'node:zlib';
import fc from 'fast-check';
import { FLAG_FIN, FrameType, SpdyProtocolError } from '../../src/spdy/constants.js';
import { SPDY3_DICTIONARY } from '../../src/spdy/dictionary.js';
import { type FrameHandler, FrameParser } from '../../src/spdy/frame-parser.js';
import { dataFrameHeader, pingFrame } from '../../src/spdy/frame-writer.js';
import { HeaderDecompressor, type HeaderMap, serializeHeaderBlock } from '../../src/spdy/header-block.js';
import { SpdySession, type SpdySessionError } from '../../src/spdy/session.js';
import { chunked, chunkSizes, mutated } from '../fixtures/mutate.js';
import { recordedSession, spdyBytes, wsDataMessages } from '../fixtures/sessions.js';
import { MiB, settledHeap } from '../support/memory.js';
import { waitFor, withTimeout } from '../support/wait.js';

const LIMIT = 64 * 1024;

/** Events as comparable values; DATA merged per stream until another event, so chunking cannot show. */
class Events implements FrameHandler {
  readonly list: unknown[] = [];
  errors: SpdyProtocolError[] = [];
  afterError = 0;
  private data: { id: number; bytes: number; fin: boolean } | undefined;
  private add(e: unknown) {
    if (this.errors.length) this.afterError++;
    this.flush();
    this.list.push(e);
  }
  private flush() {
    if (this.data) this.list.push(['data', this.data.id, this.data.bytes, this.data.fin]);
    this.data = undefined;
  }
  onData(id: number, payload: Buffer, fin: boolean) {
    if (this.errors.length) this.afterError++;
    if (this.data && this.data.id !== id) this.flush();
    this.data ??= { id, bytes: 0, fin: false };
    this.data.bytes += payload.length;
    if (fin) {
      this.data.fin = true;
      this.flush();
    }
  }
  onSynStream(id: number, assoc: number, prio: number, flags: number, headers: HeaderMap) {
    this.add(['syn', id, assoc, prio, flags, { ...headers }]);
  }
  onSynReply(id: number, flags: number, headers: HeaderMap) {
    this.add(['reply', id, flags, { ...headers }]);
  }
  onRstStream(id: number, status: number) {
    this.add(['rst', id, status]);
  }
  onPing(id: number) {
    this.add(['ping', id]);
  }
  onGoAway(last: number, status: number) {
    this.add(['goaway', last, status]);
  }
  onIgnoredFrame(type: number, length: number) {
    this.add(['ignored', type, length]);
  }
  onError(err: SpdyProtocolError) {
    this.flush();
    this.errors.push(err);
    this.list.push(['error', err.message]);
  }
}

function parse(pieces: Buffer[]): Events {
  const ev = new Events();
  const parser = new FrameParser(ev, new HeaderDecompressor(LIMIT, 64), { maxControlFrameSize: LIMIT });
  for (const p of pieces) parser.write(p); // must never throw
  return ev;
}

/** Every SPDY byte stream kubectl and the emulator produced, both directions. */
function recordedStreams(): [string, Buffer][] {
  const tunnel = recordedSession('tunnel-portforward');
  const joined = (side: 'client' | 'server') =>
    Buffer.concat(wsDataMessages(tunnel, side).map((m) => m.data));
  return [
    ['spdy-exec client', spdyBytes(recordedSession('spdy-exec'), 'client')],
    ['spdy-exec server', spdyBytes(recordedSession('spdy-exec'), 'server')],
    ['spdy-portforward client', spdyBytes(recordedSession('spdy-portforward'), 'client')],
    ['spdy-portforward server', spdyBytes(recordedSession('spdy-portforward'), 'server')],
    ['tunnel client', joined('client')],
    ['tunnel server', joined('server')],
  ];
}

test('the recorded kubectl streams parse cleanly (the base the mutations start from)', () => {
  for (const [name, bytes] of recordedStreams()) {
    const ev = parse([bytes]);
    assert.deepEqual(ev.errors, [], name);
    assert.ok(ev.list.length >= 4, `${name}: ${ev.list.length} events`);
  }
});

test('random bytes in random chunks: never thrown, at most one SpdyProtocolError, nothing after it', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), chunkSizes, (bytes, sizes) => {
      const input = Buffer.from(bytes);
      const ev = parse(chunked(input, sizes));
      assert.ok(ev.errors.length <= 1);
      assert.equal(ev.afterError, 0);
      for (const e of ev.errors) assert.ok(e instanceof SpdyProtocolError);
    }),
    { numRuns: 500 },
  );
});

test('mutated kubectl sessions: chunking never changes what is parsed; errors are SpdyProtocolErrors, once', () => {
  for (const [name, bytes] of recordedStreams()) {
    fc.assert(
      fc.property(mutated(bytes), chunkSizes, (input, sizes) => {
        const whole = parse([input]);
        const pieces = parse(chunked(input, sizes));
        assert.deepEqual(pieces.list, whole.list, name);
        assert.ok(whole.errors.length <= 1);
        assert.equal(whole.afterError, 0);
      }),
      { numRuns: 150 },
    );
  }
});

/** The compressed header blocks of the recorded SYN_STREAMs, in order (one zlib context). */
function recordedHeaderBlocks(): Buffer[] {
  const blocks: Buffer[] = [];
  for (const [name, bytes] of recordedStreams()) {
    if (!name.endsWith('client')) continue;
    let off = 0;
    while (off + 8 <= bytes.length) {
      const len = bytes.readUIntBE(off + 5, 3);
      if (bytes[off]! & 0x80 && bytes.readUInt16BE(off + 2) === FrameType.SYN_STREAM)
        blocks.push(bytes.subarray(off + 18, off + 8 + len));
      off += 8 + len;
    }
    break; // one session's context
  }
  return blocks;
}

test('header blocks: random and mutated blocks give a bounded HeaderMap or a SpdyProtocolError', () => {
  const blocks = recordedHeaderBlocks();
  assert.ok(blocks.length >= 3);
  const check = (run: (d: HeaderDecompressor) => HeaderMap | undefined) => {
    const d = new HeaderDecompressor(LIMIT, 16);
    try {
      const map = run(d);
      if (map) {
        assert.ok(Object.keys(map).length <= 16);
        assert.ok(Object.entries(map).reduce((n, [k, v]) => n + k.length + v.length, 0) <= LIMIT);
      }
    } catch (err) {
      assert.ok(err instanceof SpdyProtocolError, `threw ${(err as Error).name}: ${(err as Error).message}`);
    }
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (b) => {
      check((d) => d.decompress(Buffer.concat([blocks[0]!.subarray(0, 6), Buffer.from(b)])));
      check((d) => d.decompress(Buffer.from(b)));
    }),
    { numRuns: 400 },
  );
  fc.assert(
    fc.property(fc.nat({ max: blocks.length - 1 }), fc.gen(), (which, gen) => {
      const bad = gen(mutated, blocks[which]!);
      check((d) => {
        let last: HeaderMap | undefined;
        for (let i = 0; i < which; i++) last = d.decompress(blocks[i]!);
        last = d.decompress(bad);
        // the context goes on after a damaged block that still inflated
        if (which + 1 < blocks.length) d.decompress(blocks[which + 1]!);
        return last;
      });
    }),
    { numRuns: 400 },
  );
});

/** A deflate stream with the SPDY dictionary, sync-flushed: a header block that inflates to `raw`. */
function deflated(raw: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const z = createDeflate({ level: 9, dictionary: SPDY3_DICTIONARY });
    const out: Buffer[] = [];
    z.on('data', (d: Buffer) => out.push(d));
    z.write(raw);
    z.flush(constants.Z_SYNC_FLUSH, () => {
      z.close();
      resolve(Buffer.concat(out));
    });
  });
}

function controlFrame(type: number, flags: number, body: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE((0x80030000 | type) >>> 0, 0);
  h.writeUInt32BE(((flags << 24) | body.length) >>> 0, 4);
  return Buffer.concat([h, body]);
}

function synStreamWithBlock(id: number, block: Buffer): Buffer {
  const body = Buffer.alloc(10 + block.length);
  body.writeUInt32BE(id, 0);
  block.copy(body, 10);
  return controlFrame(FrameType.SYN_STREAM, 0, body);
}

test('a zlib bomb (a 60 KiB frame inflating to 60 MiB) is refused at the cap; 200 of them leave the heap flat', async () => {
  const bomb = await deflated(serializeHeaderBlock({ x: 'a'.repeat(60 * MiB) }));
  assert.ok(bomb.length <= LIMIT, `bomb fits a control frame (${bomb.length} bytes)`);
  const frame = synStreamWithBlock(1, bomb);
  const before = await settledHeap();
  const started = performance.now();
  for (let i = 0; i < 200; i++) {
    const ev = parse([frame]);
    assert.match(ev.errors[0]?.message ?? '', /inflates beyond 65536 bytes/);
  }
  const ms = performance.now() - started;
  const grown = (await settledHeap()) - before;
  assert.ok(ms < 5000, `200 bombs took ${ms.toFixed(0)} ms`);
  assert.ok(grown < 4 * MiB, `heap grew ${(grown / MiB).toFixed(1)} MiB`);
});

test('16 MiB frame lengths: a control frame is refused from its header; a DATA frame streams through unbuffered', () => {
  const huge = Buffer.alloc(8);
  huge.writeUInt32BE((0x80030000 | FrameType.SYN_STREAM) >>> 0, 0);
  huge.writeUInt32BE(0xffffff, 4);
  assert.match(parse([huge]).errors[0]?.message ?? '', /exceeds the limit/);

  const ev = new Events();
  const parser = new FrameParser(ev, new HeaderDecompressor(LIMIT, 64), { maxControlFrameSize: LIMIT });
  parser.write(dataFrameHeader(7, FLAG_FIN, 0xffffff));
  const piece = Buffer.alloc(MiB);
  for (let i = 0; i < 16; i++) {
    parser.write(piece.subarray(0, i === 15 ? MiB - 1 : MiB));
    assert.equal(parser.dataMissing, i === 15 ? 0 : 0xffffff - (i + 1) * MiB, 'nothing held back');
    assert.equal(parser.atFrameBoundary, i === 15);
  }
  assert.deepEqual(ev.list, [['data', 7, 0xffffff, true]]);
});

test('a control frame trickled in one byte at a time is parsed in linear time', () => {
  for (const size of [16, 32, 48, 64].map((k) => k * 1024)) {
    const frame = synStreamWithBlock(1, Buffer.alloc(size - 10)); // invalid: the time to reach it counts
    const started = performance.now();
    const ev = parse(chunked(frame, [1]));
    const ms = performance.now() - started;
    assert.equal(ev.errors.length, 1);
    assert.ok(ms < 250, `${size} bytes in 1-byte chunks took ${ms.toFixed(0)} ms`);
  }
});

test('a million tiny frames (empty DATA on an unknown stream) pass in seconds with a flat heap', async () => {
  const frame = dataFrameHeader(9, 0, 0);
  const million = Buffer.alloc(8 * 1_000_000);
  for (let i = 0; i < 1_000_000; i++) frame.copy(million, i * 8);
  const before = await settledHeap();
  const started = performance.now();
  const ev = parse(chunked(million, [65536]));
  const ms = performance.now() - started;
  assert.deepEqual(ev.errors, []);
  assert.ok(ms < 3000, `took ${ms.toFixed(0)} ms`);
  ev.list.length = 0;
  assert.ok((await settledHeap()) - before < 16 * MiB);
});

// ---- whole sessions over real sockets ------------------------------------------------------------

let server: Server;
let port: number;
const sessions: SpdySession[] = [];

before(async () => {
  server = createServer((socket) => {
    const s = new SpdySession(socket, { role: 'server' });
    s.on('stream', (stream) => {
      stream.reply();
      stream.resume(); // a reader that keeps up
    });
    sessions.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

after(() => {
  for (const s of sessions) s.destroy();
  server.close();
});

async function dialRaw(): Promise<{ socket: Socket; session: SpdySession; closed: Promise<unknown> }> {
  const known = sessions.length;
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  const session = await waitFor('server session', () => sessions[known]);
  const closed = new Promise((resolve) => session.once('close', resolve));
  return { socket, session, closed };
}

test('sessions fed mutated kubectl streams never throw and close within 1 s of the input ending', async () => {
  const base = spdyBytes(recordedSession('spdy-exec'), 'client');
  const uncaught: Error[] = [];
  const onUncaught = (err: Error) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    await fc.assert(
      fc.asyncProperty(mutated(base), chunkSizes, async (input, sizes) => {
        const { socket, closed } = await dialRaw();
        socket.resume(); // read what the session answers
        for (const piece of chunked(input, sizes)) socket.write(piece);
        socket.end();
        await withTimeout(closed, 1000, 'session close after the input ended');
        socket.destroy();
      }),
      { numRuns: 60 },
    );
  } finally {
    process.off('uncaughtException', onUncaught);
  }
  assert.deepEqual(uncaught, []);
});

test('a million PINGs from a peer that reads nothing: echoes stop at the socket, reading pauses, memory stays bounded', async () => {
  const { socket, session, closed } = await dialRaw();
  socket.pause(); // never reads the echoes
  const batch = Buffer.concat(Array.from({ length: 10_000 }, () => pingFrame(1)));
  const before = await settledHeap();
  let sent = 0;
  const sending = (async () => {
    while (sent < 100 && !socket.destroyed) {
      sent++;
      if (!socket.write(batch)) await Promise.race([once(socket, 'drain'), once(socket, 'close')]);
    }
  })();
  await waitFor('the session to stop reading', () => session.socket.isPaused(), 10_000);
  await new Promise((r) => setTimeout(r, 300));
  const held = (session.socket as Socket).writableLength;
  const grown = (await settledHeap()) - before;
  assert.ok(held <= 2 * MiB, `echoes queued: ${held} bytes`);
  assert.ok(grown < 32 * MiB, `heap grew ${(grown / MiB).toFixed(1)} MiB`);
  assert.ok(sent < 100, `the flood was held back (${sent} of 100 batches went out)`);
  // reading the echoes lets the session go on
  socket.resume();
  await withTimeout(sending, 30_000, 'the rest of the flood');
  socket.end();
  const err = (await withTimeout(closed, 5000, 'session close')) as SpdySessionError | undefined;
  assert.equal(err, undefined);
});

test('an endless control frame: at most the limit is held, then the next byte is a new frame header', async () => {
  const { socket, closed } = await dialRaw();
  socket.resume();
  const h = Buffer.alloc(8);
  h.writeUInt32BE((0x80030000 | FrameType.SYN_STREAM) >>> 0, 0);
  h.writeUInt32BE(LIMIT + 1, 4);
  socket.write(h);
  const err = (await withTimeout(closed, 1000, 'close on an oversize frame')) as SpdySessionError;
  assert.equal(err?.kind, 'protocol');
  socket.destroy();
});
