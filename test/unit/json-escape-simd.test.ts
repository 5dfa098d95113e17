/**
 * The WebAssembly SIMD kernel that escapes recorded output (src/record/json-escape-simd.ts) writes
 * what the JS writer writes, and what JSON.stringify writes for the same text, byte for byte, and
 * nothing outside its place in the caller's buffer: every byte, every pair of bytes at the edges
 * of a 16-byte round, every length around them, terminal output, UTF-8, and chunks longer than the
 * kernel's memory takes at once. The kernel must be what runs: Node 20+ always has WebAssembly SIMD.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { KERNEL } from '../../src/record/json-escape-simd.js';
import { fastestValidWriter, JsonText, maxJsonLength, writeValidWords } from '../../src/record/json-text.js';

const simd = fastestValidWriter();
/** Where the writers start in the output, and the byte the rest of it holds. */
const AT = 5;
const UNTOUCHED = 0xa5;

/** `bytes` as JSON string text (no quotes), by JSON.stringify. */
function stringified(bytes: Buffer): Buffer {
  return Buffer.from(JSON.stringify(bytes.toString('utf8')).slice(1, -1));
}

/** What `write` makes of `bytes`; fails when it wrote into the output before or past its text. */
function written(write: (bytes: Buffer, out: Buffer, at: number) => number, bytes: Buffer): Buffer {
  const out = Buffer.alloc(AT + maxJsonLength(bytes.length) + 3, UNTOUCHED);
  const end = write(bytes, out, AT);
  assert.ok(end >= AT && end <= out.length, `end ${end}`);
  const untouched = (from: number, to: number) => out.subarray(from, to).every((b) => b === UNTOUCHED);
  assert.ok(untouched(0, AT) && untouched(end, end + 64), 'written outside the text');
  return out.subarray(AT, end);
}

/** The kernel writes what the JS writer writes and, for text, what JSON.stringify writes. */
function check(bytes: Buffer): void {
  const got = written(simd, bytes);
  const want = written(writeValidWords, bytes);
  if (!got.equals(want))
    assert.fail(
      `kernel ${JSON.stringify(got.toString('latin1'))} JS ${JSON.stringify(want.toString('latin1'))}`,
    );
  if (isUtf8(bytes))
    assert.ok(got.equals(stringified(bytes)), `not JSON.stringify's: ${bytes.toString('hex')}`);
}

test('the kernel is valid WebAssembly with SIMD and is what writes valid UTF-8 here', () => {
  const wasm = (globalThis as unknown as { WebAssembly: { validate(bytes: Uint8Array): boolean } })
    .WebAssembly;
  assert.equal(wasm.validate(KERNEL), true);
  assert.notEqual(simd, writeValidWords, 'the JS writer runs: the kernel did not compile');
});

test('every byte, alone and at each place in a round of 16 and at the end', () => {
  for (let b = 0; b < 256; b++)
    for (const [before, after] of [
      [0, 0],
      [15, 0],
      [16, 20],
      [17, 3],
      [31, 0],
      [40, 1],
    ] as const) {
      const bytes = Buffer.alloc(before + 1 + after, 'x');
      bytes[before] = b;
      check(bytes);
    }
});

test('all 65536 pairs of bytes, at the start, across a round edge and at the end', () => {
  const length = 40;
  for (const at of [0, 14, 15, 16, 17, length - 2]) {
    const bytes = Buffer.alloc(length, 'a');
    for (let pair = 0; pair < 65536; pair++) {
      bytes[at] = pair >> 8;
      bytes[at + 1] = pair & 0xff;
      check(bytes);
    }
  }
});

/** `n` random bytes, a `controls` share of them below 0x20, `"` or `\\`, the rest printable ASCII. */
function asciiWithControls(n: number, controls: number): Buffer {
  const random = randomBytes(n * 2);
  const special = Buffer.from('\x00\x01\x07\b\t\n\x0b\f\r\x1b\x1f"\\');
  return Buffer.from(
    Array.from({ length: n }, (_, i) =>
      random[2 * i]! < controls * 256
        ? special[random[2 * i + 1]! % special.length]!
        : 0x20 + (random[2 * i + 1]! % 0x5f),
    ),
  );
}

test('every length from 0 to 100, at every alignment of the input, with few or many escapes', () => {
  const backing = Buffer.alloc(200);
  for (let length = 0; length <= 100; length++)
    for (const controls of [0, 0.05, 0.3, 1]) {
      const bytes = asciiWithControls(length, controls);
      for (let offset = 0; offset < 16; offset++) {
        bytes.copy(backing, offset);
        check(backing.subarray(offset, offset + length));
      }
    }
});

test('terminal output and UTF-8 text', () => {
  const samples = [
    '\x1b[01;34mbin\x1b[0m  \x1b[01;32mrun.sh\x1b[0m  "notes.txt"  C:\\tmp\r\n',
    '\x1b]0;root@pod: ~\x07\x1b[?2004hroot@pod:~# ls -la\r\n\x1b[?2004l\r',
    'Привет, мир — 你好，世界 🙂 ls -la /var/log\r\n',
    '\u2028\u2029\u007f\u0080\u00ff\ud7ff\ue000\uffff\u{10ffff}',
  ];
  for (const sample of samples)
    for (let repeat = 1; repeat < 40; repeat += 3) check(Buffer.from(sample.repeat(repeat)));
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => check(Buffer.from(s))),
    { numRuns: 2000 },
  );
});

test('a chunk longer than the kernel takes at once: 1 MiB and more, plain, escaped, all escapes', () => {
  check(asciiWithControls(1024 * 1024 + 7, 0.1));
  check(Buffer.from('é🙂'.repeat(200_000)));
  check(Buffer.alloc(1024 * 1024 + 1, 1)); // six bytes out for each byte in
  check(Buffer.alloc(3 * 64 * 1024, 'x'));
});

test('JsonText writes with the kernel what it writes with JS, over chunks cut anywhere', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), fc.array(fc.nat(), { maxLength: 8 }), (s, cuts) => {
      const bytes = Buffer.from(s);
      const texts = [new JsonText(simd), new JsonText(writeValidWords)];
      const outs = texts.map(() => Buffer.alloc(maxJsonLength(bytes.length) + 64));
      const ends = [0, 0];
      let from = 0;
      for (const c of [...cuts.map((n) => n % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
        for (let k = 0; k < 2; k++) ends[k] = texts[k]!.write(bytes.subarray(from, c), outs[k]!, ends[k]!);
        from = c;
      }
      assert.ok(outs[0]!.subarray(0, ends[0]).equals(outs[1]!.subarray(0, ends[1])));
      assert.equal(JSON.parse(`"${outs[0]!.toString('utf8', 0, ends[0])}"`), s);
    }),
    { numRuns: 500 },
  );
  const random = randomBytes(100_000);
  const [a, b] = [new JsonText(simd), new JsonText(writeValidWords)].map((text) =>
    written(text.write.bind(text), random),
  );
  assert.ok(a!.equals(b!));
});

test('where WebAssembly is missing or cannot compile the kernel, text is written with JS', () => {
  const jsonText = fileURLToPath(new URL('../../src/record/json-text.ts', import.meta.url));
  // after the import (tsx needs WebAssembly) and before the first JsonText compiles the kernel
  for (const setup of [
    'delete globalThis.WebAssembly;', // as under --jitless
    'WebAssembly.Module = function () { throw new WebAssembly.CompileError("no SIMD"); };',
  ]) {
    const script = `
      const { fastestValidWriter, writeValidWords, JsonText } = await import(${JSON.stringify(jsonText)});
      ${setup}
      const out = Buffer.alloc(64);
      const end = new JsonText().write(Buffer.from('a"\\n'), out, 0);
      console.log(fastestValidWriter() === writeValidWords, out.toString('utf8', 0, end));`;
    const args = ['--import', 'tsx', '--input-type=module', '-e', script];
    assert.equal(execFileSync(process.execPath, args, { encoding: 'utf8' }), 'true a\\"\\n\n', setup);
  }
});
