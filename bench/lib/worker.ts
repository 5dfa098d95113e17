/**
 * Benchmark worker processes: load generators and systems under test each get a process of their
 * own (2 cores: one process would be the bottleneck). The parent forks a worker file, waits for its
 * `ready` (with what it listens on), then calls named handlers over IPC, one reply per call.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

type Info = Record<string, unknown>;
type Handler = (params: Info) => Promise<unknown>;

interface Reply {
  id: number;
  result?: unknown;
  error?: string;
}

export interface Worker {
  /** What the worker said when it was ready (e.g. its port). */
  info: Info;
  call<T>(type: string, params?: Info): Promise<T>;
  stop(): Promise<void>;
}

/** A worker file under bench/workers/. */
export function workerFile(name: string): string {
  return fileURLToPath(new URL(`../workers/${name}.ts`, import.meta.url));
}

/** Fork `file` (TypeScript, run through tsx) and wait until it is ready. */
export async function startWorker(file: string, info: Info = {}, readyTimeoutMs = 30_000): Promise<Worker> {
  const child: ChildProcess = fork(file, [JSON.stringify(info)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  const ready = new Promise<Info>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${file}: not ready in ${readyTimeoutMs} ms`)),
      readyTimeoutMs,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited with ${code} before it was ready`));
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
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.result);
    });
  });
  child.on('exit', (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`${file} exited (${code ?? signal})`));
    pending.clear();
  });
  const workerInfo = await ready;
  return {
    info: workerInfo,
    call<T>(type: string, params: Info = {}): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, type, params });
      });
    },
    async stop(): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** In a worker: the parameters it was started with. */
export function workerParams(): Info {
  return JSON.parse(process.argv[2] ?? '{}') as Info;
}

/** In a worker: announce readiness and serve calls until the parent goes away. */
export function serveWorker(info: Info, handlers: Record<string, Handler>): void {
  process.on('message', (m: { id: number; type: string; params: Info }) => {
    const handler = handlers[m.type];
    const reply = (r: Omit<Reply, 'id'>) => process.send?.({ id: m.id, ...r });
    if (handler === undefined) {
      reply({ error: `unknown call ${m.type}` });
      return;
    }
    handler(m.params).then(
      (result) => reply({ result }),
      (err: Error) => reply({ error: err.message }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.({ type: 'ready', info });
}
