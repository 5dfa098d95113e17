/**
 * Warming the shim's hot paths before the first real session. V8 compiles a function to fast
 * machine code only once it has run many times, on a helper thread, so a fresh process's first
 * few thousand keystroke round trips include slow ones: its added p99 was 5–10× a warm process's
 * (README, "Performance"). So at start the shim carries sessions of its own, on loopback, through
 * the same code a client's session takes: the listener, the router, both translations (WebSocket
 * v5 client → SPDY upstream and SPDY client → WebSocket v5 upstream) and both relays, each over
 * real sockets, with 1-byte round trips and a bulk transfer. The clients are the shim's own
 * executors; the upstream is an echo made of its own endpoints (echo-upstream.ts). Nothing leaves
 * the machine, no credential is used, and every session must end with a Success status and every
 * byte echoed: a warm-up that fails says what broke.
 */
import http from 'node:http';
import { RC_V4, RC_V5, remoteCommandVersion } from '../k8s/protocols.js';
import { decodeStatus } from '../k8s/status.js';
import type { ExecStreams } from '../k8s/stream-request.js';
import type { Logger } from '../observe/logger.js';
import type { ExecutorStreams, Sink, Source } from '../remotecommand/flow.js';
import { openSpdyExecutor } from '../remotecommand/spdy-executor.js';
import { WsExecutor } from '../remotecommand/ws-executor.js';
import { type Shim, startShim } from '../server/listener.js';
import { SpdySession } from '../spdy/session.js';
import type { UpstreamMode } from '../upstream/choice.js';
import { type DialTarget, dialUpgrade, dialWebSocket } from '../upstream/dial.js';
import type { CredentialedUpstream } from '../upstream/target.js';
import { startEchoUpstream } from './echo-upstream.js';

export interface WarmUpOptions {
  log: Logger;
  /** 1-byte round trips per translated session (relayed sessions get a tenth). */
  roundTrips?: number;
  /** Bytes echoed in bulk per session after the round trips. */
  bulkBytes?: number;
  /** The whole warm-up gives up after this long. */
  timeoutMs?: number;
}

export interface WarmUpReport {
  sessions: number;
  roundTrips: number;
  bytes: number;
  ms: number;
}

/** Measured on a fresh process (README, "Performance"): the tail settles after about 3,000. */
const DEFAULT_ROUND_TRIPS = 3000;
const DEFAULT_BULK_BYTES = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;

const WANTS: ExecStreams = { stdin: true, stdout: true, stderr: true, tty: false };
const V4 = remoteCommandVersion(RC_V4)!;
const V5 = remoteCommandVersion(RC_V5)!;
const KEY = Buffer.from('k');
const BULK_CHUNK = Buffer.alloc(
  16 * 1024,
  'kubeshim warm-up: the quick brown fox jumps over the lazy dog\r\n',
);

/** One exec session as the client sees it: stdin to write, output to read, and how it ended. */
interface ExecClient {
  stdin: Sink;
  stdout: Source;
  stderr: Source;
  /** Resolves with the status's message when it is not Success, or how the connection failed. */
  ended: Promise<string | undefined>;
  close(): void;
}

type Dial = (target: DialTarget, path: string, log: Logger) => Promise<ExecClient>;

/** Run the warm-up; rejects with what broke (a session that failed, a timeout). */
export async function warmUp(opts: WarmUpOptions): Promise<WarmUpReport> {
  const started = performance.now();
  const roundTrips = opts.roundTrips ?? DEFAULT_ROUND_TRIPS;
  const bulkBytes = opts.bulkBytes ?? DEFAULT_BULK_BYTES;
  const quiet = opts.log.child({}, { level: 'silent' });
  const upstream = await startEchoUpstream();
  const agent = new http.Agent();
  const target: CredentialedUpstream = {
    url: new URL(upstream.url),
    agent,
    authHeaders: async () => ({}),
    injectsCredentials: false,
  };
  const shims: Shim[] = [];
  /** Set once the warm-up is over (finished, failed or timed out): nothing new may start. */
  let closing = false;
  let timer: NodeJS.Timeout | undefined;
  /** The session under way: on a timeout it is cut, or the shims' close would wait for it to end. */
  let current: ExecClient | undefined;
  const report: WarmUpReport = { sessions: 0, roundTrips: 0, bytes: 0, ms: 0 };
  try {
    const sessions = async () => {
      // a shim forced to each upstream protocol: one client protocol is translated, the other relayed
      for (const mode of ['spdy', 'websocket'] as UpstreamMode[]) {
        const shim = await startShim({ host: '127.0.0.1', port: 0, target, mode, log: quiet });
        if (closing) {
          await shim.close();
          return;
        }
        shims.push(shim);
        const shimTarget: DialTarget = { url: new URL(shim.url), agent };
        for (const [dial, speaks] of [
          [dialWsExec, 'websocket'],
          [dialSpdyExec, 'spdy'],
        ] as [Dial, UpstreamMode][]) {
          const trips = speaks === mode ? Math.ceil(roundTrips / 10) : roundTrips;
          const client = await dial(shimTarget, upstream.execPath, quiet);
          current = client;
          if (closing) client.close();
          try {
            report.bytes += await exercise(client, trips, bulkBytes);
          } finally {
            client.close();
          }
          report.sessions++;
          report.roundTrips += trips;
        }
      }
    };
    await Promise.race([
      sessions(),
      new Promise<never>((_, reject) => {
        const ms = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
        timer = setTimeout(() => reject(new Error(`did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    closing = true;
    clearTimeout(timer);
    current?.close();
    await Promise.all(shims.map((s) => s.close()));
    await upstream.close();
    agent.destroy();
  }
  report.ms = Math.round(performance.now() - started);
  return report;
}

/**
 * `roundTrips` 1-byte writes, each waiting for its echo, then `bulkBytes` written as fast as the
 * session takes them, then stdin's end; resolves with the bytes echoed once the status says Success.
 */
async function exercise(client: ExecClient, roundTrips: number, bulkBytes: number): Promise<number> {
  let got = 0;
  let want = 0;
  let over = false;
  let arrived: (() => void) | undefined;
  const wake = () => {
    const resolve = arrived;
    arrived = undefined;
    resolve?.();
  };
  client.stdout.read(
    (chunk) => {
      got += chunk.length;
      if (got >= want) wake();
    },
    () => {
      over = true;
      wake();
    },
  );
  let stderr = 0;
  client.stderr.read(
    (chunk) => {
      stderr += chunk.length;
    },
    () => {},
  );
  /** Resolves once `bytes` more have come back, or at once when stdout is over. */
  const echoed = (bytes: number) =>
    new Promise<void>((resolve) => {
      want = got + bytes;
      arrived = resolve;
      if (over) wake();
    });
  for (let i = 0; i < roundTrips && !over; i++) {
    const echo = echoed(1);
    client.stdin.write(KEY);
    await echo;
  }
  if (bulkBytes > 0 && !over) {
    const bulk = echoed(bulkBytes);
    for (let sent = 0; sent < bulkBytes && !over; sent += BULK_CHUNK.length) {
      const left = bulkBytes - sent;
      const piece = left >= BULK_CHUNK.length ? BULK_CHUNK : BULK_CHUNK.subarray(0, left);
      if (!client.stdin.write(piece)) await new Promise<void>((resolve) => client.stdin.afterFlush(resolve));
    }
    await bulk;
  }
  client.stdin.end();
  const failure = await client.ended;
  const expected = roundTrips + bulkBytes;
  if (failure !== undefined) throw new Error(`a warm-up session failed: ${failure}`);
  if (stderr > 0) throw new Error(`a warm-up session wrote ${stderr} bytes on stderr`);
  if (got !== expected) throw new Error(`a warm-up session echoed ${got} bytes of ${expected}`);
  return got;
}

/** What an upstream end says: undefined for Success, else the status's message or the failure. */
function verdict(status: Buffer, failure: string | undefined): string | undefined {
  if (failure !== undefined) return failure;
  const outcome = decodeStatus(status);
  if (outcome.kind === 'success') return undefined;
  return outcome.kind === 'exit' ? `exit code ${outcome.code}` : outcome.message;
}

/** A WebSocket v5 client, as kubectl 1.30+ is. */
const dialWsExec: Dial = async (target, path, log) => {
  const r = await dialWebSocket(target, path, [RC_V5], {}, { handshakeTimeoutMs: 10_000 });
  if (!r.ok) throw new Error(`the warm-up's WebSocket exec was refused (${r.refusal.statusCode})`);
  let executor!: WsExecutor;
  const ended = new Promise<string | undefined>((resolve) => {
    executor = new WsExecutor(r.ws, {
      version: V5,
      wants: WANTS,
      log,
      onEnd: (status, failure) => resolve(verdict(status, failure)),
      onProtocolError: (message) => resolve(message),
    });
  });
  executor.start();
  return {
    stdin: executor.stdin!,
    stdout: executor.stdout!,
    stderr: executor.stderr!,
    ended,
    close: () => r.ws.terminate(),
  };
};

/** A SPDY v4 client, as kubectl up to 1.29 is. */
const dialSpdyExec: Dial = async (target, path) => {
  const r = await dialUpgrade(
    target,
    'POST',
    path,
    { connection: 'Upgrade', upgrade: 'SPDY/3.1', 'x-stream-protocol-version': RC_V4 },
    { handshakeTimeoutMs: 10_000 },
  );
  if (!r.ok) throw new Error(`the warm-up's SPDY exec was refused (${r.refusal.statusCode})`);
  const session = new SpdySession(r.socket, { role: 'client', head: r.head });
  let streams!: Promise<ExecutorStreams>;
  const ended = new Promise<string | undefined>((resolve) => {
    streams = openSpdyExecutor(session, WANTS, V4, (status, failure) => resolve(verdict(status, failure)));
  });
  const { stdin, stdout, stderr } = await streams;
  return { stdin: stdin!, stdout: stdout!, stderr: stderr!, ended, close: () => session.close() };
};
