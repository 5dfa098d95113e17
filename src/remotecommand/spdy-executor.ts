/**
 * The client side of exec/attach over SPDY, as client-go's executor is (docs/protocols.md §3.2): it
 * opens the streams the query promises in client-go's order, each after the previous SYN_REPLY,
 * reads the error stream, and reports the end once the error stream and the output are over.
 */
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import type { ExecStreams } from '../k8s/stream-request.js';
import type { SpdySession, SpdyStream } from '../spdy/session.js';
import type { ExecutorStreams, Source } from './flow.js';
import { StreamSink, StreamSource } from './spdy-stream-io.js';
import { type OnUpstreamEnd, StatusBytes } from './status.js';
import { promisedStreams } from './streams.js';

/** Open the upstream streams; rejects when one cannot be opened (reset, 30 s without SYN_REPLY). */
export async function openSpdyExecutor(
  session: SpdySession,
  wants: ExecStreams,
  version: RemoteCommandVersion,
  onEnd: OnUpstreamEnd,
): Promise<ExecutorStreams> {
  const status = new StatusBytes();
  const streams: ExecutorStreams = {};
  const types = promisedStreams(wants, version);
  /** Readers still to end: error, and the output streams (counted before any is opened). */
  let open = types.filter((t) => t === 'error' || t === 'stdout' || t === 'stderr').length;
  const readerEnded = () => {
    if (--open > 0) return;
    const failure = session.failure;
    onEnd(status.bytes(), failure ? `upstream connection failed: ${failure.message}` : undefined);
  };
  const output = (stream: SpdyStream): Source => {
    stream.once('end', readerEnded);
    return new StreamSource(stream);
  };
  for (const type of types) {
    const stream = await session.openStream({ streamtype: type });
    if (type === 'error') {
      stream.on('data', (chunk: Buffer) => status.add(chunk));
      stream.once('end', readerEnded);
    } else if (type === 'stdout') streams.stdout = output(stream);
    else if (type === 'stderr') streams.stderr = output(stream);
    else streams[type] = new StreamSink(stream);
  }
  return streams;
}
