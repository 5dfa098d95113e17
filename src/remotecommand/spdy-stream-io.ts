/**
 * Sources and sinks over SPDY streams, reading and writing beside the streams' Node machinery
 * (readDirect, writeDirect: a chunk costs a call, not a Readable push or a Writable write and
 * their ticks). Backpressure is the session's: a stream whose reader is paused pauses the whole
 * socket (docs/protocols.md §6.8), and writes wait for the socket's drain.
 * Classes rather than object literals of closures: a session holds several, for as long as it
 * lasts, and methods on a prototype cost nothing per session.
 */
import type { SpdyStream } from '../spdy/session.js';
import type { Sink, Source } from './flow.js';

export class StreamSource implements Source {
  constructor(private readonly stream: SpdyStream) {}

  read(data: (chunk: Buffer) => void, end: () => void): void {
    this.stream.readDirect(data, end);
  }

  pause(): void {
    this.stream.hold();
  }

  resume(): void {
    this.stream.release();
  }
}

/** Writes after our half-close (data after a v5 CLOSE) are dropped. */
export class StreamSink implements Sink {
  constructor(private readonly stream: SpdyStream) {}

  write(chunk: Buffer): boolean {
    return this.stream.writableEnded || this.stream.writeDirect(chunk);
  }

  afterFlush(next: () => void): void {
    this.stream.afterDrain(next);
  }

  end(): void {
    this.stream.end();
  }
}

/** End a stream's writable side and wait until everything written has reached the socket. */
export function endAndFlush(stream: SpdyStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableFinished || stream.destroyed) {
      resolve();
      return;
    }
    stream.once('finish', resolve);
    stream.once('close', resolve);
    stream.end();
  });
}
