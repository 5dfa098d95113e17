/**
 * The sessions' side of recording. A session's chunks are taken as references with their time;
 * once HAND_AT bytes are taken, or HAND_AFTER_MS after the first of them, the chunks of all
 * recordings are copied into one buffer, which is handed (not copied again) to the recording thread
 * (cast-thread.ts) that escapes and writes them. So the sessions' thread pays one copy per byte, not
 * the JSON escaping, and the two threads exchange a message per half MiB or so, not per chunk.
 *
 * What has been taken but not yet turned into lines is bounded per recording and in all (the
 * budget it shares with the audit log): a recording thread or a disk that cannot keep up makes the
 * recording fail, it never grows memory.
 */
import { extname } from 'node:path';
import { getAsset, isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { CastEventKind, CastHeader } from './cast.js';
import type { FromThread, ThreadOptions, ToThread } from './cast-messages.js';
import type { QueueBudget } from './file-sink.js';

export interface CastWriterOptions extends ThreadOptions {
  /** Shared with the audit log: bytes waiting in all. */
  budget: QueueBudget;
}

const QUEUE_FULL = 'the disk cannot keep up (the write queue is full)';
/**
 * A hand-over costs both threads a message and a wake-up, some 15 µs each: handed once per turn
 * of the event loop, as reads come (often one 32 KiB chunk a turn), that was a third of what
 * recording cost the sessions' thread. A recording's lines are not needed sooner than this.
 */
const HAND_AT = 512 * 1024;
const HAND_AFTER_MS = 5;
/**
 * Buffers handed over come back once their events are escaped, and are kept to be used again while
 * something is recording, up to SPARE_BYTES in all. A buffer of this size is a mapping of its own
 * (above glibc's mmap threshold), so a fresh one is faulted in page by page as a batch is copied
 * into it: with four kept, that copy took 45 % of the sessions' thread whenever the recording
 * thread fell a few batches behind. Sizes are powers of two.
 */
const SPARE_BYTES = 16 * 1024 * 1024;
const SMALLEST_BUFFER = 256 * 1024;

/** One session's recording, as the session sees it. */
export class Recording {
  private readonly started = performance.now();
  /** Bytes taken and not yet lines. */
  queued = 0;
  private failed = false;
  private headerSent = false;
  private ending: Promise<void> | undefined;
  /** @internal Called when the recording thread closed the file. */
  closed: (() => void) | undefined;

  constructor(
    private readonly writer: CastWriter,
    readonly id: number,
    readonly path: string,
    private readonly header: CastHeader,
    private readonly onFailure: (why: string) => void,
  ) {}

  /** Take an event: `o` stdout, `e` stderr (both written as output), `i` stdin, `r` a resize message. */
  add(kind: CastEventKind, chunk: Buffer): void {
    if (this.failed || this.ending || chunk.length === 0) return;
    this.sendHeader();
    if (!this.writer.take(this, kind, chunk, performance.now() - this.started)) this.fail(QUEUE_FULL);
  }

  /** Resolves once what was taken so far is turned into lines (or dropped, the recording failed). */
  flushed(): Promise<void> {
    return this.writer.flushed(this);
  }

  /** The last line (how the session ended), then close the file. */
  end(summary: string): Promise<void> {
    this.sendHeader();
    this.ending ??= this.writer.close(this, {
      t: 'end',
      id: this.id,
      summary,
      ms: performance.now() - this.started,
    });
    return this.ending;
  }

  /** Nothing happened worth keeping (the upgrade was refused): close and delete the file. */
  discard(): Promise<void> {
    this.ending ??= this.writer.close(this, { t: 'discard', id: this.id });
    return this.ending;
  }

  /** The header as it is now: the session's metadata is complete once it carries anything. */
  private sendHeader(): void {
    if (this.headerSent || this.ending) return;
    this.headerSent = true;
    this.writer.post({ t: 'header', id: this.id, header: this.header });
  }

  /** @internal */
  fail(why: string): void {
    if (this.failed) return;
    this.failed = true;
    this.onFailure(why);
  }
}

/** Taken chunks not yet handed over (parallel arrays: no object per chunk). */
interface Batch {
  recordings: Recording[];
  kinds: CastEventKind[];
  times: number[];
  chunks: Buffer[];
  lengths: number[];
  size: number;
}

const emptyBatch = (): Batch => ({ recordings: [], kinds: [], times: [], chunks: [], lengths: [], size: 0 });

export class CastWriter {
  private thread: Worker | undefined;
  private nextId = 1;
  private readonly recordings = new Map<number, Recording>();
  private readonly opening = new Map<number, (error: string | undefined) => void>();
  private batch = emptyBatch();
  /** Hands the batch over HAND_AFTER_MS after its first chunk (one timer, re-armed). */
  private handTimer: NodeJS.Timeout | undefined;
  private scheduled = false;
  /** Batches handed over and not yet done, oldest first. */
  private readonly handed: Batch[] = [];
  private readonly spare: ArrayBuffer[] = [];
  private spareBytes = 0;
  /** Recordings waiting for what they took to be turned into lines. */
  private readonly flushing = new Map<Recording, () => void>();

  constructor(private readonly opts: CastWriterOptions) {}

  /** Create the recording file `path` (0600, new); rejects with why it cannot be. */
  open(
    path: string,
    header: CastHeader,
    maxBytes: number,
    onFailure: (why: string) => void,
  ): Promise<Recording> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.opening.set(id, (error) => {
        if (error !== undefined) return reject(new Error(error));
        const recording = new Recording(this, id, path, header, onFailure);
        this.recordings.set(id, recording);
        resolve(recording);
      });
      this.post({ t: 'open', id, path, maxBytes });
    });
  }

  /** @internal False when the chunk would pass a bound. */
  take(recording: Recording, kind: CastEventKind, chunk: Buffer, ms: number): boolean {
    const { budget } = this.opts;
    const size = chunk.length;
    if (recording.queued + size > this.opts.maxQueuedPerSession || budget.used + size > budget.limit)
      return false;
    recording.queued += size;
    budget.used += size;
    const b = this.batch;
    b.recordings.push(recording);
    b.kinds.push(kind);
    b.times.push(ms);
    b.chunks.push(chunk);
    b.lengths.push(size);
    b.size += size;
    if (b.size >= HAND_AT) this.hand();
    else if (!this.scheduled) {
      this.scheduled = true;
      if (this.handTimer === undefined) this.handTimer = setTimeout(this.hand, HAND_AFTER_MS).unref();
      else this.handTimer.refresh();
    }
    return true;
  }

  /** @internal */
  flushed(recording: Recording): Promise<void> {
    this.hand();
    if (recording.queued === 0 || this.thread === undefined) return Promise.resolve();
    return new Promise((resolve) => this.flushing.set(recording, resolve));
  }

  /** Wake the recordings waiting in `flushed` whose bytes are all lines (`all`: every one). */
  private wakeFlushed(all: boolean): void {
    for (const [recording, resolve] of this.flushing)
      if (all || recording.queued === 0) {
        this.flushing.delete(recording);
        resolve();
      }
  }

  /** @internal Hand over what was taken, then the message that ends the recording. */
  close(recording: Recording, m: ToThread): Promise<void> {
    this.hand();
    return new Promise<void>((resolve) => {
      recording.closed = () => {
        this.recordings.delete(recording.id);
        this.holdProcess();
        resolve();
      };
      this.post(m);
    });
  }

  /** End what is still recording; then the recording thread stops. */
  async stop(): Promise<void> {
    await Promise.all([...this.recordings.values()].map((r) => r.end('recording stopped: kubeshim stopped')));
    await this.thread?.terminate();
    this.thread = undefined;
  }

  private readonly hand = (): void => {
    // an armed timer is left to fire (at most one hand-over of a younger batch): a cleared timer
    // cannot be re-armed with refresh()
    this.scheduled = false;
    const b = this.batch;
    if (b.chunks.length === 0) return;
    this.batch = emptyBatch();
    const data = Buffer.from(this.bufferOf(b.size), 0, b.size);
    let at = 0;
    for (const c of b.chunks) at += c.copy(data, at);
    b.chunks.length = 0; // the session's buffers are free again
    this.handed.push(b);
    this.post(
      {
        t: 'events',
        data: data.buffer as ArrayBuffer,
        ids: b.recordings.map((r) => r.id),
        kinds: b.kinds,
        times: b.times,
        lengths: b.lengths,
      },
      [data.buffer as ArrayBuffer],
    );
  };

  /**
   * A spare buffer of at least `size` bytes, or a new one: not zero-filled (a new ArrayBuffer is),
   * since the batch's bytes are copied over it and the thread reads no further; unpooled, so it can
   * be transferred.
   */
  private bufferOf(size: number): ArrayBuffer {
    const i = this.spare.findIndex((s) => s.byteLength >= size);
    if (i >= 0) {
      const buffer = this.spare.splice(i, 1)[0]!;
      this.spareBytes -= buffer.byteLength;
      return buffer;
    }
    return Buffer.allocUnsafeSlow(Math.max(SMALLEST_BUFFER, 2 ** Math.ceil(Math.log2(size))))
      .buffer as ArrayBuffer;
  }

  /** @internal */
  post(m: ToThread, transfer: ArrayBuffer[] = []): void {
    this.threadFor().postMessage(m, transfer);
  }

  private threadFor(): Worker {
    if (this.thread) return this.thread;
    const workerData = { maxQueuedPerSession: this.opts.maxQueuedPerSession, maxQueued: this.opts.maxQueued };
    const thread = startThread(workerData);
    thread.on('message', (m: FromThread) => this.heard(m));
    thread.on('error', (err) => this.lost(`the recording thread failed: ${err.message}`));
    thread.on('exit', () => this.lost('the recording thread stopped'));
    this.thread = thread;
    this.holdProcess();
    return thread;
  }

  private heard(m: FromThread): void {
    switch (m.t) {
      case 'opened':
        this.opening.get(m.id)?.(m.error);
        this.opening.delete(m.id);
        this.holdProcess();
        return;
      case 'done': {
        const b = this.handed.shift();
        if (b === undefined) return;
        for (let i = 0; i < b.recordings.length; i++) b.recordings[i]!.queued -= b.lengths[i]!;
        this.opts.budget.used -= b.size;
        if (this.flushing.size > 0) this.wakeFlushed(false);
        if (this.spareBytes + m.data.byteLength <= SPARE_BYTES) {
          this.spare.push(m.data);
          this.spareBytes += m.data.byteLength;
        }
        return;
      }
      case 'failed':
        this.recordings.get(m.id)?.fail(m.why);
        return;
      case 'closed':
        this.recordings.get(m.id)?.closed?.();
        return;
    }
  }

  /** The thread is gone: every recording has failed, and what was handed over is given back. */
  private lost(why: string): void {
    if (this.thread === undefined) return;
    this.thread = undefined;
    for (const b of this.handed) this.opts.budget.used -= b.size;
    this.handed.length = 0;
    for (const done of this.opening.values()) done(why);
    this.opening.clear();
    for (const r of this.recordings.values()) {
      r.fail(why);
      r.closed?.();
    }
    this.recordings.clear();
    this.wakeFlushed(true);
  }

  /** Keep the process alive, and spare buffers, only while something is being recorded. */
  private holdProcess(): void {
    if (this.recordings.size > 0 || this.opening.size > 0) this.thread?.ref();
    else {
      this.thread?.unref();
      this.spare.length = 0;
      this.spareBytes = 0;
    }
  }
}

/**
 * The recording thread. Its module sits beside this one: .js when built, .ts when run from source
 * through tsx, whose loader the thread has to register for itself. A single executable has no
 * files beside it: scripts/build-binary.sh bundles the thread's module as an asset of its own.
 */
function startThread(workerData: ThreadOptions): Worker {
  if (isSea()) return new Worker(getAsset(SEA_THREAD_ASSET, 'utf8'), { eval: true, workerData });
  const module = new URL(`./cast-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
  if (!module.pathname.endsWith('.ts')) return new Worker(module, { workerData });
  // resolved here: in the thread's evaluated code a bare name would resolve from the working directory
  const tsx = import.meta.resolve('tsx/esm/api');
  return new Worker(
    `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(module.href)}); })`,
    { eval: true, workerData },
  );
}

/** The asset name scripts/build-binary.sh gives the bundled thread module. */
const SEA_THREAD_ASSET = 'cast-thread.cjs';
