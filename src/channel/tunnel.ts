/**
 * The port-forward tunnel's byte-stream view of a WebSocket (docs/protocols.md §4.3): the payloads of
 * binary messages, concatenated, read as one byte stream; each write becomes one binary message
 * (written by ws-frame.ts, without the copy ws.send would make).
 * Message boundaries mean nothing. A text message is a protocol violation and ends the stream
 * with an error. Close ends the readable side; ending the writable side closes with 1000.
 * A paused WebSocket is resumed when the stream is first read.
 */
import { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import { ChannelProtocolError } from './codec.js';
import { afterWsFlush } from './ws-flow.js';
import { writeBinaryFrame } from './ws-frame.js';
import { wsIsServerSide, wsSocket } from './ws-internals.js';

export class TunnelStream extends Duplex {
  /** Why the WebSocket closed, once it did. */
  closeCode: number | undefined;
  closeReason = '';

  /** The transport under the WebSocket, and whether we accepted it (frames unmasked). */
  private readonly socket: Duplex;
  private readonly server: boolean;

  constructor(
    readonly ws: WebSocket,
    highWaterMark = 64 * 1024,
  ) {
    super({
      readableHighWaterMark: highWaterMark,
      writableHighWaterMark: highWaterMark,
      allowHalfOpen: false,
    });
    this.socket = wsSocket(ws);
    this.server = wsIsServerSide(ws);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (this.destroyed) return; // after a violation: let the close handshake finish, read nothing
      if (!isBinary) {
        // close first: destroying a stream whose WebSocket is still open terminates it (1006)
        ws.close(1003, 'text message in a binary tunnel');
        this.destroy(new ChannelProtocolError('text message in a port-forward tunnel', 1003));
        return;
      }
      for (const buf of toBuffers(data)) if (!this.push(buf)) ws.pause();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.push(null);
      if (!this.writableEnded) this.end();
    });
    ws.on('error', (err: Error) => this.destroy(err));
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) {
      callback();
      return;
    }
    writeBinaryFrame(this.socket, this.server, -1, chunk);
    afterWsFlush(this.ws, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.terminate();
    callback(err);
  }
}

/** ws hands a message over as a Buffer, an ArrayBuffer or a list of fragments. */
export function toBuffers(data: RawData): Buffer[] {
  if (Buffer.isBuffer(data)) return [data];
  if (Array.isArray(data)) return data;
  return [Buffer.from(data)];
}
