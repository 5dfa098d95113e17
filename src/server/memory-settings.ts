/**
 * Memory settings a process can only be given when it starts, which `serve` gives itself by
 * re-executing once: `process.execve` (Node 22.15+) replaces the program in place — same PID, no
 * second process, signal dispositions back to their defaults before any handler is installed. On an
 * older Node nothing happens (README "Performance" says how to set them yourself). What is already
 * set is kept.
 *
 * Why: Node allocates a fresh buffer for every socket read, so a proxy at 1 GiB/s allocates 1 GiB/s
 * of short-lived memory outside V8's heap. Left to their defaults, the allocator and the garbage
 * collector turn that into work that costs more than the proxying itself:
 * - glibc gives freed heap back to the OS as soon as 128 KiB of it lies free at the top; after each
 *   garbage collection the next reads fault that memory in again. glibc reads
 *   `MALLOC_TRIM_THRESHOLD_` once, when the process starts.
 * - V8 starts a full (mark-compact) collection when the old generation plus the buffer memory
 *   allocated since the last full collection passes the old generation's limit. After a full
 *   collection of a heap as small as kubeshim's (8–12 MiB) that limit is about 24 MiB, and the read
 *   buffers awaiting the next young collection pass it within 20–50 ms: a full collection every
 *   32–64 MiB proxied, 20–60 per GiB, most of it on V8's helper threads. `--initial-old-space-size`
 *   keeps the limit at 64 MiB or above.
 * - Two 2 MiB semi-spaces instead of V8's default (16 MiB each on Node 20, 32–64 on Node 24 and 26
 *   with memory to spare): young collections come often enough to free the read buffers before
 *   their memory calls for a full collection, and the young generation holds less memory.
 *
 * Measured together (bench/results, README "Performance"): the shim's CPU per GiB on stdout-ws-1
 * fell from 1.6–1.9 to 0.95–1.08 s on Nodes 20, 24 and 26, with no full collection while streaming.
 * V8 reads both sizes only when the heap is set up; neither may be given in NODE_OPTIONS on Node 20.
 */

import { isSea } from 'node:sea';

/** 64 MiB: well above what a burst of sessions frees at once. */
export const TRIM_THRESHOLD = '67108864';

/** The V8 flags `serve` runs with, each kept out when a value for it is already given. */
export const V8_MEMORY_FLAGS = ['--max-semi-space-size=2', '--initial-old-space-size=64'] as const;

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/** The flags of V8_MEMORY_FLAGS not already among `given` (node's own arguments, NODE_OPTIONS). */
export function missingV8Flags(given: readonly string[]): string[] {
  return V8_MEMORY_FLAGS.filter((flag) => {
    const name = flag.slice(0, flag.indexOf('='));
    // V8 takes its flags spelled with - or _
    const spellings = [name, name.replaceAll('-', '_').replace(/^__/, '--')];
    return !given.some((g) => spellings.some((s) => g.includes(s)));
  });
}

/** Re-execute this process with the settings it lacks, where Node can; otherwise return. */
export function reexecWithMemorySettings(env: NodeJS.ProcessEnv = process.env): void {
  if (process.platform !== 'linux') return;
  const execve = (process as { execve?: Execve }).execve;
  if (typeof execve !== 'function') return;
  const addTrim = env['MALLOC_TRIM_THRESHOLD_'] === undefined;
  // a single executable takes no node flags on its command line: it keeps V8's defaults
  const flags = isSea() ? [] : missingV8Flags([...process.execArgv, env['NODE_OPTIONS'] ?? '']);
  if (!addTrim && flags.length === 0) return;
  // the flags node itself was given (e.g. --import tsx) come before the script and its arguments;
  // a single executable is its own script (its argv[1] is the executable again: not passed twice)
  const args = isSea()
    ? [process.execPath, ...process.argv.slice(2)]
    : [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)];
  execve.call(
    process,
    process.execPath,
    args,
    addTrim ? { ...env, MALLOC_TRIM_THRESHOLD_: TRIM_THRESHOLD } : env,
  );
}
