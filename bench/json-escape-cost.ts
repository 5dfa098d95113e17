/**
 * What turning recorded output into asciicast JSON text costs (src/record/json-text.ts), in CPU
 * seconds per GiB, for terminal text (ASCII lines), colored terminal output (an escape every few
 * bytes), UTF-8 text (Cyrillic, CJK, emoji) and random bytes (binary output: not UTF-8), each in
 * 32 KiB chunks; the writer as it was before it read words (kept here only to be compared against)
 * beside the one in src/, alternating, in the same run. Both must write the same bytes.
 * `npx tsx bench/json-escape-cost.ts [MiB per measurement, default 256]`
 */
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { JsonText, maxJsonLength } from '../src/record/json-text.js';

const CHUNK = 32 * 1024;
const total = Number(process.argv[2] ?? 256) * 1024 * 1024;

/** The writer before: a byte at a time, and Buffer#toString and JSON.stringify for what is not UTF-8. */
class ByteAtATime {
  // the same escapes as the table it had (JSON.stringify writes them alike)
  private static readonly escapes: (Buffer | undefined)[] = Array.from({ length: 256 }, (_, b) => {
    const json = JSON.stringify(String.fromCharCode(b)).slice(1, -1);
    return json.length > 1 ? Buffer.from(json, 'latin1') : undefined;
  });
  private static readonly needsEscape = Uint8Array.from(ByteAtATime.escapes, (e) =>
    e === undefined ? 0 : 1,
  );

  write(bytes: Buffer, out: Buffer, at: number): number {
    if (!isUtf8(bytes)) {
      const json = JSON.stringify(bytes.toString('utf8'));
      return at + out.write(json.slice(1, -1), at, 'utf8');
    }
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      if (ByteAtATime.needsEscape[b] === 0) {
        out[at++] = b;
        continue;
      }
      const esc = ByteAtATime.escapes[b]!;
      for (let k = 0; k < esc.length; k++) out[at++] = esc[k]!;
    }
    return at;
  }
}

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

interface Writer {
  write(bytes: Buffer, out: Buffer, at: number): number;
}

const out = Buffer.allocUnsafe(maxJsonLength(CHUNK) + 64);

function secondsPerGiB(writer: Writer, chunk: Buffer): number {
  for (let i = 0; i < 200; i++) writer.write(chunk, out, 0);
  const cpu = process.cpuUsage();
  for (let done = 0; done < total; done += chunk.length) writer.write(chunk, out, 0);
  const used = process.cpuUsage(cpu);
  return ((used.user + used.system) / 1e6) * ((1024 * 1024 * 1024) / total);
}

/** The two write the same bytes (the chunk ends with a whole character, so that none is carried). */
function checkSame(chunk: Buffer): void {
  const whole = Buffer.concat([chunk, Buffer.from('\n')]);
  const [a, b] = [new ByteAtATime(), new JsonText()].map((writer) => {
    const o = Buffer.alloc(maxJsonLength(whole.length));
    return o.subarray(0, writer.write(whole, o, 0));
  });
  if (!a!.equals(b!)) throw new Error('the writers differ');
}

console.log(
  `CPU s/GiB, ${CHUNK / 1024} KiB chunks, ${total / 1024 / 1024} MiB per measurement, node ${process.version}`,
);
console.log('data           byte-at-a-time  words   ratio');
for (const [name, chunk] of Object.entries(data)) {
  checkSame(chunk);
  const before: number[] = [];
  const after: number[] = [];
  for (let round = 0; round < 3; round++) {
    before.push(secondsPerGiB(new ByteAtATime(), chunk));
    after.push(secondsPerGiB(new JsonText(), chunk));
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[1]!;
  const [b, a] = [median(before), median(after)];
  console.log(
    `${name.padEnd(15)}${b.toFixed(2).padStart(14)}  ${a.toFixed(2).padStart(5)}  ${(a / b).toFixed(2).padStart(5)}×`,
  );
}
