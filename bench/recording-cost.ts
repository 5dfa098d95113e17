/**
 * What recording costs the sessions' own thread, apart from everything else: 1 GiB of terminal text
 * in 32 KiB chunks (fresh buffers, as reads give them) through one recording, against the same
 * chunks not recorded. The CPU time of the process and of its main thread alone (from /proc) per
 * GiB: the difference between the two is the recording thread's escaping and writing.
 * `npx tsx bench/recording-cost.ts`
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CastWriter } from '../src/record/cast-writer.js';
import { QueueBudget } from '../src/record/file-sink.js';

const CHUNK = 32 * 1024;
const TOTAL = 1024 * 1024 * 1024;
const text = Buffer.alloc(CHUNK, 'kubeshim bench output: the quick brown fox jumps over the lazy dog\r\n');

/** CPU seconds of this process's main thread (utime + stime, in clock ticks of 10 ms). */
function mainThreadSeconds(): number {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function run(record: boolean): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'kubeshim-recording-cost-'));
  const writer = new CastWriter({
    budget: new QueueBudget(128 << 20),
    maxQueued: 128 << 20,
    maxQueuedPerSession: 32 << 20,
  });
  const cast = await writer.open(
    join(dir, 'a.cast'),
    { timestamp: 0, title: 'cost', kubeshim: {} },
    TOTAL * 2,
    (why) => {
      throw new Error(`the recording failed: ${why}`);
    },
  );
  const cpu = process.cpuUsage();
  const main = mainThreadSeconds();
  for (let sent = 0; sent < TOTAL; ) {
    for (let i = 0; i < 8; i++, sent += CHUNK) {
      const chunk = Buffer.allocUnsafe(CHUNK);
      text.copy(chunk);
      if (record) cast.add('o', chunk);
    }
    await new Promise((r) => setImmediate(r));
    // a session's pace: never let the recording fall behind its bound
    while (cast.queued > 16 << 20) await new Promise((r) => setTimeout(r, 2));
  }
  await cast.end('exit code 0');
  const used = process.cpuUsage(cpu);
  const mainUsed = mainThreadSeconds() - main;
  await writer.stop();
  rmSync(dir, { recursive: true, force: true });
  return `recording ${record ? 'on ' : 'off'}: process ${((used.user + used.system) / 1e6).toFixed(2)}, main thread ${mainUsed.toFixed(2)} CPU-s/GiB`;
}

console.log(await run(false));
console.log(await run(true));
