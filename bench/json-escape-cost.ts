/**
 * What turning recorded output into asciicast JSON text costs (src/record/json-text.ts), in CPU
 * seconds per GiB, for terminal text (ASCII lines), colored terminal output (an escape every few
 * bytes), UTF-8 text (Cyrillic, CJK, emoji) and random bytes (binary output: not UTF-8), each in
 * 32 KiB chunks: JsonText writing valid UTF-8 with the JS that reads words (what runs where
 * WebAssembly does not) beside the WebAssembly SIMD kernel (json-escape-simd.ts), alternating, in
 * the same run. Both must write the same bytes. Random bytes take the same path in both (decoding).
 * `npx tsx bench/json-escape-cost.ts [MiB per measurement, default 256]`
 */
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { fastestValidWriter, JsonText, maxJsonLength, writeValidWords } from '../src/record/json-text.js';

const CHUNK = 32 * 1024;
const total = Number(process.argv[2] ?? 256) * 1024 * 1024;
const simd = fastestValidWriter();
if (simd === writeValidWords) throw new Error('WebAssembly SIMD does not run here');

/** `CHUNK` bytes of `line` over and over, cut where a chunk ends but never inside a character. */
function textChunk(line: string): Buffer {
  const b = Buffer.alloc(CHUNK + 8, line);
  let end = CHUNK;
  while (!isUtf8(b.subarray(0, end))) end--;
  return b.subarray(0, end);
}

const data: Record<string, Buffer> = {
  'ASCII text': textChunk('kubeshim bench output: the quick brown fox jumps over the lazy dog\r\n'),
  'colored ls': textChunk('\x1b[01;34mbin\x1b[0m  \x1b[01;32mrun.sh\x1b[0m  "notes.txt"  C:\\tmp\r\n'),
  'UTF-8 text': textChunk('Привет, мир — 你好，世界 🙂 ls -la /var/log\r\n'),
  'random bytes': randomBytes(CHUNK),
};

const out = Buffer.allocUnsafe(maxJsonLength(CHUNK) + 64);

function secondsPerGiB(writer: JsonText, chunk: Buffer): number {
  for (let i = 0; i < 200; i++) writer.write(chunk, out, 0);
  const cpu = process.cpuUsage();
  for (let done = 0; done < total; done += chunk.length) writer.write(chunk, out, 0);
  const used = process.cpuUsage(cpu);
  return ((used.user + used.system) / 1e6) * ((1024 * 1024 * 1024) / total);
}

/** The two write the same bytes (the chunk ends with a whole character, so that none is carried). */
function checkSame(chunk: Buffer): void {
  const whole = Buffer.concat([chunk, Buffer.from('\n')]);
  const [a, b] = [new JsonText(writeValidWords), new JsonText(simd)].map((writer) => {
    const o = Buffer.alloc(maxJsonLength(whole.length));
    return o.subarray(0, writer.write(whole, o, 0));
  });
  if (!a!.equals(b!)) throw new Error('the writers differ');
}

console.log(
  `CPU s/GiB, ${CHUNK / 1024} KiB chunks, ${total / 1024 / 1024} MiB per measurement, node ${process.version}`,
);
console.log('data              JS words   SIMD   ratio');
for (const [name, chunk] of Object.entries(data)) {
  checkSame(chunk);
  const before: number[] = [];
  const after: number[] = [];
  for (let round = 0; round < 3; round++) {
    before.push(secondsPerGiB(new JsonText(writeValidWords), chunk));
    after.push(secondsPerGiB(new JsonText(simd), chunk));
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[1]!;
  const [b, a] = [median(before), median(after)];
  console.log(
    `${name.padEnd(15)}${b.toFixed(3).padStart(11)}  ${a.toFixed(3).padStart(5)}  ${(a / b).toFixed(2).padStart(5)}×`,
  );
}
