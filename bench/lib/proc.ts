/**
 * What a process costs, read from /proc by the runner without asking the process (Linux): CPU time
 * (its own plus its reaped children's, e.g. the emulator's `head` processes) and resident memory.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** `pid` and its live descendants (e.g. `serve --workers`), `pid` first. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone meanwhile
    }
  }
  const tree: number[] = [];
  const todo = [pid];
  for (let p = todo.pop(); p !== undefined; p = todo.pop()) {
    tree.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return tree;
}

/** CPU seconds used so far by `pid`, its live descendants and their waited-for children. */
function treeCpuSeconds(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      total += cpuSeconds(p);
    } catch (err) {
      if (p === pid) throw err;
    }
  }
  return total;
}

/** CPU seconds used so far by `pid` and its waited-for children. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the command name (field 2) may hold spaces: count fields after its closing parenthesis
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime, stime, cutime, cstime are fields 14–17, i.e. 11–14 after the name
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return ticks / TICKS_PER_SECOND;
}

/** Resident set size of `pid`, in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** CPU seconds all CPUs of the machine spent busy so far (/proc/stat: everything but idle and iowait). */
function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / TICKS_PER_SECOND;
}

/**
 * CPU use of a set of named processes over one measurement, as % of one core, and `others`: what
 * the rest of the machine (other people's tests) used meanwhile — the noise a figure was taken in.
 */
export class CpuMeter {
  private readonly start: Map<string, number>;
  private readonly machineStart = machineBusySeconds();
  private readonly t0 = performance.now();

  constructor(private readonly pids: Record<string, number>) {
    this.start = new Map(Object.entries(pids).map(([role, pid]) => [role, treeCpuSeconds(pid)]));
  }

  /** Percent of one core each process used since construction, and `others`. */
  stop(): Record<string, number> {
    const wall = (performance.now() - this.t0) / 1000;
    const out: Record<string, number> = {};
    let ours = 0;
    for (const [role, pid] of Object.entries(this.pids)) {
      const used = treeCpuSeconds(pid) - this.start.get(role)!;
      ours += used;
      out[role] = Math.round((used / wall) * 100);
    }
    out['others'] = Math.max(0, Math.round(((machineBusySeconds() - this.machineStart - ours) / wall) * 100));
    return out;
  }
}

/** Sample a process's RSS every `everyMs` until stopped; reports the largest value seen. */
export class RssSampler {
  private peak: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    everyMs = 50,
  ) {
    this.peak = rssBytes(pid);
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }

  /** A process that is gone stops the sampling; whoever ended it reports why (a throw here would not). */
  private sample(): void {
    try {
      this.peak = Math.max(this.peak, rssBytes(this.pid));
    } catch {
      clearInterval(this.timer);
    }
  }
}

/** glibc's malloc settings of this process's environment (MALLOC_*), for a child that gets a clean one. */
export function mallocEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('MALLOC_')));
}
