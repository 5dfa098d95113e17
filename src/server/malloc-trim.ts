/**
 * glibc gives freed heap back to the OS as soon as 128 KiB of it lies free at the top, and Node
 * allocates a fresh buffer for every socket read: after each garbage collection the next reads
 * fault that memory in again, which costs a translating proxy up to three times the CPU per GiB.
 * glibc reads `MALLOC_TRIM_THRESHOLD_` once, when the process starts, so `serve` re-executes itself
 * with it set: `process.execve` (Node 22.15+) replaces the program in place — same PID, no second
 * process, signal dispositions back to their defaults before any handler is installed. On an older
 * Node nothing happens (README "Performance" says to set it yourself); a value already set is kept.
 */

import { isSea } from 'node:sea';

/** 64 MiB: well above what a burst of sessions frees at once. */
export const TRIM_THRESHOLD = '67108864';

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/** Re-execute this process with the trim threshold set, where Node can; otherwise return. */
export function reexecWithTrimThreshold(env: NodeJS.ProcessEnv = process.env): void {
  if (env['MALLOC_TRIM_THRESHOLD_'] !== undefined || process.platform !== 'linux') return;
  const execve = (process as { execve?: Execve }).execve;
  if (typeof execve !== 'function') return;
  // the flags node itself was given (e.g. --import tsx) come before the script and its arguments;
  // a single executable is its own script (its argv[1] is the executable again: not passed twice)
  const args = isSea()
    ? [process.execPath, ...process.argv.slice(2)]
    : [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  execve.call(process, process.execPath, args, {
    ...env,
    MALLOC_TRIM_THRESHOLD_: TRIM_THRESHOLD,
  });
}
