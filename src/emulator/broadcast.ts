/**
 * One output stream to many writers at the pace of the slowest: the source pauses while any
 * writer is over its buffer and resumes when all drained. Writers that go away stop counting.
 */
import type { Readable, Writable } from 'node:stream';

export class Subscription {
  /** Bytes handed to this writer since it subscribed. */
  bytes = 0;
  /** Called after each chunk handed to this writer. */
  onChunk: (() => void) | undefined;
  /** @internal set while the writer is over its buffer */
  onDrain: (() => void) | undefined;

  constructor(
    readonly writer: Writable,
    private readonly owner: Broadcast,
  ) {}

  cancel(): void {
    this.owner.remove(this);
  }
}

export class Broadcast {
  private readonly subs = new Set<Subscription>();
  private blocked = 0;

  constructor(
    private readonly source: Readable,
    /** Sees every chunk, whether or not anyone listens. */
    tap?: (chunk: Buffer) => void,
  ) {
    source.on('data', (chunk: Buffer) => {
      tap?.(chunk);
      for (const sub of this.subs) this.deliver(sub, chunk);
      if (this.blocked > 0) source.pause();
    });
  }

  subscribe(writer: Writable): Subscription {
    const sub = new Subscription(writer, this);
    this.subs.add(sub);
    writer.once('close', () => sub.cancel());
    return sub;
  }

  /** @internal */
  remove(sub: Subscription): void {
    if (!this.subs.delete(sub)) return;
    if (sub.onDrain) {
      sub.writer.off('drain', sub.onDrain);
      sub.onDrain = undefined;
      this.unblock();
    }
  }

  private deliver(sub: Subscription, chunk: Buffer): void {
    if (sub.writer.destroyed || sub.writer.writableEnded) return;
    sub.bytes += chunk.length;
    const ok = sub.writer.write(chunk);
    sub.onChunk?.();
    if (ok || sub.onDrain) return;
    this.blocked++;
    sub.onDrain = () => {
      sub.onDrain = undefined;
      this.unblock();
    };
    sub.writer.once('drain', sub.onDrain);
  }

  private unblock(): void {
    this.blocked--;
    if (this.blocked === 0) this.source.resume();
  }
}
