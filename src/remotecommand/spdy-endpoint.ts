/**
 * The server side of exec/attach over SPDY, as the CRI streaming server is (docs/protocols.md §3.2):
 * every stream the client opens is accepted with an empty SYN_REPLY and sorted by its `streamtype`;
 * the session is established once the streams the query promises are there, which must happen
 * within the wait. Streams the server only writes are still read, and what comes on them dropped, so
 * that nothing the client sends can stall the session (§6.8). At the end: the status on the error
 * stream, every stream flushed and finished, then RST_STREAM on what is left, GOAWAY, close.
 */
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import type { ExecStreams } from '../k8s/stream-request.js';
import type { SpdySession, SpdySessionError, SpdyStream } from '../spdy/session.js';
import type { EndpointStreams, Sink, Source } from './flow.js';
import { endAndFlush, StreamSink, StreamSource } from './spdy-stream-io.js';
import { type SessionStatus, statusBytes } from './status.js';
import { knownStreamType, promisedStreams, type StreamType, stderrPromised } from './streams.js';

export interface SpdyEndpointOptions {
  version: RemoteCommandVersion;
  wants: ExecStreams;
  /** How long the client has to open the promised streams (CRI: 30 s). */
  waitMs: number;
  /** The CRI's 1.0-era v1 quirks: our side of stdin is closed at once and the error stream reset. */
  v1Quirks?: boolean;
  /** Every promised stream is there: stdin, resize, stdout and stderr are set. */
  onReady(): void;
  /** The wait ended first. */
  onTimeout(received: number, expected: number): void;
  /** The client's session is gone; `err` when it did not end cleanly. */
  onClose(err: SpdySessionError | undefined): void;
}

export class SpdyEndpoint implements EndpointStreams {
  stdin: Source | undefined;
  resize: Source | undefined;
  stdout: Sink | undefined;
  stderr: Sink | undefined;
  private readonly streams = new Map<StreamType, SpdyStream>();
  private readonly expected: number;
  private ready = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly session: SpdySession,
    private readonly opts: SpdyEndpointOptions,
  ) {
    this.expected = promisedStreams(opts.wants, opts.version).length;
    this.timer = setTimeout(() => opts.onTimeout(this.streams.size, this.expected), opts.waitMs);
    this.timer.unref();
    session.on('stream', (stream) => this.onStream(stream));
    session.on('close', (err) => {
      clearTimeout(this.timer);
      opts.onClose(err);
    });
  }

  get closed(): boolean {
    return this.session.closed;
  }

  /**
   * Write the status (if this version has bytes for it), flush and finish every stream, close. The
   * status need not wait for the output: on a stream of its own, it is read once the output is over
   * (§3.2). Only the close must wait, or it would cut what is still queued.
   */
  async finish(end: SessionStatus): Promise<void> {
    clearTimeout(this.timer);
    const error = this.streams.get('error');
    const bytes = statusBytes(end, this.opts.version);
    if (error && bytes && !error.destroyed) error.write(bytes);
    const streams = [this.streams.get('stdout'), this.streams.get('stderr'), error];
    await Promise.all(streams.map((s) => s && endAndFlush(s)));
    this.session.close();
  }

  /** Accept every stream; count the known ones, each type once (§3.2). */
  private onStream(stream: SpdyStream): void {
    stream.reply();
    stream.on('error', () => {}); // a reset is an end, not an error
    const type = stream.streamType;
    if (this.ready || !knownStreamType(type, this.opts.version) || this.streams.has(type)) {
      stream.resume(); // replied to, not counted (the CRI logs "unexpected stream type")
      return;
    }
    this.streams.set(type, stream);
    if (this.streams.size === this.expected) this.establish();
  }

  private establish(): void {
    this.ready = true;
    clearTimeout(this.timer);
    const { wants, version } = this.opts;
    const get = (type: StreamType, wanted: boolean) => (wanted ? this.streams.get(type) : undefined);
    const stdin = get('stdin', wants.stdin);
    const resize = get('resize', wants.tty);
    // the client writes only stdin and resize: what it sends on the others is read and dropped
    for (const stream of this.streams.values()) if (stream !== stdin && stream !== resize) stream.resume();
    const stdout = get('stdout', wants.stdout);
    const stderr = get('stderr', stderrPromised(wants));
    this.stdin = stdin && new StreamSource(stdin);
    this.resize = resize && new StreamSource(resize);
    this.stdout = stdout && new StreamSink(stdout);
    this.stderr = stderr && new StreamSink(stderr);
    if (this.opts.v1Quirks && version.version === 1) {
      this.streams.get('stdin')?.end();
      this.streams.get('error')?.reset();
    }
    this.opts.onReady();
  }
}
