/**
 * exec/attach over SPDY, served the way the CRI streaming server serves it (docs/protocols.md §3.2):
 * accept every stream the client opens (empty SYN_REPLY), wait up to 30 s for as many known
 * streams as the query promises, run the command, write the status on the error stream (JSON for
 * v4, text on failure only before), then RST_STREAM CANCEL on every stream, GOAWAY, close.
 */
import type { Duplex } from 'node:stream';
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import type { Logger } from '../observe/logger.js';
import { SpdySession, type SpdyStream } from '../spdy/session.js';
import { type CommandRequest, type CommandStreams, runCommand } from './remotecommand.js';
import type { ActiveSession } from './sessions.js';
import { statusBytes } from './status-bytes.js';

export interface StreamWants {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** client-go's and the CRI's stream creation timeout (§7). */
export const STREAM_CREATION_TIMEOUT_MS = 30_000;

const STREAM_TYPES = ['error', 'stdin', 'stdout', 'stderr', 'resize'] as const;
type StreamType = (typeof STREAM_TYPES)[number];

export function serveSpdyCommand(
  socket: Duplex,
  head: Buffer,
  version: RemoteCommandVersion,
  req: CommandRequest,
  wants: StreamWants,
  session: ActiveSession,
  log: Logger,
): void {
  const spdy = new SpdySession(socket, { role: 'server', head });
  const known: readonly StreamType[] = version.resize ? STREAM_TYPES : STREAM_TYPES.slice(0, 4);
  const expected =
    1 +
    Number(wants.stdin) +
    Number(wants.stdout) +
    Number(wants.stderr && !wants.tty) +
    Number(wants.tty && version.resize);
  const streams = new Map<StreamType, SpdyStream>();
  let received = 0;
  let running = false;

  const timer = setTimeout(() => {
    log.warn({ id: session.id }, 'timed out waiting for client to create streams');
    spdy.destroy('timed out waiting for client to create streams');
  }, STREAM_CREATION_TIMEOUT_MS);
  timer.unref();

  spdy.on('close', (err) => {
    clearTimeout(timer);
    session.abort();
    if (!running)
      session.end({ closeReason: err ? err.message : 'client closed before the streams were complete' });
  });

  spdy.on('stream', (stream) => {
    stream.reply();
    const type = stream.streamType as StreamType;
    if (!known.includes(type)) {
      stream.resume(); // replied to, not counted (the CRI logs "unexpected stream type")
      return;
    }
    streams.set(type, stream);
    received++;
    if (received === expected && !running) {
      running = true;
      clearTimeout(timer);
      run().catch((err: unknown) => {
        log.error({ err, id: session.id }, 'exec session failed');
        spdy.destroy();
      });
    }
  });

  const run = async () => {
    const errorStream = streams.get('error')!;
    if (version.version === 1) {
      // 1.0-era quirks the CRI keeps (§3.2): our side of stdin is closed at once and the error
      // stream is reset, so v1 cannot report anything
      streams.get('stdin')?.end();
      errorStream.reset();
    }
    const io: CommandStreams = {};
    for (const [type, stream] of streams) {
      // the client writes only stdin and resize: every other stream is read and dropped so that
      // nothing it sends can stall the session (§6.8)
      if (type === 'stdin' && wants.stdin) io.stdin = stream;
      else if (type === 'resize' && wants.tty) io.resize = stream;
      else stream.resume();
      if (type === 'stdout' && wants.stdout) io.stdout = stream;
      if (type === 'stderr' && wants.stderr && !wants.tty) io.stderr = stream;
    }
    const result = await runCommand(req, io, session.signal);
    if (spdy.closed) {
      session.end({ exitCode: result.exitCode, closeReason: 'client went away' });
      return;
    }
    const bytes = statusBytes(result.status, version.jsonStatus);
    const finish = () => {
      spdy.close();
      session.end({
        exitCode: result.exitCode,
        status: result.status.status,
        closeReason: 'completed',
      });
    };
    if (bytes.length > 0 && !errorStream.destroyed) errorStream.write(bytes, finish);
    else finish();
  };
}
