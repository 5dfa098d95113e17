/**
 * exec/attach: a SPDY client (kubectl ≤ 1.28, client-go's SPDY executor) in front of a WebSocket
 * upstream — "be a SPDY server + v5 client" (docs/protocols.md §8.2). The caller has opened the upstream
 * WebSocket and answered the client's upgrade; this accepts the client's streams, pumps streams ⇄
 * channels with backpressure, carries stdin EOF as the v5 CLOSE message, and always ends with a
 * status on the client's error stream — never a silent end, which kubectl would read as exit 0.
 */
import type { RawData, WebSocket } from 'ws';
import {
  CH_ERROR,
  CH_RESIZE,
  CH_STDERR,
  CH_STDIN,
  CH_STDOUT,
  decodeMessage,
  encodeClose,
} from '../channel/codec.js';
import { sendChannel } from '../channel/send.js';
import { afterWsFlush, wsCongested } from '../channel/ws-flow.js';
import type { SpdySession, SpdyStream } from '../spdy/session.js';
import { type ExecBridgeParams, StatusBytes } from './exec-session.js';
import { keepWebSocketAlive } from './keepalive.js';
import { type Outcome, shimFailure, statusBytesForClient, upstreamOutcome } from './outcome.js';

export interface SpdyToWsExecParams extends ExecBridgeParams<SpdySession, WebSocket> {
  /** How long the client has to open the streams its query promised (CRI: 30 s, §3.2). */
  streamWaitMs: number;
}

export function bridgeSpdyToWsExec(p: SpdyToWsExecParams): Promise<void> {
  return new SpdyToWsExec(p).run();
}

class SpdyToWsExec {
  private error: SpdyStream | undefined;
  private stdin: SpdyStream | undefined;
  private stdout: SpdyStream | undefined;
  private stderr: SpdyStream | undefined;
  private resize: SpdyStream | undefined;
  private readonly status = new StatusBytes();
  private started = false;
  private finished = false;
  private upstreamWaits = 0;
  private stopKeepalive: () => void = () => {};
  private resolveDone: () => void = () => {};
  private readonly expected: number;
  private received = 0;
  /** The wait for the client's streams; cleared once they are there (it holds the whole session). */
  private streamWait: NodeJS.Timeout | undefined;

  constructor(private readonly p: SpdyToWsExecParams) {
    const s = p.streams;
    this.expected = 1 + +s.stdin + +s.stdout + +s.stderr + +(s.tty && p.clientVersion.resize);
  }

  run(): Promise<void> {
    const { client, upstream } = this.p;
    const done = new Promise<void>((resolve) => {
      this.resolveDone = resolve;
    });
    this.p.record.onAbort((reason) => this.finishWith(shimFailure(reason)));
    upstream.pause(); // nothing from the upstream until the client's streams exist
    upstream.on('message', (data: RawData, isBinary: boolean) =>
      this.onUpstreamMessage(data as Buffer, isBinary),
    );
    upstream.on('close', (code: number, reason: Buffer) => this.onUpstreamClosed(code, reason.toString()));
    upstream.on('error', (err: Error) => this.p.log.debug({ err: err.message }, 'upstream websocket error'));
    this.stopKeepalive = keepWebSocketAlive(upstream, this.p.keepalive, (why) => {
      upstream.terminate();
      this.finishWith(shimFailure(`upstream ${why}`));
    });
    client.on('stream', (stream) => this.onClientStream(stream));
    client.on('close', (err) => {
      if (!this.finished)
        this.abort(err ? `client connection failed: ${err.message}` : 'client closed the connection');
    });
    this.streamWait = setTimeout(() => {
      if (!this.started) {
        this.finishWith(
          shimFailure(
            `timed out waiting for client to create streams (${this.received} of ${this.expected})`,
          ),
        );
      }
    }, this.p.streamWaitMs);
    this.streamWait.unref();
    return done;
  }

  /** Accept every stream (empty SYN_REPLY); count the ones the query promised (§3.2, §8.2 step 4). */
  private onClientStream(stream: SpdyStream): void {
    stream.reply();
    stream.on('error', () => {}); // a reset is an end, not an error
    const take = (slot: SpdyStream | undefined): boolean => {
      if (slot !== undefined) return false; // a duplicate: accepted, ignored
      this.received++;
      return true;
    };
    switch (stream.streamType) {
      case 'error':
        if (take(this.error)) this.error = stream;
        break;
      case 'stdin':
        if (take(this.stdin)) this.stdin = stream;
        break;
      case 'stdout':
        if (take(this.stdout)) this.stdout = stream;
        break;
      case 'stderr':
        if (take(this.stderr)) this.stderr = stream;
        break;
      case 'resize':
        if (take(this.resize)) this.resize = stream;
        break;
      default:
        break; // unknown stream types are replied to but not counted (§3.2)
    }
    if (!this.started && this.received >= this.expected) this.start();
  }

  private start(): void {
    this.started = true;
    clearTimeout(this.streamWait);
    if (this.stdin) this.forwardToUpstream(this.stdin, CH_STDIN, true);
    if (this.resize) this.forwardToUpstream(this.resize, CH_RESIZE, false);
    this.p.upstream.resume();
  }

  private forwardToUpstream(stream: SpdyStream, channel: number, countBytes: boolean): void {
    const { upstream, record, upstreamVersion } = this.p;
    stream.on('data', (chunk: Buffer) => {
      if (upstream.readyState !== upstream.OPEN) return;
      if (countBytes) record.bytesIn += chunk.length;
      if (channel === CH_STDIN) record.tap?.input(chunk);
      else record.tap?.resize(chunk);
      sendChannel(upstream, channel, chunk, upstreamVersion.base64);
      if (wsCongested(upstream)) {
        stream.pause();
        afterWsFlush(upstream, () => stream.resume());
      }
    });
    if (channel !== CH_STDIN) return;
    stream.once('end', () => {
      if (this.finished || upstream.readyState !== upstream.OPEN) return;
      // stdin FIN becomes the v5 CLOSE message; older protocols cannot carry it (§3.3.1)
      if (upstreamVersion.wsClose) upstream.send(encodeClose(CH_STDIN), { binary: true });
      else
        this.p.log.warn({ upstream: upstreamVersion.name }, `stdin EOF cannot cross ${upstreamVersion.name}`);
    });
  }

  private onUpstreamMessage(data: Buffer, isBinary: boolean): void {
    if (this.finished) return;
    const { upstreamVersion, record } = this.p;
    let msg: ReturnType<typeof decodeMessage>;
    try {
      msg = decodeMessage(data, isBinary, upstreamVersion.base64);
    } catch (err) {
      this.p.upstream.terminate();
      this.finishWith(shimFailure(`upstream protocol error: ${(err as Error).message}`));
      return;
    }
    if (msg === null || msg.payload.length === 0) return; // the established marker carries nothing (§3.3)
    switch (msg.channel) {
      case CH_STDOUT:
      case CH_STDERR: {
        const out = msg.channel === CH_STDOUT ? this.stdout : this.stderr;
        if (out === undefined) return;
        record.bytesOut += msg.payload.length;
        record.tap?.output(msg.payload, msg.channel === CH_STDERR);
        if (!out.write(msg.payload)) this.waitForDrain(out);
        return;
      }
      case CH_ERROR:
        this.status.add(msg.payload);
        return;
      default:
        return;
    }
  }

  /** A slow client reader pauses the upstream socket until its stream drains. */
  private waitForDrain(stream: SpdyStream): void {
    if (this.upstreamWaits++ === 0) this.p.upstream.pause();
    stream.once('drain', () => {
      if (--this.upstreamWaits === 0 && !this.finished) this.p.upstream.resume();
    });
  }

  private onUpstreamClosed(code: number, reason: string): void {
    const failure =
      code === 1000
        ? undefined
        : `upstream closed the connection (code ${code}${reason ? `: ${reason}` : ''})`;
    this.finishWith(upstreamOutcome(this.status.bytes(), this.p.upstreamVersion, failure));
  }

  /** Flush the output streams, write the status, then close the client session the CRI way. */
  private finishWith(outcome: Outcome): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.streamWait);
    this.stopKeepalive();
    const { client, upstream, record } = this.p;
    upstream.resume(); // a paused WebSocket could not complete the close handshake
    if (upstream.readyState === upstream.OPEN) upstream.close(1000);
    record.exitCode = outcome.exitCode;
    const reason =
      outcome.kind === 'success' || outcome.kind === 'exit-code'
        ? 'completed'
        : `status: ${outcome.status.message ?? outcome.status.status}`;
    const outputs = [this.stdout, this.stderr].filter((s): s is SpdyStream => s !== undefined);
    Promise.all(outputs.map(endAndFlush))
      .then(() => {
        const bytes = statusBytesForClient(outcome, this.p.clientVersion);
        if (this.error && bytes) this.error.write(bytes);
        return this.error ? endAndFlush(this.error) : undefined;
      })
      .then(() => {
        client.close();
        record.finish(reason, outcome.kind);
        this.resolveDone();
      });
  }

  /** The client went away first: nothing to tell it; close the upstream. */
  private abort(reason: string): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.streamWait);
    this.stopKeepalive();
    const { upstream } = this.p;
    upstream.resume();
    if (upstream.readyState === upstream.OPEN) upstream.close(1000);
    else upstream.terminate();
    this.p.record.finish(reason, 'failure');
    this.resolveDone();
  }
}

/** End a stream's writable side and wait until everything written has reached the socket. */
function endAndFlush(stream: SpdyStream): Promise<void> {
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
