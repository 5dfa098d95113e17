/**
 * A pod's log, the way `kubectl logs` sees a container's: lines kept in a bounded ring, and
 * followers that get each new line as it is written. Lines come from a heartbeat (so that
 * `logs -f` always has something arriving slowly) and from the main process's output.
 */

const MAX_LINES = 1000;
const MAX_PARTIAL = 4096;

export type LogListener = (line: string) => void;

export class PodLog {
  private readonly ring: string[] = [];
  private readonly followers = new Set<LogListener>();
  private partial = '';
  private timer: NodeJS.Timeout | undefined;
  private ticks = 0;

  /** Write a heartbeat line every `intervalMs` (0: never). */
  constructor(intervalMs: number) {
    this.append(`${new Date().toISOString()} container started`);
    if (intervalMs > 0) {
      this.timer = setInterval(() => {
        this.ticks++;
        this.append(`${new Date().toISOString()} tick ${this.ticks}`);
      }, intervalMs);
      this.timer.unref();
    }
  }

  /** Lines so far, the last `tail` of them when given. */
  lines(tail?: number): string[] {
    return tail === undefined ? [...this.ring] : this.ring.slice(Math.max(0, this.ring.length - tail));
  }

  /** Call `listener` with every new line until the returned function is called. */
  follow(listener: LogListener): () => void {
    this.followers.add(listener);
    return () => this.followers.delete(listener);
  }

  /** Output of the container: complete lines go to the log, a trailing partial line waits. */
  write(chunk: Buffer): void {
    const text = this.partial + chunk.toString('utf8');
    const parts = text.split('\n');
    this.partial = parts.pop()!.slice(0, MAX_PARTIAL);
    for (const line of parts) this.append(line);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.followers.clear();
  }

  private append(line: string): void {
    this.ring.push(line);
    if (this.ring.length > MAX_LINES) this.ring.shift();
    for (const f of this.followers) f(line);
  }
}
