/**
 * Sources and sinks over SPDY streams. Backpressure is the session's: a stream whose reader is
 * paused pauses the whole socket (docs/protocols.md §6.8), and writes wait for the socket's drain.
 * Classes rather than object literals of closures: a session holds several, for as long as it
 * lasts, and methods on a prototype cost nothing per session.
 */
import type { SpdyStream } from '../spdy/session.js';
import type { Sink, Source } from './flow.js';

export class StreamSource implements Source {
  constructor(private readonly stream: SpdyStream) {}

  read(data: (chunk: Buffer) => void, end: () => void): void {
    this.stream.on('data', data);
    this.stream.once('end', end);
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }
}

/** Writes after our half-close (data after a v5 CLOSE) are dropped. */
export class StreamSink implements Sink {
  constructor(private readonly stream: SpdyStream) {}

  write(chunk: Buffer): boolean {
    return this.stream.writableEnded || this.stream.write(chunk);
  }

  afterFlush(next: () => void): void {
    if (this.stream.writableNeedDrain && !this.stream.destroyed) this.stream.once('drain', next);
    else next();
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
