/**
 * An append-only file written in the background: callers queue text and go on; one write at a time
 * goes to the disk. What is queued is bounded twice, per file and across all files (a shared
 * budget): a disk that cannot keep up makes the file fail, it never grows memory. After each write
 * the file is checked to still be linked — a recording whose file or directory was deleted is lost,
 * although writes to the open descriptor would still succeed.
 */
import { type FileHandle, open } from 'node:fs/promises';

/** Bytes queued for all files at once. */
export class QueueBudget {
  used = 0;
  constructor(readonly limit: number) {}
}

export interface FileSinkOptions {
  budget: QueueBudget;
  /** Bytes this file may have queued. */
  maxQueued: number;
  /** Told once, when the file cannot be written any more (nothing more is written after it). */
  onFailure(why: string): void;
}

export class FileSink {
  private readonly queue: string[] = [];
  private queued = 0;
  private writing = false;
  private failed = false;
  private closing: (() => void) | undefined;
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    private readonly opts: FileSinkOptions,
  ) {}

  /** Create `path` (mode 0600; `exclusive`: it must not exist yet) or open it to append. */
  static async open(path: string, exclusive: boolean, opts: FileSinkOptions): Promise<FileSink> {
    const fh = await open(path, exclusive ? 'wx' : 'a', 0o600);
    return new FileSink(fh, path, opts);
  }

  get ok(): boolean {
    return !this.failed;
  }

  /** Queue text; false (and the file failed) when it would pass a bound. */
  write(text: string): boolean {
    if (this.failed || this.closed) return false;
    const size = Buffer.byteLength(text);
    const { budget } = this.opts;
    if (this.queued + size > this.opts.maxQueued || budget.used + size > budget.limit) {
      this.fail('the disk cannot keep up (the write queue is full)');
      return false;
    }
    this.queued += size;
    budget.used += size;
    this.queue.push(text);
    if (!this.writing) void this.drain();
    return true;
  }

  /** Write what is queued, then close the file. */
  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      this.closing = resolve;
      if (!this.writing) void this.drain();
    }).then(() => this.fh.close().catch(() => {}));
    return this.closed;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0 && !this.failed) {
      const text = this.queue.length === 1 ? this.queue[0]! : this.queue.join('');
      this.queue.length = 0;
      try {
        await this.fh.write(text);
        if ((await this.fh.stat()).nlink === 0) throw new Error('the file was removed');
      } catch (err) {
        this.fail((err as Error).message);
      }
      this.release(Buffer.byteLength(text));
    }
    this.writing = false;
    this.closing?.();
  }

  private release(size: number): void {
    this.queued -= size;
    this.opts.budget.used -= size;
  }

  private fail(why: string): void {
    if (this.failed) return;
    this.failed = true;
    // what is still queued will never be written: give its share of the budget back
    for (const text of this.queue) this.release(Buffer.byteLength(text));
    this.queue.length = 0;
    this.opts.onFailure(why);
  }
}
