/**
 * The server side of exec/attach over a Kubernetes WebSocket (docs/protocols.md §3.3): the legacy
 * v1–v4 and base64 protocols, and v5. It writes the empty "established" message at once, reads
 * stdin and resize from channels 0 and 4 (a v5 CLOSE `[255, ch]` half-closes them; a malformed one
 * is a protocol error that ends the session), and at the end writes the status on channel 3, then
 * Close 1000. Nothing is read until start(). On binary protocols the client's frames are read
 * sliced (ws-channel-io.ts): stdin passes on piece by piece, while a resize or CLOSE message is
 * gathered whole first, up to a bound.
 */
import type { WebSocket } from 'ws';
import {
  CH_CLOSE,
  CH_ERROR,
  CH_RESIZE,
  CH_STDERR,
  CH_STDIN,
  CH_STDOUT,
  type ChannelMessage,
  ChannelProtocolError,
  decodeMessage,
  parseClosePayload,
} from '../channel/codec.js';
import { MessageGather } from '../channel/message-gather.js';
import { sendChannel } from '../channel/send.js';
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import type { ExecStreams } from '../k8s/stream-request.js';
import type { EndpointStreams, Sink } from './flow.js';
import { type SessionStatus, statusBytes } from './status.js';
import { establishedChannel, stderrPromised } from './streams.js';
import { ChannelPeer, ChannelSink, ChannelSource } from './ws-channel-io.js';

const EMPTY = Buffer.alloc(0);
/** A resize message is `{"Width":W,"Height":H}`, a CLOSE one byte: far below this. */
const MAX_WHOLE_MESSAGE = 64 * 1024;

export interface WsEndpointOptions {
  version: RemoteCommandVersion;
  wants: ExecStreams;
  /** x/net drops undecodable base64 messages; a translator ends the session naming the client's error. */
  dropUndecodable: boolean;
  /** The client broke the channel protocol; the WebSocket is already closing with the error's code. */
  onProtocolError(err: ChannelProtocolError): void;
  /** The WebSocket closed; stdin and resize end right after. */
  onClose(code: number, reason: string): void;
}

export class WsEndpoint extends ChannelPeer implements EndpointStreams {
  readonly stdin: ChannelSource | undefined;
  /** The server always has the resize channel (§3.1). */
  readonly resize: ChannelSource;
  readonly stdout: Sink | undefined;
  readonly stderr: Sink | undefined;
  /** The resize or CLOSE message being read sliced. */
  private readonly gathered = new MessageGather(MAX_WHOLE_MESSAGE);

  constructor(
    ws: WebSocket,
    private readonly opts: WsEndpointOptions,
  ) {
    super(ws, !opts.version.base64);
    const { wants, version } = opts;
    this.stdin = wants.stdin ? new ChannelSource(this.gate) : undefined;
    this.resize = new ChannelSource(this.gate);
    this.stdout = wants.stdout ? new ChannelSink(ws, CH_STDOUT, version.base64) : undefined;
    this.stderr = stderrPromised(wants) ? new ChannelSink(ws, CH_STDERR, version.base64) : undefined;
    sendChannel(ws, establishedChannel(wants), EMPTY, version.base64);
    ws.on('close', (code: number, reason: Buffer) => {
      opts.onClose(code, reason.toString());
      this.stdin?.end();
      this.resize.end();
    });
  }

  /** The status on channel 3 (if this version has bytes for it), then Close 1000. */
  finish(end: SessionStatus): void {
    this.stop();
    const bytes = statusBytes(end, this.opts.version);
    if (bytes) sendChannel(this.ws, CH_ERROR, bytes, this.opts.version.base64);
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
  }

  protected onMessage(data: Buffer, isBinary: boolean): void {
    const { version } = this.opts;
    let msg: ChannelMessage | null;
    try {
      // as a server, text frames are taken on binary protocols too, as x/net takes them (§3.3)
      msg = decodeMessage(data, version.base64 ? isBinary : true, version.base64);
    } catch (err) {
      if (!this.opts.dropUndecodable) this.protocolError(err as ChannelProtocolError);
      return;
    }
    if (msg !== null) this.dispatch(msg.channel, msg.payload);
  }

  protected override onPayload(channel: number, payload: Buffer): void {
    if (channel === CH_STDIN) {
      this.stdin?.deliver(payload);
      return;
    }
    if (!this.wantsWhole(channel) || this.gathered.add(payload)) return;
    this.protocolError(
      new ChannelProtocolError(`a channel ${channel} message of over ${MAX_WHOLE_MESSAGE} bytes`, 1009),
    );
  }

  protected override onMessageEnd(channel: number): void {
    if (this.wantsWhole(channel)) this.dispatch(channel, this.gathered.take());
  }

  protected override onFramingError(why: string, closeCode: number): void {
    this.protocolError(new ChannelProtocolError(why, closeCode));
  }

  /** Resize and CLOSE messages are taken whole; stdin is a stream. */
  private wantsWhole(channel: number): boolean {
    return channel === CH_RESIZE || (channel === CH_CLOSE && this.opts.version.wsClose);
  }

  private dispatch(channel: number, payload: Buffer): void {
    if (channel === CH_STDIN) this.stdin?.deliver(payload);
    else if (channel === CH_RESIZE) this.resize.deliver(payload);
    else if (channel === CH_CLOSE && this.opts.version.wsClose) this.onCloseMessage(payload);
    // channels the server only writes, or does not know: dropped (§3.3)
  }

  private onCloseMessage(payload: Buffer): void {
    let channel: number;
    try {
      channel = parseClosePayload(payload);
    } catch (err) {
      this.protocolError(err as ChannelProtocolError);
      return;
    }
    // a repeated CLOSE is a no-op; data after it is dropped (§3.3.2)
    if (channel === CH_STDIN) this.stdin?.end();
    else if (channel === CH_RESIZE) this.resize.end();
  }

  private protocolError(err: ChannelProtocolError): void {
    this.stop();
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(err.closeCode, err.message.slice(0, 120));
    this.opts.onProtocolError(err);
  }
}
