/**
 * Sources and sinks over SPDY streams. Backpressure is the session's: a stream whose reader is
 * paused pauses the whole socket (docs/protocols.md §6.8), and writes wait for the socket's drain.
 */
import type { SpdyStream } from '../spdy/session.js';
import type { Sink, Source } from './flow.js';

export function streamSource(stream: SpdyStream): Source {
  return {
    read(data, end) {
      stream.on('data', data);
      stream.once('end', end);
    },
    pause: () => stream.pause(),
    resume: () => stream.resume(),
  };
}

/** Writes after our half-close (data after a v5 CLOSE) are dropped. */
export function streamSink(stream: SpdyStream): Sink {
  return {
    write: (chunk) => stream.writableEnded || stream.write(chunk),
    afterFlush(next) {
      if (stream.writableNeedDrain && !stream.destroyed) stream.once('drain', next);
      else next();
    },
    end: () => stream.end(),
  };
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
