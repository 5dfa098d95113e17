/**
 * Node stream views of an endpoint's sources and sinks, for code that pipes to processes (the
 * emulator). A reader pauses its source when full; a writer sends each chunk and calls back once
 * the transport can take more, so a zero-length write is a flush barrier (it sends nothing: an empty
 * message would be a second "established" marker).
 */
import { Readable, Writable } from 'node:stream';
import type { EndpointStreams, Sink, Source } from './flow.js';

const HIGH_WATER_MARK = 64 * 1024;

export interface NodeStreams {
  stdin?: Readable;
  resize?: Readable;
  stdout?: Writable;
  stderr?: Writable;
}

export function sourceReadable(source: Source): Readable {
  const readable = new Readable({ highWaterMark: HIGH_WATER_MARK, read: () => source.resume() });
  source.read(
    (chunk) => {
      if (!readable.destroyed && !readable.push(chunk)) source.pause();
    },
    () => readable.push(null),
  );
  return readable;
}

export function sinkWritable(sink: Sink): Writable {
  return new Writable({
    highWaterMark: HIGH_WATER_MARK,
    write(chunk: Buffer, _enc, callback) {
      if (chunk.length > 0) sink.write(chunk);
      sink.afterFlush(() => callback());
    },
  });
}

export function nodeStreams(endpoint: EndpointStreams): NodeStreams {
  const { stdin, resize, stdout, stderr } = endpoint;
  return {
    stdin: stdin && sourceReadable(stdin),
    resize: resize && sourceReadable(resize),
    stdout: stdout && sinkWritable(stdout),
    stderr: stderr && sinkWritable(stderr),
  };
}
