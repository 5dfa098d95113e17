/**
 * The doctor's side of a streaming session once the upgrade is through: just enough of a client to
 * run a command and read its status (SPDY: docs/protocols.md §3.2; WebSocket v5: §3.3.2), or to hold a
 * port-forward session and PING through it (§4.1, §4.3). Output is read and dropped. Nothing pings
 * on its own: a quiet session stays quiet, which is what --idle measures.
 */
import type { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import { CH_ERROR, decodeMessage } from '../channel/codec.js';
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import { decodeStatus, type StatusOutcome } from '../k8s/status.js';
import type { ExecStreams } from '../k8s/stream-request.js';
import { openSpdyExecutor } from '../remotecommand/spdy-executor.js';
import { SpdySession } from '../spdy/session.js';

export interface SessionEnd {
  /** The status the server sent, decoded; undefined when none came. */
  outcome?: StatusOutcome;
  /** How the connection ended without a status (or `undefined` when it is still open at the deadline). */
  cut?: string;
  /** From the 101 to the end (or to the deadline). */
  elapsedMs: number;
}

/** What the doctor's exec asks for: the output, which it reads and drops, and the status. */
const OUTPUT_ONLY: ExecStreams = { stdin: false, stdout: true, stderr: true, tty: false };
const drop = () => {};

/**
 * An exec over an upgraded SPDY connection asking for stdout and stderr, through the executor the
 * bridges use (remotecommand/spdy-executor.ts): the output is drained, the status read to the end
 * of the session. Gives up at `deadlineMs`.
 */
export async function runSpdyExec(
  socket: Duplex,
  head: Buffer,
  version: RemoteCommandVersion,
  deadlineMs: number,
): Promise<SessionEnd> {
  const started = performance.now();
  const session = new SpdySession(socket, { role: 'client', head, replyTimeoutMs: deadlineMs });
  const closed = new Promise<string>((resolve) =>
    session.once('close', (err) => resolve(err ? err.message : 'the connection closed')),
  );
  try {
    const ended = new Promise<Buffer>((resolve, reject) => {
      openSpdyExecutor(session, OUTPUT_ONLY, version, resolve).then((streams) => {
        for (const output of [streams.stdout, streams.stderr]) output?.read(drop, drop);
      }, reject);
    });
    const bytes = await within(ended, deadlineMs);
    const elapsedMs = performance.now() - started;
    if (bytes === undefined) return { elapsedMs };
    if (bytes.length > 0)
      return {
        outcome: version.jsonStatus
          ? decodeStatus(bytes)
          : { kind: 'failure', message: bytes.toString('utf8'), status: { metadata: {}, status: 'Failure' } },
        elapsedMs,
      };
    // v4 always writes a status; an error stream that ends empty means the connection went away
    if (version.jsonStatus || session.closed)
      return { cut: (await within(closed, 1000)) ?? 'the error stream ended without a status', elapsedMs };
    return { outcome: { kind: 'success' }, elapsedMs };
  } catch (err) {
    return { cut: (err as Error).message, elapsedMs: performance.now() - started };
  } finally {
    session.close();
  }
}

/**
 * An exec over a WebSocket v5 connection: the status is one message on channel 3 (§3.4); once it is
 * in, the session is over for the client (kubectl returns then too), whatever the server's close.
 */
export async function runWsExec(ws: WebSocket, deadlineMs: number): Promise<SessionEnd> {
  const started = performance.now();
  const ended = new Promise<{ status: Buffer } | { cut: string }>((resolve) => {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      try {
        const msg = decodeMessage(data as Buffer, isBinary, false);
        if (msg?.channel === CH_ERROR) resolve({ status: Buffer.from(msg.payload) });
      } catch {
        // a text message is not ours to judge here: the status decides
      }
    });
    ws.on('error', () => {});
    ws.once('close', (code: number, reason: Buffer) =>
      resolve({
        cut:
          code === 1006
            ? 'the connection closed without a WebSocket close frame (1006)'
            : `WebSocket closed with ${code}${reason.length ? ` ${reason.toString()}` : ''} and no status`,
      }),
    );
    ws.resume();
  });
  const end = await within(ended, deadlineMs);
  const elapsedMs = performance.now() - started;
  ws.terminate();
  if (end === undefined) return { elapsedMs };
  return 'status' in end ? { outcome: decodeStatus(end.status), elapsedMs } : { cut: end.cut, elapsedMs };
}

/** A port-forward session without forwarded connections (nothing runs in the pod). */
export class PortForwardSession {
  private readonly session: SpdySession;
  private readonly started = performance.now();
  private endedAt: number | undefined;
  private endReason: string | undefined;
  readonly ended: Promise<void>;

  constructor(socket: Duplex, head: Buffer) {
    this.session = new SpdySession(socket, { role: 'client', head });
    this.ended = new Promise((resolve) =>
      this.session.once('close', (err) => {
        this.endedAt = performance.now();
        this.endReason = err ? err.message : 'the connection closed';
        resolve();
      }),
    );
  }

  /** A SPDY PING answered by the streaming server at the far end: its round trip, or undefined. */
  async ping(timeoutMs: number): Promise<number | undefined> {
    return within(
      this.session.ping().catch(() => undefined),
      timeoutMs,
    );
  }

  /** When and how the session ended, if it did. */
  cut(): { afterMs: number; how: string } | undefined {
    if (this.endedAt === undefined) return undefined;
    return { afterMs: this.endedAt - this.started, how: this.endReason ?? 'the connection closed' };
  }

  close(): void {
    this.session.close();
  }
}

/** `p`'s value, or undefined when it takes longer than `ms`. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    }),
  ]);
}
