/** The start-up warm-up: it runs the codecs over its frames (they parse), and leaves them as they were. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeMessage, encodeBinary } from '../../src/channel/codec.js';
import { warmUp } from '../../src/io/warm-up.js';
import { HeaderCompressor, HeaderDecompressor } from '../../src/spdy/header-block.js';

test('the warm-up parses what it writes, then the codecs work as before', () => {
  assert.ok(warmUp() > 0, 'no round of the warm-up got its data frames back');
  const headers = { streamtype: 'stdin' };
  const block = new HeaderCompressor().compress(headers);
  assert.deepEqual({ ...new HeaderDecompressor(64 * 1024, 16).decompress(block) }, headers);
  assert.deepEqual(decodeMessage(encodeBinary(2, Buffer.from('x')), true, false), {
    channel: 2,
    payload: Buffer.from('x'),
  });
});
