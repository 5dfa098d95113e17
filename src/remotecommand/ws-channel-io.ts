/**
 * Sources and sinks over the channels of a Kubernetes WebSocket (docs/protocols.md §3.3). All
 * channels share one socket: a sink sends unfragmented channel messages (channel/send.ts) and is
 * congested when the socket is; the sources are fed by the session's message handler, and the
 * socket is paused while any of them, or the session itself, holds it.
 */
import type { RawData, WebSocket } from 'ws';
import { ChannelFrameReader } from '../channel/frame-reader.js';
import { sendChannel } from '../channel/send.js';
import { afterWsFlush, wsCongested } from '../channel/ws-flow.js';
import { giveFrame, takeOverReads, wsIsServerSide } from '../channel/ws-internals.js';
import type { Sink, Source } from './flow.js';

const noop = () => {};

/** One channel's outgoing messages; congested when the socket is. */
export class ChannelSink implements Sink {
  constructor(
    private readonly ws: WebSocket,
    private readonly channel: number,
    private readonly base64: boolean,
    private readonly onEnd: () => void = noop,
  ) {}

  write(chunk: Buffer): boolean {
    sendChannel(this.ws, this.channel, chunk, this.base64);
    return !wsCongested(this.ws);
  }

  afterFlush(next: () => void): void {
    afterWsFlush(this.ws, next);
  }

  end(): void {
    this.onEnd();
  }
}

/** Pauses a WebSocket while anyone holds it; once disposed it reads again for good. */
export class PauseGate {
  private held = 0;
  private disposed = false;

  constructor(private readonly ws: WebSocket) {}

  hold(): void {
    if (this.held++ === 0 && !this.disposed) this.ws.pause();
  }

  release(): void {
    if (--this.held === 0 && !this.disposed) this.ws.resume();
  }

  /** The session is over: a paused WebSocket could not complete its close handshake. */
  dispose(): void {
    this.disposed = true;
    this.ws.resume();
  }
}

/** One channel's incoming payloads. */
export class ChannelSource implements Source {
  private data: (chunk: Buffer) => void = noop;
  private onEnd: () => void = noop;
  private ended = false;
  private paused = false;

  constructor(private readonly gate: PauseGate) {}

  read(data: (chunk: Buffer) => void, end: () => void): void {
    this.data = data;
    this.onEnd = end;
  }

  /** A message's payload for this channel; dropped after the channel's end. */
  deliver(payload: Buffer): void {
    if (!this.ended) this.data(payload);
  }

  /** The channel was half-closed (v5 CLOSE) or the WebSocket went away. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.gate.hold();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.gate.release();
  }
}

/**
 * One side of a channel session on a WebSocket, server or client: it reads nothing until start(),
 * once its sources are connected, and nothing after stop().
 *
 * With `sliced` (binary protocols), it reads the frames itself instead of ws's parser
 * (channel/frame-reader.ts, strict): each payload is handed on as slices of the socket's reads,
 * never joined into a copy where a frame straddles two reads, a client's unmasked where it lies;
 * ws still answers the control frames. A server side reads a client's text messages as binary
 * ones, as x/net does (docs/protocols.md §3.3). Where ws's reader cannot be taken over, whole
 * messages come from ws as before.
 */
export abstract class ChannelPeer {
  protected readonly gate: PauseGate;
  private stopped = false;

  constructor(
    protected readonly ws: WebSocket,
    sliced = false,
  ) {
    this.gate = new PauseGate(ws);
    this.gate.hold(); // released by start()
    if (sliced && this.readSliced(ws)) return;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!this.stopped) this.onMessage(data as Buffer, isBinary);
    });
  }

  /** Read the frames in ws's place; false where ws's reader cannot be taken over. */
  private readSliced(ws: WebSocket): boolean {
    const server = wsIsServerSide(ws);
    const reader = new ChannelFrameReader(
      (piece) => {
        if (!this.stopped) this.onPayload(piece.channel, piece.data);
      },
      (why, closeCode) => {
        if (!this.stopped) this.onFramingError(why, closeCode);
      },
      {
        masked: server,
        textAsBinary: server,
        onControl: (frame) => giveFrame(ws, frame),
        onMessageEnd: (channel) => {
          if (!this.stopped) this.onMessageEnd(channel);
        },
      },
    );
    return takeOverReads(ws, (chunk) => reader.write(chunk));
  }

  start(): void {
    this.gate.release();
  }

  /** Read nothing more. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.gate.dispose();
  }

  protected abstract onMessage(data: Buffer, isBinary: boolean): void;

  /** A piece of a channel's payload, read with `sliced`. */
  protected abstract onPayload(channel: number, payload: Buffer): void;

  /** A channel's message is complete (its last piece came, if it had any), read with `sliced`. */
  protected onMessageEnd(_channel: number): void {}

  /** A frame that breaks RFC 6455 or the channel protocol, read with `sliced`; `closeCode` says it. */
  protected abstract onFramingError(why: string, closeCode: number): void;
}
