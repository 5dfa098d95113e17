/**
 * The two ends of every byte path of a remotecommand session, and the one pipe between them. A
 * Source hands over chunks as they arrived (slices, never copies) and can be paused; a Sink takes
 * chunks and says when its transport is congested. The pipe pauses the source while the sink is
 * congested: backpressure end to end, with nothing buffered in between (docs/design.md, "Rules that
 * never bend", 5).
 */

export interface Source {
  /** Deliver chunks to `data`; `end` runs once after the last (a half-close, or the transport's end). */
  read(data: (chunk: Buffer) => void, end: () => void): void;
  pause(): void;
  resume(): void;
}

export interface Sink {
  /** Send a chunk; false when the transport is congested: wait with afterFlush before sending more. */
  write(chunk: Buffer): boolean;
  /** Run `next` once the transport can take more (at once when it can now, or is gone). */
  afterFlush(next: () => void): void;
  /** Half-close (stdin EOF); a no-op where the protocol has none. */
  end(): void;
}

/** Sees each chunk before it is written (byte counts, recordings); must not keep or change it. */
export type Tap = (chunk: Buffer) => void;

/** What the server side of a session reads from and writes to its client. */
export interface EndpointStreams {
  stdin?: Source;
  resize?: Source;
  stdout?: Sink;
  stderr?: Sink;
}

/** What the client side of a session writes to and reads from its upstream. */
export interface ExecutorStreams {
  stdin?: Sink;
  resize?: Sink;
  stdout?: Source;
  stderr?: Source;
}

export interface SessionTaps {
  stdin: Tap;
  resize: Tap;
  stdout: Tap;
  stderr: Tap;
}

/**
 * Move bytes from `source` to `sink` until the source ends, then half-close the sink. Without a
 * sink the source is still read (and tapped), and what it says is dropped.
 */
export function pipe(source: Source, sink: Sink | undefined, tap: Tap): void {
  new Pipe(source, sink, tap);
}

/** A pipe's state; its callbacks are bound once, so nothing is allocated per chunk or per wait. */
class Pipe {
  private waiting = false;
  private readonly resumeSource = this.resume.bind(this);

  constructor(
    private readonly source: Source,
    private readonly sink: Sink | undefined,
    private readonly tap: Tap,
  ) {
    source.read(this.data.bind(this), this.end.bind(this));
  }

  private data(chunk: Buffer): void {
    this.tap(chunk);
    if (this.sink === undefined || this.sink.write(chunk) || this.waiting) return;
    this.waiting = true;
    this.source.pause();
    this.sink.afterFlush(this.resumeSource);
  }

  private resume(): void {
    this.waiting = false;
    this.source.resume();
  }

  private end(): void {
    this.sink?.end();
  }
}

/** Connect a session's endpoint (facing the client) with its executor (facing the upstream). */
export function pipeSession(endpoint: EndpointStreams, executor: ExecutorStreams, taps: SessionTaps): void {
  if (endpoint.stdin) pipe(endpoint.stdin, executor.stdin, taps.stdin);
  if (endpoint.resize) pipe(endpoint.resize, executor.resize, taps.resize);
  if (executor.stdout) pipe(executor.stdout, endpoint.stdout, taps.stdout);
  if (executor.stderr) pipe(executor.stderr, endpoint.stderr, taps.stderr);
}
