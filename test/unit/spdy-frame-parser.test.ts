/**
 * The streaming SPDY/3 frame parser (docs/protocols.md §6.1): the §6.2 byte sequences, every frame type
 * split at every byte position, limits, and malformed input reported through onError (never thrown).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { constants, createDeflate } from 'node:zlib';
import fc from 'fast-check';
import { FrameType, GoAwayStatus, RstStatus, SpdyProtocolError } from '../../src/spdy/constants.js';
import { SPDY3_DICTIONARY } from '../../src/spdy/dictionary.js';
import { type FrameHandler, FrameParser } from '../../src/spdy/frame-parser.js';
import {
  dataFrameHeader,
  goAwayFrame,
  pingFrame,
  rstStreamFrame,
  synReplyFrame,
  synStreamFrame,
} from '../../src/spdy/frame-writer.js';
import { HeaderCompressor, HeaderDecompressor, serializeHeaderBlock } from '../../src/spdy/header-block.js';

const hex = (s: string) => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');

type Event = (string | number | Record<string, string>)[];

/**
 * Records parser events. DATA is a byte stream per stream: consecutive pieces for one stream are
 * merged until FIN or another event, so that any split of the input compares equal.
 */
class Recorder implements FrameHandler {
  events: Event[] = [];
  errors: SpdyProtocolError[] = [];
  private open: { id: number; parts: Buffer[] } | undefined;
  dataPieces = 0;

  onData(streamId: number, payload: Buffer, fin: boolean): void {
    this.dataPieces++;
    if (this.open !== undefined && this.open.id !== streamId) this.closeData(false);
    if (this.open === undefined) this.open = { id: streamId, parts: [] };
    this.open.parts.push(Buffer.from(payload));
    if (fin) this.closeData(true);
  }
  /** A DATA frame without FIN ends where the next event begins. */
  private closeData(fin: boolean): void {
    if (this.open === undefined) return;
    this.events.push([
      'data',
      this.open.id,
      Buffer.concat(this.open.parts).toString('hex'),
      fin ? 'fin' : '',
    ]);
    this.open = undefined;
  }
  private add(...e: Event): void {
    this.closeData(false);
    this.events.push(e);
  }
  onSynStream(id: number, assoc: number, priority: number, flags: number, headers: Record<string, string>) {
    this.add('syn_stream', id, assoc, priority, flags, { ...headers });
  }
  onSynReply(id: number, flags: number, headers: Record<string, string>) {
    this.add('syn_reply', id, flags, { ...headers });
  }
  onRstStream(id: number, status: number) {
    this.add('rst', id, status);
  }
  onPing(id: number) {
    this.add('ping', id);
  }
  onGoAway(last: number, status: number) {
    this.add('goaway', last, status);
  }
  onIgnoredFrame(type: number, length: number) {
    this.add('ignored', type, length);
  }
  onError(err: SpdyProtocolError) {
    this.closeData(false);
    this.errors.push(err);
  }
  finish(): Event[] {
    this.closeData(false);
    return this.events;
  }
}

function newParser(maxControlFrameSize = 64 * 1024, maxHeaderBytes = 64 * 1024, maxPairs = 64) {
  const rec = new Recorder();
  const parser = new FrameParser(rec, new HeaderDecompressor(maxHeaderBytes, maxPairs), {
    maxControlFrameSize,
  });
  return { rec, parser };
}

function control(type: number, flags: number, body: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0x8003, 0);
  h.writeUInt16BE(type, 2);
  h.writeUInt32BE(((flags << 24) | body.length) >>> 0, 4);
  return Buffer.concat([h, body]);
}

function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  for (const [i, v] of values.entries()) b.writeUInt32BE(v >>> 0, i * 4);
  return b;
}

/** Go-like header blocks: one level-9 deflate context, sync flush per block. */
async function goLikeBlocks(blocks: Record<string, string>[]): Promise<Buffer[]> {
  const deflate = createDeflate({ level: 9, dictionary: SPDY3_DICTIONARY });
  const out: Buffer[] = [];
  for (const headers of blocks) {
    out.push(
      await new Promise<Buffer>((resolve) => {
        const parts: Buffer[] = [];
        const onData = (d: Buffer) => parts.push(d);
        deflate.on('data', onData);
        deflate.write(serializeHeaderBlock(headers));
        deflate.flush(constants.Z_SYNC_FLUSH, () => {
          deflate.off('data', onData);
          resolve(Buffer.concat(parts));
        });
      }),
    );
  }
  deflate.close();
  return out;
}

test('§6.2 spdystream bytes, client → server: SYN_STREAMs (zlib context across frames), DATA, FIN, PING, RST, GOAWAY', () => {
  const wire = Buffer.concat([
    hex(
      '80030001 00000029 00000001 00000000 00 00 78f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff',
    ),
    control(1, 0, Buffer.concat([u32(3, 0), hex('0000'), hex('c22e555c92929907000000ffff')])),
    hex('00000003 00000002 6869'),
    hex('00000003 01000000'),
    hex('80030006 00000004 00000001'),
    hex('80030003 00000008 00000001 00000005'),
    hex('80030007 00000008 00000000 00000000'),
  ]);
  const { rec, parser } = newParser();
  parser.write(wire);
  assert.deepEqual(rec.errors, []);
  assert.deepEqual(rec.finish(), [
    ['syn_stream', 1, 0, 0, 0, { streamtype: 'error' }],
    ['syn_stream', 3, 0, 0, 0, { streamtype: 'stdin' }],
    ['data', 3, '6869', 'fin'],
    ['ping', 1],
    ['rst', 1, RstStatus.CANCEL],
    ['goaway', 0, GoAwayStatus.OK],
  ]);
});

test('§6.2 spdystream bytes, server → client: SYN_REPLYs with empty blocks', () => {
  const wire = Buffer.concat([
    hex('80030002 00000014 00000001 78f9e3c6a7c26260606000000000ffff'),
    control(2, 0, Buffer.concat([u32(3), hex('026100000000ffff')])),
  ]);
  const { rec, parser } = newParser();
  parser.write(wire);
  assert.deepEqual(rec.finish(), [
    ['syn_reply', 1, 0, {}],
    ['syn_reply', 3, 0, {}],
  ]);
});

test('our writer produces the §6.2 layouts byte for byte (PING, RST, GOAWAY, DATA, FIN)', () => {
  assert.deepEqual(pingFrame(1), hex('80030006 00000004 00000001'));
  assert.deepEqual(rstStreamFrame(1, RstStatus.CANCEL), hex('80030003 00000008 00000001 00000005'));
  assert.deepEqual(goAwayFrame(0, GoAwayStatus.OK), hex('80030007 00000008 00000000 00000000'));
  assert.deepEqual(dataFrameHeader(3, 0, 2), hex('00000003 00000002'));
  assert.deepEqual(dataFrameHeader(3, 1, 0), hex('00000003 01000000'));
  const c = new HeaderCompressor();
  const syn = synStreamFrame(1, 0, 0, c.compress({ streamtype: 'error' }));
  assert.deepEqual(syn.subarray(0, 18), hex('80030001 00000035 00000001 00000000 00 00'));
  assert.equal(syn.readUIntBE(5, 3), syn.length - 8);
});

async function allFramesBuffer(): Promise<{ wire: Buffer; expected: Event[] }> {
  const [b1, b2, b3, b4] = await goLikeBlocks([
    { streamtype: 'error', port: '8080', requestid: '0' },
    {},
    { streamtype: 'data', port: '8080', requestid: '0' },
    { 'x-ignored': 'yes' },
  ]);
  const payload = Buffer.from('hello, spdy world: some bytes of a DATA frame');
  const wire = Buffer.concat([
    synStreamFrame(1, 0, 0, b1!),
    synReplyFrame(1, 0, b2!),
    dataFrameHeader(1, 0, payload.length),
    payload,
    pingFrame(7),
    dataFrameHeader(1, 1, 4),
    Buffer.from('last'),
    rstStreamFrame(1, RstStatus.CANCEL),
    control(FrameType.SETTINGS, 0, u32(1, 0x01000007, 0x10000)),
    control(FrameType.WINDOW_UPDATE, 0, u32(1, 65536)),
    control(0x0f00, 0, Buffer.from('an unknown control type')),
    synStreamFrame(3, 0, 0, b3!),
    control(FrameType.HEADERS, 0, Buffer.concat([u32(3), b4!])),
    dataFrameHeader(3, 1, 0),
    goAwayFrame(3, GoAwayStatus.OK),
  ]);
  const expected: Event[] = [
    ['syn_stream', 1, 0, 0, 0, { streamtype: 'error', port: '8080', requestid: '0' }],
    ['syn_reply', 1, 0, {}],
    ['data', 1, payload.toString('hex'), ''],
    ['ping', 7],
    ['data', 1, Buffer.from('last').toString('hex'), 'fin'],
    ['rst', 1, 5],
    ['ignored', FrameType.SETTINGS, 12],
    ['ignored', FrameType.WINDOW_UPDATE, 8],
    ['ignored', 0x0f00, 23],
    ['syn_stream', 3, 0, 0, 0, { streamtype: 'data', port: '8080', requestid: '0' }],
    ['ignored', FrameType.HEADERS, 4 + b4!.length],
    ['data', 3, '', 'fin'],
    ['goaway', 3, 0],
  ];
  return { wire, expected };
}

test('every frame type, fed whole, split at every byte position, and byte by byte: identical events', async () => {
  const { wire, expected } = await allFramesBuffer();
  const whole = newParser();
  whole.parser.write(wire);
  assert.deepEqual(whole.rec.errors, []);
  assert.deepEqual(whole.rec.finish(), expected);

  for (let i = 1; i < wire.length; i++) {
    const { rec, parser } = newParser();
    parser.write(wire.subarray(0, i));
    parser.write(wire.subarray(i));
    assert.deepEqual(rec.errors, [], `split at ${i}`);
    assert.deepEqual(rec.finish(), expected, `split at ${i}`);
  }

  const bytewise = newParser();
  for (let i = 0; i < wire.length; i++) bytewise.parser.write(wire.subarray(i, i + 1));
  assert.deepEqual(bytewise.rec.errors, []);
  assert.deepEqual(bytewise.rec.finish(), expected);
});

test('random chunkings of the same buffer give identical events (property)', async () => {
  const { wire, expected } = await allFramesBuffer();
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 1, max: wire.length - 1 }), { maxLength: 40 }), (cuts) => {
      const { rec, parser } = newParser();
      let prev = 0;
      for (const cut of [...cuts.sort((a, b) => a - b), wire.length]) {
        parser.write(wire.subarray(prev, cut));
        prev = cut;
      }
      assert.deepEqual(rec.errors, []);
      assert.deepEqual(rec.finish(), expected);
    }),
    { numRuns: 300 },
  );
});

test('DATA payloads are handed on as slices of the received chunk, not copies', () => {
  const payload = Buffer.alloc(1000, 7);
  const wire = Buffer.concat([dataFrameHeader(5, 1, payload.length), payload]);
  const seen: Buffer[] = [];
  const handler = new Recorder();
  handler.onData = (_id, p) => {
    seen.push(p);
  };
  const parser = new FrameParser(handler, new HeaderDecompressor(1024, 8), { maxControlFrameSize: 1024 });
  parser.write(wire);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.buffer, wire.buffer, 'same memory as the received chunk');
});

test('a DATA frame of 16 MiB − 1 streams through in pieces as it arrives, never buffered whole', () => {
  const { rec, parser } = newParser();
  const length = 0xffffff;
  parser.write(dataFrameHeader(9, 1, length));
  const chunk = Buffer.alloc(64 * 1024, 1);
  let sent = 0;
  let piecesBefore = 0;
  while (sent < length) {
    const n = Math.min(chunk.length, length - sent);
    parser.write(chunk.subarray(0, n));
    sent += n;
    assert.equal(rec.dataPieces, piecesBefore + 1, 'each arriving chunk is handed on at once');
    piecesBefore = rec.dataPieces;
  }
  parser.write(pingFrame(1));
  const events = rec.finish();
  assert.equal(events.length, 2);
  assert.equal(events[0]![3], 'fin');
  assert.equal((events[0]![2] as string).length, length * 2);
  assert.deepEqual(events[1], ['ping', 1]);
  assert.deepEqual(rec.errors, []);
});

test('ignored control frames of 16 MiB − 1 are skipped without being buffered', () => {
  const { rec, parser } = newParser();
  const h = Buffer.alloc(8);
  h.writeUInt32BE(0x80030004, 0); // SETTINGS
  h.writeUInt32BE(0xffffff, 4);
  parser.write(h);
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < 16; i++) parser.write(i === 15 ? chunk.subarray(0, chunk.length - 1) : chunk);
  parser.write(pingFrame(3));
  assert.deepEqual(rec.errors, []);
  assert.deepEqual(rec.finish(), [
    ['ignored', FrameType.SETTINGS, 0xffffff],
    ['ping', 3],
  ]);
});

test('an oversize control frame is refused from its header alone (before the body arrives)', () => {
  for (const length of [64 * 1024 + 1, 0xffffff]) {
    const { rec, parser } = newParser(64 * 1024);
    const h = Buffer.alloc(8);
    h.writeUInt32BE(0x80030001, 0); // SYN_STREAM
    h.writeUInt32BE(length, 4);
    assert.doesNotThrow(() => parser.write(h));
    assert.equal(rec.errors.length, 1);
    assert.match(rec.errors[0]!.message, /exceeds the limit/);
    assert.equal(rec.errors[0]!.goAwayStatus, GoAwayStatus.PROTOCOL_ERROR);
    assert.ok(parser.failed);
  }
});

test('malformed frames are SpdyProtocolErrors via onError, reported once, never thrown', async () => {
  const [goodBlock] = await goLikeBlocks([{ streamtype: 'error' }]);
  const bomb = (await goLikeBlocks([{ x: 'a'.repeat(1024 * 1024) }]))[0]!;
  const many: Record<string, string> = {};
  for (let i = 0; i < 65; i++) many[`h${i}`] = String(i);
  const manyBlock = new HeaderCompressor().compress(many);
  const cases: [string, Buffer, RegExp][] = [
    ['DATA on stream 0', Buffer.concat([dataFrameHeader(0, 0, 2), hex('6869')]), /DATA frame on stream 0/],
    ['SYN_STREAM on stream 0', synStreamFrame(0, 0, 0, goodBlock!), /SYN_STREAM on stream 0/],
    ['SYN_REPLY on stream 0', synReplyFrame(0, 0, goodBlock!), /SYN_REPLY on stream 0/],
    ['RST on stream 0', control(3, 0, u32(0, 5)), /RST_STREAM on stream 0/],
    ['RST status 0', control(3, 0, u32(1, 0)), /RST_STREAM with status 0/],
    ['PING id 0', control(6, 0, u32(0)), /PING with id 0/],
    ['short RST', control(3, 0, u32(1)), /RST_STREAM frame of 4 bytes/],
    ['short PING', control(6, 0, hex('0001')), /PING frame of 2 bytes/],
    ['short GOAWAY', control(7, 0, u32(0)), /GOAWAY frame of 4 bytes/],
    ['short SYN_STREAM', control(1, 0, u32(1, 0)), /SYN_STREAM frame of 8 bytes/],
    ['short SYN_REPLY', control(2, 0, hex('0000')), /SYN_REPLY frame of 2 bytes/],
    ['short HEADERS', control(8, 0, hex('00')), /HEADERS frame of 1 bytes/],
    ['header block without zlib header', synStreamFrame(1, 0, 0, hex('789c0300000001')), /zlib header/],
    ['header block that does not inflate', synStreamFrame(1, 0, 0, hex('78f9e3c6a7c2ffffffffff')), /inflate/],
    ['zlib bomb', synStreamFrame(1, 0, 0, bomb), /inflates beyond 65536/],
    ['too many header pairs', synStreamFrame(1, 0, 0, manyBlock), /65 pairs exceed the limit of 64/],
    [
      'header block with trailing bytes',
      synStreamFrame(1, 0, 0, new HeaderCompressor().compress({ a: 'b' }).subarray(0, 20)),
      /malformed header block/,
    ],
  ];
  for (const [what, frame, message] of cases) {
    for (const bytewise of [false, true]) {
      const { rec, parser } = newParser();
      const trailer = pingFrame(1); // nothing after the error is parsed
      const input = Buffer.concat([frame, trailer]);
      assert.doesNotThrow(() => {
        if (bytewise) for (let i = 0; i < input.length; i++) parser.write(input.subarray(i, i + 1));
        else parser.write(input);
      }, what);
      assert.equal(rec.errors.length, 1, `${what}: one error`);
      assert.ok(rec.errors[0] instanceof SpdyProtocolError, what);
      assert.match(rec.errors[0]!.message, message, what);
      assert.ok(parser.failed, what);
      assert.deepEqual(
        rec.finish().filter((e) => e[0] === 'ping'),
        [],
        `${what}: nothing parsed after the error`,
      );
    }
  }
});

test('an exception thrown by a handler propagates out of write: not an onError, and the parser stops', () => {
  for (const [what, frame, handler] of [
    ['onData', Buffer.concat([dataFrameHeader(1, 0, 2), hex('6869')]), 'onData'],
    ['onPing', pingFrame(1), 'onPing'],
    ['onRstStream', rstStreamFrame(1, RstStatus.CANCEL), 'onRstStream'],
  ] as const) {
    const { rec, parser } = newParser();
    const bug = new Error(`bug in ${what}`);
    rec[handler] = () => {
      throw bug;
    };
    assert.throws(
      () => parser.write(Buffer.concat([frame, pingFrame(3)])),
      (err) => err === bug,
      what,
    );
    assert.deepEqual(rec.errors, [], `${what}: not reported as the peer's protocol error`);
    assert.ok(parser.failed, `${what}: stopped`);
    parser.write(pingFrame(5));
    assert.deepEqual(rec.finish(), [], `${what}: nothing parsed after it`);
  }
});

test('offsets: where each frame begins, whether the bytes end on a frame boundary, DATA bytes missing', () => {
  const rec = new Recorder();
  const p = new FrameParser(rec, new HeaderDecompressor(65536, 64), { maxControlFrameSize: 65536 });
  const seen: [string, number][] = [];
  rec.onPing = () => seen.push(['ping', p.frameOffset]);
  rec.onData = (_id, payload) => seen.push([`data ${payload.length}`, p.frameOffset]);
  assert.ok(p.atFrameBoundary);
  const ping = pingFrame(1); // 12 bytes
  const data = Buffer.concat([dataFrameHeader(1, 0, 10), Buffer.alloc(10)]); // 18 bytes
  p.write(Buffer.concat([ping, data.subarray(0, 12)]));
  assert.equal(p.bytesReceived, 24);
  assert.equal(p.atFrameBoundary, false);
  assert.equal(p.dataMissing, 6);
  p.write(Buffer.concat([data.subarray(12), ping.subarray(0, 5)]));
  assert.equal(p.atFrameBoundary, false, 'inside a PING header');
  assert.equal(p.dataMissing, 0);
  p.write(ping.subarray(5));
  assert.ok(p.atFrameBoundary);
  assert.equal(p.bytesReceived, 42);
  // every piece of a DATA payload carries the offset of its frame's header
  assert.deepEqual(seen, [
    ['ping', 0],
    ['data 4', 12],
    ['data 6', 12],
    ['ping', 30],
  ]);
});
