/**
 * Benchmark worker processes: load generators, systems under test and upstreams each get a process
 * of their own (2 cores: one process would be the bottleneck, and the runner wants to see which
 * process spends the CPU). The parent forks a worker file, waits for its `ready` (with what it
 * listens on), then calls named handlers over IPC, one reply per call. Every worker answers
 * `memory` (process.memoryUsage after a full GC), and `profileStart` / `profileStop` (the V8 CPU
 * profiler that `--cpu-prof` uses, limited to what the runner wants measured; the profile is written
 * as a .cpuprofile file).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Info = Record<string, unknown>;
type Handler = (params: Info) => Promise<unknown>;

interface Reply {
  id: number;
  result?: unknown;
  error?: string;
}

export interface Worker {
  /** Which worker file, for messages. */
  name: string;
  pid: number;
  /** What the worker said when it was ready (e.g. its port). */
  info: Info;
  call<T>(type: string, params?: Info): Promise<T>;
  stop(): Promise<void>;
}

export interface WorkerOptions {
  /** Extra node flags, e.g. `--cpu-prof`. */
  nodeFlags?: string[];
  readyTimeoutMs?: number;
}

/** The compiled tree the workers run from (bench/lib/build.ts); unset: the sources, through tsx. */
let built: string | undefined;

/** Run every worker started from now on from `root`'s compiled JavaScript. */
export function runWorkersFrom(root: string): void {
  built = root;
}

/** Node flags every worker started from now on gets (before its own `nodeFlags`). */
let commonFlags: string[] = [];

export function setWorkerNodeFlags(flags: string[]): void {
  commonFlags = flags;
}

/** A worker file under bench/workers/, compiled or not. */
function workerFile(name: string): string {
  if (built !== undefined) return join(built, 'bench', 'workers', `${name}.js`);
  return fileURLToPath(new URL(`../workers/${name}.ts`, import.meta.url));
}

/** Fork bench/workers/`name` and wait until it is ready. */
export async function startWorker(
  name: string,
  params: Info = {},
  opts: WorkerOptions = {},
): Promise<Worker> {
  const file = workerFile(name);
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
  const child: ChildProcess = fork(file, [JSON.stringify(params)], {
    execArgv: [
      ...(built === undefined ? ['--import', 'tsx'] : []),
      '--expose-gc',
      ...commonFlags,
      ...(opts.nodeFlags ?? []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  const ready = new Promise<Info>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name}: not ready in ${readyTimeoutMs} ms`)),
      readyTimeoutMs,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready`));
    });
    child.on('message', (m: { type?: string; info?: Info } & Reply) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve(m.info ?? {});
        return;
      }
      const p = pending.get(m.id);
      if (p === undefined) return;
      pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(`${name}: ${m.error}`));
      else p.resolve(m.result);
    });
  });
  child.on('exit', (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`${name} exited (${code ?? signal})`));
    pending.clear();
  });
  let workerInfo: Info;
  try {
    workerInfo = await ready;
  } catch (err) {
    // SIGTERM first: a worker that started processes of its own stops them (bench/workers/serve-cli.ts)
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 2000).unref();
    throw err;
  }
  return {
    name,
    pid: child.pid ?? -1,
    info: workerInfo,
    call<T>(type: string, callParams: Info = {}): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        if (!child.connected) {
          reject(new Error(`${name} is gone`));
          return;
        }
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, type, params: callParams });
      });
    },
    async stop(): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      if (child.connected) child.disconnect();
      // a worker writing a CPU profile on its way out takes a moment
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** In a worker: the parameters it was started with. */
export function workerParams<T = Info>(): T {
  return JSON.parse(process.argv[2] ?? '{}') as T;
}

/**
 * In a worker: announce readiness and serve calls until the parent goes away; then `shutdown`
 * (bounded by the parent's kill timer) and a normal exit.
 */
export function serveWorker(
  info: Info,
  handlers: Record<string, Handler>,
  shutdown?: () => Promise<void>,
): void {
  const all: Record<string, Handler> = { memory: memoryAfterGc, profileStart, profileStop, ...handlers };
  process.on('message', (m: { id: number; type: string; params: Info }) => {
    const handler = all[m.type];
    const reply = (r: Omit<Reply, 'id'>) => {
      if (process.connected) process.send?.({ id: m.id, ...r });
    };
    if (handler === undefined) {
      reply({ error: `unknown call ${m.type}` });
      return;
    }
    handler(m.params).then(
      (result) => reply({ result }),
      (err: Error) => reply({ error: err.message }),
    );
  });
  // a normal exit, so that --cpu-prof writes its profile
  process.on('disconnect', () => {
    const done = () => process.exit(0);
    if (shutdown) shutdown().then(done, done);
    else done();
  });
  process.send?.({ type: 'ready', info });
}

async function memoryAfterGc(): Promise<NodeJS.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((r) => setImmediate(r));
  gc?.();
  return process.memoryUsage();
}

let profiler: Session | undefined;

async function profileStart(): Promise<void> {
  if (profiler) return;
  profiler = new Session();
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.setSamplingInterval', { interval: 250 }); // µs
  await profiler.post('Profiler.start');
}

async function profileStop(params: Info): Promise<void> {
  if (!profiler) throw new Error('the profiler was not started');
  const { profile } = await profiler.post('Profiler.stop');
  profiler.disconnect();
  profiler = undefined;
  await writeFile(String(params['file']), JSON.stringify(profile));
}
