/**
 * The client side of exec/attach over a Kubernetes WebSocket, as kubectl's v5 executor is
 * (docs/protocols.md §3.3.2; v4 on the legacy path): stdin and resize go out on channels 0 and 4,
 * stdin EOF as the v5 CLOSE `[255, 0]`; stdout and stderr come from channels 1 and 2 (the empty
 * established message carries nothing and is dropped); the status is what came on channel 3 when
 * the WebSocket closed. Nothing is read until start(), and nothing is lost before it: see `early`.
 */
import type { WebSocket } from 'ws';
import {
  CH_ERROR,
  CH_RESIZE,
  CH_STDERR,
  CH_STDIN,
  CH_STDOUT,
  type ChannelMessage,
  decodeMessage,
  encodeClose,
} from '../channel/codec.js';
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import type { ExecStreams } from '../k8s/stream-request.js';
import type { Logger } from '../observe/logger.js';
import type { ExecutorStreams, Sink } from './flow.js';
import { type OnUpstreamEnd, StatusBytes } from './status.js';
import { stderrPromised } from './streams.js';
import { ChannelPeer, ChannelSink, ChannelSource } from './ws-channel-io.js';

export interface WsExecutorOptions {
  version: RemoteCommandVersion;
  wants: ExecStreams;
  log: Logger;
  onEnd: OnUpstreamEnd;
  /** The upstream broke the channel protocol (a text message on a binary protocol, bad base64). */
  onProtocolError(message: string): void;
}

export class WsExecutor extends ChannelPeer implements ExecutorStreams {
  readonly stdin: Sink | undefined;
  readonly resize: Sink | undefined;
  readonly stdout: ChannelSource | undefined;
  readonly stderr: ChannelSource | undefined;
  private readonly status = new StatusBytes();
  /**
   * Until start(), the output and the end, held back. The socket is paused then, but once it closes
   * (an x/net upstream closes TCP right after its Close 1000, docs/protocols.md §3.3) what it had
   * buffered is parsed all the same; reported then, the upstream's Success would end the session
   * before the client has the streams for its output. Bounded by that buffer: the socket's
   * high-water mark plus one read.
   */
  private early: { output: [ChannelSource, Buffer][]; end?: () => void } | undefined = { output: [] };

  constructor(
    ws: WebSocket,
    private readonly opts: WsExecutorOptions,
  ) {
    // an upstream's frames are read as slices of the reads (ChannelPeer), on binary protocols
    super(ws, !opts.version.base64);
    const { version, wants } = opts;
    this.stdin = wants.stdin
      ? new ChannelSink(ws, CH_STDIN, version.base64, () => this.endStdin())
      : undefined;
    this.resize = wants.tty ? new ChannelSink(ws, CH_RESIZE, version.base64) : undefined;
    this.stdout = wants.stdout ? new ChannelSource(this.gate) : undefined;
    this.stderr = stderrPromised(wants) ? new ChannelSource(this.gate) : undefined;
    ws.on('close', (code: number, reason: Buffer) => {
      const why = reason.toString();
      const failure =
        code === 1000 ? undefined : `upstream closed the connection (code ${code}${why ? `: ${why}` : ''})`;
      const end = () => opts.onEnd(this.status.bytes(), failure);
      if (this.early) this.early.end = end;
      else end();
    });
    ws.on('error', (err: Error) => opts.log.debug({ err: err.message }, 'upstream websocket error'));
  }

  /** Read from now on, and hand on first what came before. */
  override start(): void {
    const early = this.early;
    this.early = undefined;
    for (const [source, payload] of early?.output ?? []) source.deliver(payload);
    super.start();
    early?.end?.();
  }

  /** Read nothing more, and close the WebSocket (at once if it is not open). */
  close(): void {
    this.stop();
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
    else this.ws.terminate();
  }

  protected onMessage(data: Buffer, isBinary: boolean): void {
    let msg: ChannelMessage | null;
    try {
      msg = decodeMessage(data, isBinary, this.opts.version.base64);
    } catch (err) {
      this.opts.onProtocolError((err as Error).message);
      return;
    }
    if (msg === null || msg.payload.length === 0) return; // the established marker carries nothing (§3.3)
    this.onPayload(msg.channel, msg.payload);
  }

  protected override onPayload(channel: number, payload: Buffer): void {
    const source = channel === CH_STDOUT ? this.stdout : channel === CH_STDERR ? this.stderr : undefined;
    if (source === undefined) {
      if (channel === CH_ERROR) this.status.add(payload);
    } else if (this.early) this.early.output.push([source, payload]);
    else source.deliver(payload);
  }

  protected override onFramingError(why: string): void {
    this.opts.onProtocolError(why);
  }

  /** stdin EOF becomes the v5 CLOSE message; older protocols cannot carry it (§3.3.1). */
  private endStdin(): void {
    const { ws, opts } = this;
    if (ws.readyState !== ws.OPEN) return;
    if (opts.version.wsClose) ws.send(encodeClose(CH_STDIN), { binary: true });
    else opts.log.warn({ upstream: opts.version.name }, `stdin EOF cannot cross ${opts.version.name}`);
  }
}
