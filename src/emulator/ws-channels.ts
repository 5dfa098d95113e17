/**
 * Node stream views of single channels of a Kubernetes WebSocket (docs/protocols.md §3.3): a writer that
 * sends each chunk as unfragmented channel messages and waits for the socket to drain, and a
 * reader fed by the session's message handler that pauses the WebSocket when it is full.
 */
import { Readable, Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import { sendChannel } from '../channel/send.js';
import { afterWsFlush } from '../channel/ws-flow.js';

const HIGH_WATER_MARK = 64 * 1024;

export class ChannelWriter extends Writable {
  constructor(
    private readonly ws: WebSocket,
    private readonly channel: number,
    private readonly base64: boolean,
  ) {
    super({ highWaterMark: HIGH_WATER_MARK });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    // a zero-length write is a flush barrier, not data: an empty message would be a second
    // "established" marker
    if (chunk.length > 0) sendChannel(this.ws, this.channel, chunk, this.base64);
    afterWsFlush(this.ws, callback);
  }
}

export class ChannelReader extends Readable {
  private halfClosed = false;

  constructor(private readonly ws: WebSocket) {
    super({ highWaterMark: HIGH_WATER_MARK });
  }

  /** A message's payload for this channel. */
  feed(payload: Buffer): void {
    if (this.halfClosed || this.destroyed) return;
    if (!this.push(payload)) this.ws.pause();
  }

  /** The channel was half-closed (v5 CLOSE) or the WebSocket went away. */
  finish(): void {
    if (this.halfClosed) return;
    this.halfClosed = true;
    this.push(null);
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }
}
