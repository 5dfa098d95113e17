/**
 * Memory settings a process can only be given when it starts, which `serve` gives itself by
 * re-executing once: `process.execve` (Node 22.15+) replaces the program in place — same PID, no
 * second process, signal dispositions back to their defaults before any handler is installed. On an
 * older Node nothing happens (README "Performance" says to set them yourself). What is already set is
 * kept.
 * - glibc gives freed heap back to the OS as soon as 128 KiB of it lies free at the top, and Node
 *   allocates a fresh buffer for every socket read: after each garbage collection the next reads
 *   fault that memory in again, which costs a translating proxy up to three times the CPU per GiB.
 *   glibc reads `MALLOC_TRIM_THRESHOLD_` once, when the process starts.
 * - V8's young generation: Node 24 and 26 let each of its two semi-spaces grow to 32–64 MiB on a
 *   machine with memory to spare (Node 20: 16 MiB), and a proxy under load fills them with buffers
 *   and frames that die young. 8 MiB each cut the soak's peak RSS from 254 to 199 MiB on Node 26,
 *   with no cost in the bench's throughput that its noise could show
 *   (bench/results/soak-memory-2026-12-05b.txt). V8 reads the size only when the heap is set up.
 */

import { isSea } from 'node:sea';

/** 64 MiB: well above what a burst of sessions frees at once. */
export const TRIM_THRESHOLD = '67108864';

/** MiB per semi-space; the young generation is two of them. */
export const SEMI_SPACE_FLAG = '--max-semi-space-size=8';

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/** Re-execute this process with the settings it lacks, where Node can; otherwise return. */
export function reexecWithMemorySettings(env: NodeJS.ProcessEnv = process.env): void {
  if (process.platform !== 'linux') return;
  const execve = (process as { execve?: Execve }).execve;
  if (typeof execve !== 'function') return;
  const addTrim = env['MALLOC_TRIM_THRESHOLD_'] === undefined;
  // a single executable takes no node flags on its command line: it keeps V8's default
  const addSemiSpace =
    !isSea() &&
    ![...process.execArgv, env['NODE_OPTIONS'] ?? ''].some((f) => f.includes('--max-semi-space-size'));
  if (!addTrim && !addSemiSpace) return;
  // the flags node itself was given (e.g. --import tsx) come before the script and its arguments;
  // a single executable is its own script (its argv[1] is the executable again: not passed twice)
  const args = isSea()
    ? [process.execPath, ...process.argv.slice(2)]
    : [
        process.execPath,
        ...(addSemiSpace ? [SEMI_SPACE_FLAG] : []),
        ...process.execArgv,
        ...process.argv.slice(1),
      ];
  execve.call(
    process,
    process.execPath,
    args,
    addTrim ? { ...env, MALLOC_TRIM_THRESHOLD_: TRIM_THRESHOLD } : env,
  );
}
