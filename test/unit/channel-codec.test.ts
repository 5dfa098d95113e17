/**
 * Kubernetes WebSocket channel framing (docs/protocols.md §3.3, §3.3.2, §4.2): binary and base64
 * messages, the v5 CLOSE message, the legacy port-forward preamble.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  CH_CLOSE,
  CH_ERROR,
  CH_RESIZE,
  CH_STDERR,
  CH_STDIN,
  CH_STDOUT,
  ChannelProtocolError,
  decodeMessage,
  decodePortPreamble,
  encodeBase64,
  encodeBinary,
  encodeClose,
  encodeMessage,
  encodePortPreamble,
  parseClosePayload,
} from '../../src/channel/codec.js';

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');

test('channel numbers are the apimachinery ones', () => {
  assert.deepEqual([CH_STDIN, CH_STDOUT, CH_STDERR, CH_ERROR, CH_RESIZE, CH_CLOSE], [0, 1, 2, 3, 4, 255]);
});

test('§3.3 examples: stdin "foo\\n" → text 0Zm9vCg==, stdout "\\n" → 1Cg==, and back', () => {
  assert.equal(encodeBase64(CH_STDIN, Buffer.from('foo\n')), '0Zm9vCg==');
  assert.equal(encodeBase64(CH_STDOUT, Buffer.from('\n')), '1Cg==');
  assert.equal(encodeMessage(CH_STDIN, Buffer.from('foo\n'), true), '0Zm9vCg==');
  const stdin = decodeMessage(Buffer.from('0Zm9vCg=='), false, true);
  assert.deepEqual(stdin, { channel: 0, payload: Buffer.from('foo\n') });
  const stdout = decodeMessage(Buffer.from('1Cg=='), false, true);
  assert.deepEqual(stdout, { channel: 1, payload: Buffer.from('\n') });
  // kubelet-era servers accept base64 text in binary frames too
  assert.deepEqual(decodeMessage(Buffer.from('1Cg=='), true, true), {
    channel: 1,
    payload: Buffer.from('\n'),
  });
  // the established marker: just the channel character
  assert.deepEqual(decodeMessage(Buffer.from('1'), false, true), { channel: 1, payload: Buffer.alloc(0) });
});

test('binary messages: [channel] + payload; decoding slices without copying', () => {
  const msg = encodeBinary(CH_STDOUT, Buffer.from('hi\n'));
  assert.deepEqual(msg, hex('01 68 69 0a'));
  assert.deepEqual(encodeMessage(CH_STDERR, Buffer.from('x'), false), hex('02 78'));
  const decoded = decodeMessage(msg, true, false)!;
  assert.equal(decoded.channel, 1);
  assert.deepEqual(decoded.payload, Buffer.from('hi\n'));
  assert.equal(decoded.payload.buffer, msg.buffer, 'a view into the message');
  assert.deepEqual(decodeMessage(hex('01'), true, false), { channel: 1, payload: Buffer.alloc(0) });
  assert.deepEqual(decodeMessage(hex('03'), true, false), { channel: 3, payload: Buffer.alloc(0) });
});

test('empty messages are ignored (null)', () => {
  assert.equal(decodeMessage(Buffer.alloc(0), true, false), null);
  assert.equal(decodeMessage(Buffer.alloc(0), false, true), null);
});

test('text on a binary protocol, bad base64 and bad channel characters are ChannelProtocolErrors', () => {
  assert.throws(
    () => decodeMessage(Buffer.from('1hi'), false, false),
    (e: unknown) => e instanceof ChannelProtocolError && e.closeCode === 1003,
  );
  for (const bad of ['1Zm9v!', '1Z', '1Zm9vCg===', 'xZm9v', '/Zm9v']) {
    assert.throws(() => decodeMessage(Buffer.from(bad), false, true), ChannelProtocolError, bad);
  }
});

test('binary and base64 round trips for any channel and payload (property)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 }), (ch, bytes) => {
      const payload = Buffer.from(bytes);
      assert.deepEqual(decodeMessage(encodeBinary(ch, payload), true, false), { channel: ch, payload });
      if (ch <= 9) {
        const text = encodeBase64(ch, payload);
        assert.deepEqual(decodeMessage(Buffer.from(text), false, true), { channel: ch, payload });
      }
    }),
  );
});

test('v5 CLOSE: [255, ch] for ch < 5; wrong length or channel ≥ 5 is a ChannelProtocolError', () => {
  assert.deepEqual(encodeClose(CH_STDIN), hex('ff 00'));
  const msg = decodeMessage(encodeClose(CH_STDIN), true, false)!;
  assert.equal(msg.channel, CH_CLOSE);
  assert.equal(parseClosePayload(msg.payload), 0);
  for (let ch = 0; ch < 5; ch++) assert.equal(parseClosePayload(Buffer.from([ch])), ch);
  const bad: [Buffer, RegExp][] = [
    [Buffer.alloc(0), /1 bytes, want 2/],
    [Buffer.from([0, 0]), /3 bytes, want 2/],
    [Buffer.from([5]), /channel 5/],
    [Buffer.from([255]), /channel 255/],
  ];
  for (const [payload, message] of bad) {
    assert.throws(
      () => parseClosePayload(payload),
      (e: unknown) => e instanceof ChannelProtocolError && message.test(e.message) && e.closeCode === 1002,
    );
  }
});

test('§4.2 port preamble: 8080 → [00 90 1f] data / [01 90 1f] error; base64 0kB8= / 1kB8=', () => {
  const preamble = encodePortPreamble(8080);
  assert.deepEqual(preamble, hex('90 1f'));
  assert.deepEqual(encodeBinary(0, preamble), hex('00 90 1f'));
  assert.deepEqual(encodeBinary(1, preamble), hex('01 90 1f'));
  assert.equal(encodeBase64(0, preamble), '0kB8=');
  assert.equal(encodeBase64(1, preamble), '1kB8=');
  assert.equal(decodePortPreamble(decodeMessage(hex('01 90 1f'), true, false)!.payload), 8080);
  assert.equal(decodePortPreamble(decodeMessage(Buffer.from('0kB8='), false, true)!.payload), 8080);
  assert.equal(decodePortPreamble(encodePortPreamble(65535)), 65535);
  assert.throws(() => decodePortPreamble(hex('90')), ChannelProtocolError);
});
