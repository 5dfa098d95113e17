/**
 * Memory and handle measurements for bound tests. The test runner does not pass --expose-gc, so
 * the flag is set at run time and `gc` fetched from a fresh context.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc') as () => void;

/** Heap in use after full collections (bytes). */
export async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    collect();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

/** Open handles by type (sockets, timers, servers …), from process.getActiveResourcesInfo(). */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

export const MiB = 1024 * 1024;
