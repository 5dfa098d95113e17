/**
 * An append-only file written in the background: callers queue text and go on; one write at a time
 * goes to the disk. What is queued is bounded twice, per file and across all files (a shared
 * budget): a disk that cannot keep up makes the file fail, it never grows memory. After each write
 * the file is checked to still be linked — a recording whose file or directory was deleted is lost,
 * although writes to the open descriptor would still succeed.
 *
 * With `minWrite`, a write waits until that much is queued (or a moment has passed, or the file
 * closes): few large writes cost far less than many small ones. With `blocking` (for a thread that
 * exists to write), writes are made on the caller's thread, which waits for the disk: no hop
 * through the thread pool and back for each write and each check.
 */
import { fstatSync, writeSync, writevSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

/** Buffers in one writev (the system's IOV_MAX is 1024). */
const MAX_BATCH = 1024;
/** A write waits for `minWrite` bytes at most this long after the first of them was queued. */
const LINGER_MS = 50;

/** Write every byte of `buffers`: writev may write less than asked (a full disk, a signal). */
async function writeAll(fh: FileHandle, buffers: Buffer[], size: number): Promise<void> {
  let { bytesWritten } = await fh.writev(buffers);
  while (bytesWritten < size) {
    const rest = Buffer.concat(buffers).subarray(bytesWritten);
    const r = await fh.write(rest);
    if (r.bytesWritten === 0) throw new Error('the disk took no more bytes');
    bytesWritten += r.bytesWritten;
  }
}

/** writeAll, waiting for the disk on this thread. */
function writeAllSync(fd: number, buffers: Buffer[], size: number): void {
  let written = writevSync(fd, buffers);
  while (written < size) {
    const n = writeSync(fd, Buffer.concat(buffers).subarray(written));
    if (n === 0) throw new Error('the disk took no more bytes');
    written += n;
  }
}

/** Why a write failed, as the session's status and the log say it. */
function writeFailure(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOSPC':
      return 'the disk is full (ENOSPC)';
    case 'EDQUOT':
      return 'the disk quota is used up (EDQUOT)';
    default:
      return err.message;
  }
}

/** Bytes queued for all files at once. */
export class QueueBudget {
  used = 0;
  constructor(readonly limit: number) {}
}

export interface FileSinkOptions {
  budget: QueueBudget;
  /** Bytes this file may have queued. */
  maxQueued: number;
  /** Bytes to gather before a write (default 0: write at once). */
  minWrite?: number;
  /** Write on the caller's thread, waiting for the disk. */
  blocking?: boolean;
  /** Told once, when the file cannot be written any more (nothing more is written after it). */
  onFailure(why: string): void;
  /** Told of each queued buffer once it is no longer held: written, or dropped by a failure. */
  released?(data: Buffer): void;
}

export class FileSink {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private writing = false;
  private linger: NodeJS.Timeout | undefined;
  private failed = false;
  private closing: (() => void) | undefined;
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    private readonly opts: FileSinkOptions,
  ) {}

  /**
   * Create `path` (mode 0600; `exclusive`: it must not exist yet) or open it to append; a regular
   * file that others could read is made owner-only (a pipe or a terminal is left as it is).
   */
  static async open(path: string, exclusive: boolean, opts: FileSinkOptions): Promise<FileSink> {
    const fh = await open(path, exclusive ? 'wx' : 'a', 0o600);
    try {
      const st = await fh.stat();
      if (st.isFile() && (st.mode & 0o077) !== 0) await fh.chmod(0o600);
    } catch (err) {
      await fh.close();
      throw err;
    }
    return new FileSink(fh, path, opts);
  }

  get ok(): boolean {
    return !this.failed;
  }

  /** Queue bytes (or text, as UTF-8); false (and the file failed) when it would pass a bound. */
  write(data: Buffer | string): boolean {
    if (this.failed || this.closed) return false;
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const size = bytes.length;
    const { budget } = this.opts;
    if (this.queued + size > this.opts.maxQueued || budget.used + size > budget.limit) {
      this.fail('the disk cannot keep up (the write queue is full)');
      return false;
    }
    this.queued += size;
    budget.used += size;
    this.queue.push(bytes);
    if (!this.writing) this.schedule();
    return true;
  }

  /** Write what is queued, then close the file. */
  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      this.closing = resolve;
      if (!this.writing) this.schedule();
    }).then(() => this.fh.close().catch(() => {}));
    return this.closed;
  }

  /** Write now when enough is queued (or the file closes), else in a moment. */
  private schedule(): void {
    if (this.queued >= (this.opts.minWrite ?? 0) || this.closing !== undefined) {
      clearTimeout(this.linger);
      this.linger = undefined;
      this.start();
    } else if (this.linger === undefined && this.queue.length > 0) {
      this.linger = setTimeout(() => {
        this.linger = undefined;
        if (!this.writing) this.start();
      }, LINGER_MS);
    }
  }

  private start(): void {
    if (!this.opts.blocking) {
      void this.drain();
      return;
    }
    while (this.queue.length > 0 && !this.failed) {
      const batch = this.queue.splice(0, MAX_BATCH);
      const size = this.sizeOf(batch);
      try {
        writeAllSync(this.fh.fd, batch, size);
        if (fstatSync(this.fh.fd).nlink === 0) throw new Error('the file was removed');
      } catch (err) {
        this.fail(writeFailure(err as NodeJS.ErrnoException));
      }
      this.release(batch, size);
    }
    this.closing?.();
  }

  private sizeOf(batch: Buffer[]): number {
    let size = 0;
    for (const b of batch) size += b.length;
    return size;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0 && !this.failed) {
      const batch = this.queue.splice(0, MAX_BATCH);
      const size = this.sizeOf(batch);
      try {
        await writeAll(this.fh, batch, size);
        if ((await this.fh.stat()).nlink === 0) throw new Error('the file was removed');
      } catch (err) {
        this.fail(writeFailure(err as NodeJS.ErrnoException));
      }
      this.release(batch, size);
      if (this.queued < (this.opts.minWrite ?? 0) && this.closing === undefined) break;
    }
    this.writing = false;
    if (this.queue.length > 0 && !this.failed) this.schedule();
    else this.closing?.();
  }

  private release(batch: Buffer[], size = this.sizeOf(batch)): void {
    this.queued -= size;
    this.opts.budget.used -= size;
    if (this.opts.released) for (const b of batch) this.opts.released(b);
  }

  private fail(why: string): void {
    if (this.failed) return;
    this.failed = true;
    // what is still queued will never be written: give its share of the budget back
    this.release(this.queue.splice(0));
    clearTimeout(this.linger);
    this.linger = undefined;
    this.opts.onFailure(why);
  }
}
