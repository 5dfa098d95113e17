/**
 * Minimal exec clients built on our codecs, for tests: a WebSocket channel client and a SPDY client.
 * They record what arrives per channel/stream and how the session ended.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { decodeMessage, encodeClose, encodeMessage } from '../../src/channel/codec.js';
import { SpdySession, type SpdyStream } from '../../src/spdy/session.js';

export interface WsExecResult {
  channels: Map<number, Buffer[]>;
  closeCode: number;
  protocol: string;
}

export interface WsExecClient {
  ws: WebSocket;
  send(channel: number, data: Buffer | string): void;
  closeStdin(): void;
  /** Text of everything received on a channel so far. */
  text(channel: number): string;
  done: Promise<WsExecResult>;
}

export function connectWsExec(url: string, protocols: string[], base64 = false): Promise<WsExecClient> {
  const ws = new WebSocket(url, protocols, { perMessageDeflate: false });
  const channels = new Map<number, Buffer[]>();
  const done = new Promise<WsExecResult>((resolve) => {
    ws.on('close', (code) => resolve({ channels, closeCode: code, protocol: ws.protocol }));
  });
  ws.on('message', (data: Buffer, isBinary) => {
    const msg = decodeMessage(data, isBinary, base64);
    if (!msg) return;
    const list = channels.get(msg.channel) ?? [];
    list.push(Buffer.from(msg.payload));
    channels.set(msg.channel, list);
  });
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake refused: ${res.statusCode}`)));
    ws.once('open', () =>
      resolve({
        ws,
        send: (channel, data) =>
          ws.send(encodeMessage(channel, Buffer.from(data), base64), { binary: !base64 }),
        closeStdin: () => ws.send(encodeClose(0)),
        text: (channel) => Buffer.concat(channels.get(channel) ?? []).toString(),
        done,
      }),
    );
  });
}

export interface SpdyExecClient {
  session: SpdySession;
  socket: Duplex;
  protocol: string;
  streams: Map<string, SpdyStream>;
  /** Everything read from a stream until it ended. */
  read(type: string): Promise<Buffer>;
}

/** Upgrade to SPDY offering `protocols`, then open streams in client-go's order (§3.2). */
export function connectSpdyExec(url: string, protocols: string[], types: string[]): Promise<SpdyExecClient> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      headers: { connection: 'Upgrade', upgrade: 'SPDY/3.1', 'x-stream-protocol-version': protocols },
    });
    req.once('response', (res) => reject(new Error(`handshake refused: ${res.statusCode}`)));
    req.once('error', reject);
    req.once('upgrade', async (res, socket, head) => {
      const session = new SpdySession(socket, { role: 'client', head });
      const streams = new Map<string, SpdyStream>();
      const reads = new Map<string, Promise<Buffer>>();
      try {
        for (const type of types) {
          const s = await session.openStream({ streamtype: type });
          streams.set(type, s);
          const chunks: Buffer[] = [];
          s.on('data', (c: Buffer) => chunks.push(c));
          reads.set(type, new Promise((r) => s.once('end', () => r(Buffer.concat(chunks)))));
        }
      } catch (err) {
        reject(err);
        return;
      }
      resolve({
        session,
        socket,
        protocol: String(res.headers['x-stream-protocol-version'] ?? ''),
        streams,
        read: (type) => reads.get(type) ?? Promise.resolve(Buffer.alloc(0)),
      });
    });
    req.end();
  });
}
