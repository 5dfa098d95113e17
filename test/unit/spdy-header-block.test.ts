/**
 * SPDY/3 header blocks (docs/protocols.md §6.2): the dictionary, the verified spdystream bytes, and our
 * compressor/decompressor against Node's streaming zlib with the dictionary, across many frames.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib';
import { SpdyProtocolError } from '../../src/spdy/constants.js';
import { SPDY3_DICTIONARY, SPDY3_DICTIONARY_ID } from '../../src/spdy/dictionary.js';
import {
  HeaderCompressor,
  HeaderDecompressor,
  type HeaderMap,
  parseHeaderBlock,
  serializeHeaderBlock,
} from '../../src/spdy/header-block.js';

function adler32(buf: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of buf) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

const hex = (s: string) => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');

/** Feed one block to a streaming zlib object and collect what a sync flush yields. */
function flushThrough(z: Inflate | Deflate, block: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const onData = (d: Buffer) => out.push(d);
    const onError = (err: Error) => reject(err);
    z.on('data', onData);
    z.once('error', onError);
    z.write(block);
    z.flush(constants.Z_SYNC_FLUSH, () => {
      z.off('data', onData);
      z.off('error', onError);
      resolve(Buffer.concat(out));
    });
  });
}

const sorted = (h: HeaderMap) => Object.fromEntries(Object.entries(h).sort(([a], [b]) => a.localeCompare(b)));

test('dictionary: 1423 bytes, Adler-32 0xE3C6A7C2', () => {
  assert.equal(SPDY3_DICTIONARY.length, 1423);
  assert.equal(adler32(SPDY3_DICTIONARY), 0xe3c6a7c2);
  assert.equal(SPDY3_DICTIONARY_ID, 0xe3c6a7c2);
});

test('§6.2 spdystream header blocks decode, the zlib context carried across frames', () => {
  // client → server direction: SYN_STREAM #1 and #2 share one inflate context
  const c2s = new HeaderDecompressor(64 * 1024, 64);
  assert.deepEqual(
    { ...c2s.decompress(hex('78f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff')) },
    { streamtype: 'error' },
  );
  // #2 has no zlib header and back-references #1 ("streamtype")
  assert.deepEqual({ ...c2s.decompress(hex('c22e555c92929907000000ffff')) }, { streamtype: 'stdin' });

  // server → client direction: SYN_REPLY #1 and #2, empty blocks
  const s2c = new HeaderDecompressor(64 * 1024, 64);
  assert.deepEqual({ ...s2c.decompress(hex('78f9e3c6a7c26260606000000000ffff')) }, {});
  assert.deepEqual({ ...s2c.decompress(hex('026100000000ffff')) }, {});
});

test('§6.2 block #2 does not decode in isolation (it needs the context of #1)', () => {
  const fresh = new HeaderDecompressor(64 * 1024, 64);
  assert.throws(() => fresh.decompress(hex('c22e555c92929907000000ffff')), SpdyProtocolError);
  // nor does #1's block pass through a second fresh-looking zlib header once the context exists
  const d = new HeaderDecompressor(64 * 1024, 64);
  d.decompress(hex('78f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff'));
  assert.throws(() => d.decompress(hex('78f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff')));
});

test('uncompressed block layout: 32-bit count and lengths; names lowercased; repeated names NUL-joined', () => {
  const block = serializeHeaderBlock({ streamtype: 'error' });
  assert.deepEqual(block, hex('00000001 0000000a 73747265616d74797065 00000005 6572726f72'));
  const twice = Buffer.concat([
    hex('00000002'),
    hex('00000004'),
    Buffer.from('Port'),
    hex('00000002'),
    Buffer.from('80'),
    hex('00000004'),
    Buffer.from('port'),
    hex('00000002'),
    Buffer.from('81'),
  ]);
  assert.deepEqual({ ...parseHeaderBlock(twice, 8) }, { port: '80\u000081' });
});

test('our compressor: first block carries 78 F9 E3 C6 A7 C2, later ones no zlib header; each ends 00 00 FF FF', () => {
  const c = new HeaderCompressor();
  const first = c.compress({ streamtype: 'error' });
  assert.deepEqual(first.subarray(0, 6), hex('78f9e3c6a7c2'));
  const second = c.compress({ streamtype: 'stdin' });
  assert.notEqual(second[0], 0x78);
  // Go's flate reader (spdystream) hands out a stored block's bytes only at the next flush point and
  // otherwise reads on past the frame, which breaks the next frame: kubectl then times out waiting
  // for the second SYN_REPLY (test/interop/spdy-kubectl.test.ts). Every block must end with the marker.
  for (const block of [first, second, c.compress({}), c.compress({ big: 'v'.repeat(70_000) })]) {
    assert.deepEqual(block.subarray(block.length - 4), hex('0000ffff'));
  }
});

test("our compressor's blocks, frame after frame, inflate with Node's streaming zlib and the dictionary", async () => {
  const c = new HeaderCompressor();
  const inflate = createInflate({ dictionary: SPDY3_DICTIONARY });
  const ours = new HeaderDecompressor(256 * 1024, 64);
  for (let i = 0; i < 200; i++) {
    const headers: HeaderMap =
      i % 3 === 0
        ? {}
        : { streamtype: i % 2 ? 'data' : 'error', port: String(8000 + i), requestid: String(i) };
    if (i % 50 === 7) headers['big'] = randomBytes(40_000).toString('base64'); // > 64 KiB: several stored blocks
    const block = c.compress(headers);
    const inflated = await flushThrough(inflate, block);
    assert.deepEqual(inflated, serializeHeaderBlock(headers), `frame ${i} via node zlib`);
    assert.deepEqual({ ...ours.decompress(block) }, headers, `frame ${i} via our decompressor`);
  }
  inflate.close();
});

test("Node's level-9 sync-flushed deflate (Go-like blocks with back-references) decodes across frames", async () => {
  const deflate = createDeflate({ level: 9, dictionary: SPDY3_DICTIONARY });
  const ours = new HeaderDecompressor(64 * 1024, 64);
  // 16 values of 1800 bytes repeat every 16 frames: later blocks back-reference earlier frames up to
  // ~30 KiB back, while the history as a whole grows far past the 32 KiB window
  const pool = Array.from({ length: 16 }, () => randomBytes(900).toString('hex'));
  let total = 0;
  for (let i = 0; i < 300; i++) {
    const headers: HeaderMap = {
      streamtype: ['error', 'stdin', 'stdout', 'stderr', 'resize', 'data'][i % 6]!,
      port: String(1 + (i % 7)),
      value: pool[(i * 7) % pool.length]!,
    };
    const block = await flushThrough(deflate, serializeHeaderBlock(headers));
    if (i === 0) assert.deepEqual(block.subarray(0, 6), hex('78f9e3c6a7c2'));
    assert.deepEqual(
      block.subarray(block.length - 4),
      hex('0000ffff'),
      'each block ends with the sync marker',
    );
    if (i >= 16) assert.ok(block.length < 200, 'later blocks are back-references, not literals');
    total += block.length;
    assert.deepEqual(sorted(ours.decompress(block)), sorted(headers), `frame ${i}`);
  }
  assert.ok(total < 300 * 1000);
  deflate.close();
});

test('bad zlib header, unknown dictionary, garbage, bomb and too many pairs are SpdyProtocolErrors', () => {
  const noDict = new HeaderDecompressor(64 * 1024, 64);
  assert.throws(() => noDict.decompress(hex('789c0300000001')), SpdyProtocolError, 'no FDICT');
  assert.throws(() => noDict.decompress(hex('78f9deadbeef00')), /unknown zlib dictionary/);
  assert.throws(() => noDict.decompress(hex('78f9')), SpdyProtocolError, 'short');
  const garbage = new HeaderDecompressor(64 * 1024, 64);
  assert.throws(() => garbage.decompress(hex('78f9e3c6a7c2ffffffffffffffff')), SpdyProtocolError);
});

test('a zlib bomb stops at the inflate cap; too many pairs are refused', async () => {
  const deflate = createDeflate({ level: 9, dictionary: SPDY3_DICTIONARY });
  const bomb = await flushThrough(deflate, serializeHeaderBlock({ x: 'a'.repeat(4 * 1024 * 1024) }));
  deflate.close();
  assert.ok(bomb.length < 10_000, `bomb is small compressed (${bomb.length} bytes)`);
  assert.throws(() => new HeaderDecompressor(64 * 1024, 64).decompress(bomb), /inflates beyond 65536/);

  const pairs: HeaderMap = {};
  for (let i = 0; i < 65; i++) pairs[`h${i}`] = 'v';
  const block = new HeaderCompressor().compress(pairs);
  assert.throws(
    () => new HeaderDecompressor(64 * 1024, 64).decompress(block),
    /65 pairs exceed the limit of 64/,
  );
  assert.equal(Object.keys(new HeaderDecompressor(64 * 1024, 65).decompress(block)).length, 65);
});
