/**
 * Instructions a process executes during one measurement, counted by the CPU itself through
 * `perf stat -e instructions -p PID`: steadier than CPU time on a shared machine, since waiting
 * for a core or a cache costs time but no instructions. Where perf is missing or the machine
 * exposes no such counter (most virtual machines: perf says `<not supported>`), nothing is
 * measured and the runner says so.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { processTree } from './proc.js';

const PERF_ARGS = ['stat', '-x', ',', '-e', 'instructions'];

let countable: boolean | undefined;

/** Whether perf can count instructions here (asked once). */
export function instructionsCountable(): boolean {
  countable ??= (() => {
    const r = spawnSync('perf', [...PERF_ARGS, '--', 'true'], { encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 && instructionCount(r.stderr) !== undefined;
  })();
  return countable;
}

/**
 * The count in perf stat's CSV output (`-x ,`: value, unit, event, …); undefined when the line
 * says `<not supported>` or `<not counted>`, or is missing.
 */
export function instructionCount(csv: string): number | undefined {
  for (const line of csv.split('\n')) {
    const [value, , event] = line.split(',');
    if (!event?.startsWith('instructions')) continue;
    const n = Number(value);
    return value !== '' && Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** Counts a process tree's instructions (every thread) from construction to stop(). */
export class InstructionMeter {
  private readonly perf: ChildProcess;
  private output = '';
  private readonly t0 = performance.now();

  constructor(pid: number) {
    const pids = processTree(pid).join(',');
    this.perf = spawn('perf', [...PERF_ARGS, '-p', pids], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.perf.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.output += d;
    });
  }

  /** Instructions per second of wall time; undefined when perf counted none. */
  async stop(): Promise<number | undefined> {
    const wall = (performance.now() - this.t0) / 1000;
    const exited = once(this.perf, 'exit');
    this.perf.kill('SIGINT'); // perf prints its counts on SIGINT
    const timer = setTimeout(() => this.perf.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    const n = instructionCount(this.output);
    return n === undefined ? undefined : n / wall;
  }
}
