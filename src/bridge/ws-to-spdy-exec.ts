/**
 * exec/attach: a WebSocket client (v5, or the legacy v1–v4 and base64 protocols) in front of a SPDY
 * upstream — "be a StreamTranslator" (docs/protocols.md §8.1). The upstream SPDY upgrade is done by the
 * caller; this opens the upstream streams the query promises, pumps channels ⇄ streams with
 * backpressure both ways, and ends with exactly one status on channel 3 and Close 1000.
 */
import type { RawData, WebSocket } from 'ws';
import {
  CH_CLOSE,
  CH_ERROR,
  CH_RESIZE,
  CH_STDERR,
  CH_STDIN,
  CH_STDOUT,
  decodeMessage,
  parseClosePayload,
} from '../channel/codec.js';
import { sendChannel } from '../channel/send.js';
import { afterWsFlush, wsCongested } from '../channel/ws-flow.js';
import type { SpdySession, SpdyStream } from '../spdy/session.js';
import { clientProtocolError, onClientProtocolError } from './client-protocol-error.js';
import { type ExecBridgeParams, StatusBytes } from './exec-session.js';
import { keepWebSocketAlive } from './keepalive.js';
import { type Outcome, shimFailure, statusBytesForClient, upstreamOutcome } from './outcome.js';

export type WsToSpdyExecParams = ExecBridgeParams<WebSocket, SpdySession>;

/** Run the session to its end; resolves once both sides are closed or closing. */
export function bridgeWsToSpdyExec(p: WsToSpdyExecParams): Promise<void> {
  return new WsToSpdyExec(p).run();
}

class WsToSpdyExec {
  private readonly status = new StatusBytes();
  private stdin: SpdyStream | undefined;
  private resize: SpdyStream | undefined;
  /** Upstream streams still to end: error, and stdout/stderr when requested. */
  private openReaders: number;
  private finished = false;
  /** Upstream streams that are full: the client stays paused until each has drained. */
  private readonly fullUpstreams = new Set<SpdyStream>();
  private stopKeepalive: () => void = () => {};
  private resolveDone: () => void = () => {};

  constructor(private readonly p: WsToSpdyExecParams) {
    this.openReaders = 1 + +p.streams.stdout + +p.streams.stderr;
  }

  run(): Promise<void> {
    const { client, streams } = this.p;
    const done = new Promise<void>((resolve) => {
      this.resolveDone = resolve;
    });
    this.p.record.onAbort((reason) => this.finishWith(shimFailure(reason)));
    client.pause(); // nothing from the client until the upstream streams exist
    client.on('message', (data: RawData, isBinary: boolean) =>
      this.onClientMessage(data as Buffer, isBinary),
    );
    client.on('close', (code: number, reason: Buffer) => this.onClientClosed(code, reason.toString()));
    onClientProtocolError(client, (reason) => this.end(reason, 'error'));
    this.stopKeepalive = keepWebSocketAlive(client, this.p.keepalive, (why) => {
      client.terminate();
      this.end(`client ${why}`, 'error');
    });
    // "connection established": an empty message on the lowest requested output channel (§3.3)
    this.send(streams.stdout ? CH_STDOUT : streams.stderr ? CH_STDERR : CH_ERROR, Buffer.alloc(0));
    this.openUpstreamStreams().then(
      () => {
        if (!this.finished) client.resume();
      },
      (err: Error) => this.finishWith(shimFailure(`could not open the upstream streams: ${err.message}`)),
    );
    return done;
  }

  /** Open streams in client-go's order, each after the previous one's SYN_REPLY (§3.2). */
  private async openUpstreamStreams(): Promise<void> {
    const { upstream, streams, upstreamVersion } = this.p;
    const error = await upstream.openStream({ streamtype: 'error' });
    this.readError(error);
    if (streams.stdin) this.stdin = await upstream.openStream({ streamtype: 'stdin' });
    if (streams.stdout) this.readOutput(await upstream.openStream({ streamtype: 'stdout' }), CH_STDOUT);
    if (streams.stderr) this.readOutput(await upstream.openStream({ streamtype: 'stderr' }), CH_STDERR);
    if (streams.tty && upstreamVersion.resize)
      this.resize = await upstream.openStream({ streamtype: 'resize' });
  }

  private readError(stream: SpdyStream): void {
    stream.on('data', (chunk: Buffer) => this.status.add(chunk));
    stream.once('end', () => this.readerEnded());
  }

  private readOutput(stream: SpdyStream, channel: number): void {
    const { client, record } = this.p;
    const stderr = channel === CH_STDERR;
    stream.on('data', (chunk: Buffer) => {
      record.bytesOut += chunk.length;
      record.tap?.output(chunk, stderr);
      this.send(channel, chunk);
      if (wsCongested(client)) {
        stream.pause();
        afterWsFlush(client, () => stream.resume());
      }
    });
    stream.once('end', () => this.readerEnded());
  }

  /** All upstream output and the status have been read: the session is over (§3.2 end of session). */
  private readerEnded(): void {
    if (--this.openReaders > 0 || this.finished) return;
    const failure = this.p.upstream.failure;
    this.finishWith(
      upstreamOutcome(
        this.status.bytes(),
        this.p.upstreamVersion,
        failure ? `upstream connection failed: ${failure.message}` : undefined,
      ),
    );
  }

  private onClientMessage(data: Buffer, isBinary: boolean): void {
    if (this.finished) return;
    const { clientVersion, record } = this.p;
    let msg: ReturnType<typeof decodeMessage>;
    try {
      // As a server we accept text frames on binary protocols, like x/net does (§3.3).
      msg = decodeMessage(data, clientVersion.base64 ? isBinary : true, clientVersion.base64);
    } catch (err) {
      this.protocolError((err as Error).message);
      return;
    }
    if (msg === null) return;
    switch (msg.channel) {
      case CH_STDIN: {
        const stdin = this.stdin;
        if (stdin === undefined || stdin.writableEnded) return; // data after CLOSE is discarded
        record.bytesIn += msg.payload.length;
        record.tap?.input(msg.payload);
        this.writeUpstream(stdin, msg.payload);
        return;
      }
      case CH_RESIZE:
        record.tap?.resize(msg.payload);
        if (this.resize && !this.resize.writableEnded) this.writeUpstream(this.resize, msg.payload);
        return;
      case CH_CLOSE: {
        if (!clientVersion.wsClose) return;
        let channel: number;
        try {
          channel = parseClosePayload(msg.payload);
        } catch (err) {
          this.protocolError((err as Error).message);
          return;
        }
        // v5 CLOSE on stdin becomes FIN on the upstream stdin stream (§3.3.2)
        if (channel === CH_STDIN) this.stdin?.end();
        else if (channel === CH_RESIZE) this.resize?.end();
        return;
      }
      default:
        return; // channels the server only writes, or does not know: discarded (§3.3)
    }
  }

  /** Backpressure toward the upstream, for every stream the client writes (a resize flood too). */
  private writeUpstream(stream: SpdyStream, payload: Buffer): void {
    if (stream.write(payload) || this.fullUpstreams.has(stream)) return;
    this.fullUpstreams.add(stream);
    this.p.client.pause();
    stream.once('drain', () => {
      this.fullUpstreams.delete(stream);
      if (this.fullUpstreams.size === 0 && !this.finished) this.p.client.resume();
    });
  }

  /** A malformed message ends this session (and only this one) with a reason. */
  private protocolError(message: string): void {
    this.p.log.warn({ err: message }, 'client protocol error');
    if (this.p.client.readyState === this.p.client.OPEN) this.p.client.close(1002, message.slice(0, 120));
    this.end(clientProtocolError(message), 'error');
  }

  private onClientClosed(code: number, reason: string): void {
    this.end(`client closed the connection (${code}${reason ? ` ${reason}` : ''})`, 'failure');
  }

  private send(channel: number, payload: Buffer): void {
    sendChannel(this.p.client, channel, payload, this.p.clientVersion.base64);
  }

  /** Normal end: status to the client, Close 1000, upstream closed. */
  private finishWith(outcome: Outcome): void {
    if (this.finished) return;
    const bytes = statusBytesForClient(outcome, this.p.clientVersion);
    if (bytes) this.send(CH_ERROR, bytes);
    const { client } = this.p;
    if (client.readyState === client.OPEN) client.close(1000);
    this.p.record.exitCode = outcome.exitCode;
    const reason =
      outcome.kind === 'success' || outcome.kind === 'exit-code'
        ? 'completed'
        : `status: ${outcome.status.message ?? outcome.status.status}`;
    this.end(reason, outcome.kind);
  }

  private end(closeReason: string, outcome: Outcome['kind']): void {
    if (this.finished) return;
    this.finished = true;
    this.stopKeepalive();
    this.p.client.resume(); // a paused client could not complete the close handshake
    this.p.upstream.close();
    this.p.record.finish(closeReason, outcome);
    this.resolveDone();
  }
}
