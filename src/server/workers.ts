/**
 * `serve --workers N`: N worker processes (node:cluster) share one listener, so that sessions spread
 * over the cores. The primary serves nothing itself: it starts the workers, writes the `listening`
 * line once every worker listens, restarts a worker that dies unexpectedly (or whose replacement
 * cannot start) with a backoff, answers the workers' /metrics requests with the sum over all
 * workers (prom-client's AggregatorRegistry), and turns
 * SIGINT/SIGTERM/SIGHUP into a graceful stop of every worker (a second signal hurries them).
 *
 * Each worker is a whole shim with state of its own: its /readyz cache, its `--upstream-protocol
 * auto` choices (each worker learns a fallback on its own first refused try), its `--max-sessions`
 * count. Workers ignore SIGINT/SIGTERM/SIGHUP themselves (a terminal's Ctrl-C or hangup reaches
 * the whole process group): the primary relays the stop, so that one signal never counts twice.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from '../observe/logger.js';
import type { Metrics } from '../observe/metrics.js';
import { formatDuration } from './limits.js';

/** `--workers N|auto`: a whole number from 1, or the number of CPUs. */
export function parseWorkers(value: string): number {
  if (value === 'auto') return availableParallelism();
  const n = /^\d{1,4}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 1)) throw new Error(`--workers must be a whole number from 1, or auto (got '${value}')`);
  return n;
}

/** The first worker started (one of them does what only one should, like the upstream check). */
export function isFirstWorker(): boolean {
  return cluster.worker?.id === 1;
}

/** True in a process the primary of `serve --workers` started. */
export function isServeWorker(): boolean {
  return cluster.isWorker;
}

/** A worker's log lines say which worker wrote them. */
export function tagWorker(log: Logger): Logger {
  return cluster.worker === undefined ? log : log.child({ worker: cluster.worker.id });
}

/** Messages between the primary and its workers (besides prom-client's own). */
type ToPrimary =
  | { kubeshim: 'listening'; url: string; upstream: string; credentials: string }
  | { kubeshim: 'cannot-start'; reason: string }
  | { kubeshim: 'metrics'; id: number };
type ToWorker =
  | { kubeshim: 'stop' }
  | { kubeshim: 'hurry' }
  | { kubeshim: 'metrics'; id: number; body?: string; contentType?: string; error?: string };

function kubeshimMessage<T extends { kubeshim: string }>(m: unknown): T | undefined {
  return typeof m === 'object' && m !== null && 'kubeshim' in m ? (m as T) : undefined;
}

export interface WorkerServing {
  url: string;
  upstream: string;
  /** The credential mode of the `listening` line (whose identity the shim lends). */
  credentials: string;
  metrics: Metrics;
  shutdown(graceMs: number, hurry?: Promise<unknown>): Promise<void>;
}

/**
 * In a worker: start serving, tell the primary where it listens, answer /metrics with the primary's
 * sum, and stop gracefully when the primary says so. Resolves with the exit code once drained (or
 * 1 when it could not start: it says why, and tells the primary, which fails the start or retries).
 */
export async function serveAsWorker(
  start: () => Promise<WorkerServing>,
  graceMs: number,
  log: Logger,
): Promise<number> {
  let serving: WorkerServing;
  try {
    serving = await start();
  } catch (err) {
    const reason = (err as Error).message;
    log.fatal({ err: reason }, 'cannot start');
    // the reason goes to the primary first (its retry line says why); a disconnect could drop it
    await new Promise<void>((resolve) => {
      if (!process.connected || process.send === undefined) return resolve();
      const late = setTimeout(resolve, 1000);
      process.send({ kubeshim: 'cannot-start', reason } satisfies ToPrimary, undefined, {}, () => {
        clearTimeout(late);
        resolve();
      });
    });
    cluster.worker?.disconnect();
    return 1;
  }
  const send = (m: ToPrimary) => {
    if (process.connected) process.send?.(m);
  };
  // prom-client answers the primary's requests for this worker's metrics (set up by its constructor)
  AggregatorRegistry.setRegistries([serving.metrics.registry]);
  new AggregatorRegistry();
  const asked = new Map<number, (m: Extract<ToWorker, { kubeshim: 'metrics' }>) => void>();
  let nextId = 1;
  serving.metrics.renderWith(
    () =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        asked.set(id, (m) => {
          if (m.error !== undefined || m.body === undefined)
            reject(new Error(m.error ?? 'no answer from the primary'));
          else resolve({ body: m.body, contentType: m.contentType ?? 'text/plain' });
        });
        send({ kubeshim: 'metrics', id });
      }),
  );
  const ignore = () => {};
  process.on('SIGINT', ignore).on('SIGTERM', ignore).on('SIGHUP', ignore);
  let hurry: () => void = ignore;
  const hurried = new Promise<void>((resolve) => (hurry = resolve));
  const stop = new Promise<void>((resolve) => {
    process.on('message', (raw) => {
      const m = kubeshimMessage<ToWorker>(raw);
      if (m?.kubeshim === 'stop') resolve();
      else if (m?.kubeshim === 'hurry') hurry();
      else if (m?.kubeshim === 'metrics') {
        asked.get(m.id)?.(m);
        asked.delete(m.id);
      }
    });
    // the primary is gone: node:cluster ends the worker at once; nothing to drain toward
  });
  send({
    kubeshim: 'listening',
    url: serving.url,
    upstream: serving.upstream,
    credentials: serving.credentials,
  });
  await stop;
  await serving.shutdown(graceMs, hurried);
  for (const reply of asked.values())
    reply({ kubeshim: 'metrics', id: 0, error: 'kubeshim is shutting down' });
  // the IPC channel would keep the process alive
  cluster.worker?.disconnect();
  return 0;
}

export interface Supervised {
  url: string;
  upstream: string;
  credentials: string;
  /** Stop every worker gracefully; `hurry` is relayed to them. Resolves when all have exited. */
  shutdown(graceMs: number, hurry?: Promise<unknown>): Promise<void>;
}

/** A worker that died or could not start is retried after this, doubled at each failure in a row… */
const RETRY_FIRST_MS = 1000;
/** …up to this. */
const RETRY_MAX_MS = 30_000;
/** A worker that listened this long ran well: a failure after it starts the backoff over. */
const HEALTHY_AFTER_MS = 60_000;
/**
 * With no worker alive, a slot whose worker failed to start this many times in a row (about 2.5 min
 * of retries) gives up: the primary exits 1, for a supervisor to see (a crash loop of workers that
 * do listen goes on retrying: they serve in between).
 */
const GIVE_UP_AFTER = 10;
/** After the grace period and the workers' own flush time, a worker still running is killed. */
const EXIT_MARGIN_MS = 5000;

/** One of the `count` places for a worker: its failures in a row and its pending retry. */
interface Slot {
  /** Failures in a row (deaths or failed starts), for the backoff; reset after a healthy run. */
  failures: number;
  /** Failed starts in a row (exits before listening), for giving up; reset when one listens. */
  failedStarts: number;
  retry?: NodeJS.Timeout;
}

/**
 * In the primary: start `count` workers (this same command line), resolve once all listen. A
 * worker that exits before it listens (bad flags, an unreadable kubeconfig: it logged why) fails
 * the start. Once serving, a worker that dies, or a replacement that cannot start, is retried with
 * a backoff, one log line per failure; the retry timers keep the primary alive while no worker is.
 * If starts keep failing with no worker alive (GIVE_UP_AFTER), the primary exits 1 with a fatal line.
 */
export async function superviseWorkers(count: number, log: Logger): Promise<Supervised> {
  const aggregator = new AggregatorRegistry();
  const listening = new Map<number, { url: string; upstream: string; credentials: string; since: number }>();
  /** Workers forked and not exited yet (listening or starting). */
  const alive = new Set<Worker>();
  /** Why a worker could not start, as it told before exiting. */
  const reasons = new Map<number, string>();
  const slots: Slot[] = Array.from({ length: count }, () => ({ failures: 0, failedStarts: 0 }));
  let stopping = false;
  let serving = false;
  let startFailed: (err: Error) => void = () => {};
  let allListening: () => void = () => {};
  const started = new Promise<void>((resolve, reject) => {
    allListening = resolve;
    startFailed = reject;
  });
  let url: string | undefined;

  const onMessage = (worker: Worker, slot: Slot, raw: unknown) => {
    const m = kubeshimMessage<ToPrimary>(raw);
    if (m?.kubeshim === 'listening') {
      if (url !== undefined && m.url !== url)
        log.error({ worker: worker.id, url: m.url, expected: url }, 'worker listens elsewhere');
      url ??= m.url;
      listening.set(worker.id, {
        url: m.url,
        upstream: m.upstream,
        credentials: m.credentials,
        since: Date.now(),
      });
      slot.failedStarts = 0;
      log.info({ worker: worker.id, workerPid: worker.process.pid }, 'worker listening');
      if (listening.size === count) allListening();
    } else if (m?.kubeshim === 'cannot-start') {
      reasons.set(worker.id, m.reason);
    } else if (m?.kubeshim === 'metrics') {
      const reply = (r: Omit<Extract<ToWorker, { kubeshim: 'metrics' }>, 'kubeshim' | 'id'>) => {
        if (worker.isConnected()) worker.send({ kubeshim: 'metrics', id: m.id, ...r } satisfies ToWorker);
      };
      aggregator.clusterMetrics().then(
        (body) => reply({ body, contentType: aggregator.contentType }),
        (err: Error) => reply({ error: err.message }),
      );
    }
  };

  const fork = (slot: Slot): Worker => {
    slot.retry = undefined;
    const worker = cluster.fork();
    alive.add(worker);
    worker.on('message', (m) => onMessage(worker, slot, m));
    worker.on('exit', (code, signal) => {
      alive.delete(worker);
      const was = listening.get(worker.id);
      listening.delete(worker.id);
      const reason = reasons.get(worker.id);
      reasons.delete(worker.id);
      if (stopping) return;
      if (!serving && was === undefined) {
        startFailed(new Error(`worker ${worker.id} exited (${code ?? signal}) before it listened`));
        return;
      }
      if (was !== undefined && Date.now() - was.since >= HEALTHY_AFTER_MS) slot.failures = 0;
      if (was === undefined) slot.failedStarts++;
      const fields = {
        worker: worker.id,
        workerPid: worker.process.pid,
        code,
        signal,
        ...(reason === undefined ? {} : { reason }),
        failures: slot.failures + 1,
      };
      if (alive.size === 0 && slot.failedStarts >= GIVE_UP_AFTER) {
        // nothing serves and nothing is about to: a supervisor may do better (exit 0 would say all is well)
        stopping = true;
        for (const s of slots) clearTimeout(s.retry);
        log.fatal(
          fields,
          `no worker could start, ${slot.failedStarts} tries in a row with none running: giving up`,
        );
        process.exit(1);
      }
      const delay = Math.min(RETRY_FIRST_MS * 2 ** slot.failures, RETRY_MAX_MS);
      slot.failures++;
      log.error(
        { ...fields, retryIn: formatDuration(delay) },
        was === undefined ? 'worker could not start; retrying it' : 'worker died; restarting it',
      );
      // not unref'd: with every worker gone, this timer is what keeps the primary (and its promise) alive
      slot.retry = setTimeout(() => {
        if (!stopping) fork(slot);
      }, delay);
    });
    return worker;
  };

  const stopAll = (graceMs: number, hurry?: Promise<unknown>): Promise<void> => {
    stopping = true;
    for (const s of slots) clearTimeout(s.retry);
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    const exited = workers.map((w) =>
      w.isDead() ? Promise.resolve() : new Promise<void>((resolve) => w.once('exit', () => resolve())),
    );
    // a worker not listening yet serves nothing, and may not be reading messages yet
    for (const w of workers) if (!listening.has(w.id)) w.process.kill('SIGKILL');
    const tell = (m: ToWorker) => {
      for (const w of workers) if (listening.has(w.id) && w.isConnected()) w.send(m);
    };
    tell({ kubeshim: 'stop' });
    void hurry?.then(() => tell({ kubeshim: 'hurry' }));
    const kill = setTimeout(() => {
      for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
    }, graceMs + EXIT_MARGIN_MS);
    return Promise.all(exited).then(() => clearTimeout(kill));
  };

  for (const slot of slots) fork(slot);
  try {
    await started;
    serving = true;
  } catch (err) {
    await stopAll(0);
    throw err;
  }
  const first = listening.values().next().value;
  if (url === undefined || first === undefined) throw new Error('no worker listening');
  return { url, upstream: first.upstream, credentials: first.credentials, shutdown: stopAll };
}
