/**
 * The raw HTTP/1.1 answers the shim writes on a client's socket during an upgrade: 101 heads,
 * refusals (the upstream's replayed, or made up by the shim), and the answers for requests the
 * HTTP parser or the WebSocket handshake would refuse. Every head carries our Via line (via.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { SPDY_REMOTECOMMAND_SERVER } from '../k8s/protocols.js';
import { noCommonProtocol, spdyUpgradeResponse } from '../remotecommand/spdy-handshake.js';
import { type Refusal, syntheticRefusal } from '../upstream/dial.js';
import { VIA_LINE } from './via.js';

/** A response head from a status line and raw header pairs, our Via last. */
export function responseHead(status: number, message: string, rawHeaders: string[]): string {
  let head = `HTTP/1.1 ${status} ${message}\r\n`;
  for (let i = 0; i < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return `${head}${VIA_LINE}\r\n`;
}

/** The 101 that accepts a SPDY client's upgrade with `protocol` (§2.1), with our Via line. */
export function spdyUpgradeAnswer(protocol: string): string {
  return spdyUpgradeResponse(protocol, VIA_LINE);
}

/** Replay a refusal on the raw client socket, then close it (what the apiserver's relay does, §5.3). */
export function replyRefusal(socket: Duplex, refusal: Refusal): void {
  if (socket.destroyed) return;
  const skip = new Set(['connection', 'transfer-encoding', 'content-length', 'keep-alive', 'upgrade']);
  const raw: string[] = [];
  for (let i = 0; i < refusal.rawHeaders.length; i += 2) {
    if (!skip.has(refusal.rawHeaders[i]!.toLowerCase()))
      raw.push(refusal.rawHeaders[i]!, refusal.rawHeaders[i + 1]!);
  }
  raw.push('Content-Length', String(refusal.body.length), 'Connection', 'close');
  socket.end(
    Buffer.concat([Buffer.from(responseHead(refusal.statusCode, refusal.statusMessage, raw)), refusal.body]),
  );
}

/** What x/net answers when no subprotocol matches: 403, empty body (§2.2). */
export function refusalNoProtocol(): Refusal {
  return { statusCode: 403, statusMessage: 'Forbidden', rawHeaders: [], body: Buffer.alloc(0) };
}

/** What the CRI answers when no SPDY protocol matches (§2.1), as a refusal to replay. */
export function refusalNoSpdyProtocol(offered: string[]): Refusal {
  const { message, headers } = noCommonProtocol(offered, SPDY_REMOTECOMMAND_SERVER);
  const rawHeaders = ['Content-Type', 'text/plain; charset=utf-8', ...headers.flat()];
  return { statusCode: 403, statusMessage: 'Forbidden', rawHeaders, body: Buffer.from(message) };
}

/** ws would answer these itself with a 400 and no callback; we check first so nothing dangles. */
export function malformedWebSocketRequest(req: IncomingMessage): Refusal | undefined {
  const refuse = (why: string) => syntheticRefusal(400, why, 'BadRequest');
  if (req.method !== 'GET') return refuse('WebSocket upgrades must use GET');
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key))
    return refuse('missing or invalid Sec-WebSocket-Key');
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return refuse('unsupported Sec-WebSocket-Version');
  return undefined;
}

/** The answer to a request the HTTP parser refused: a Status body, then the connection closes. */
export function malformedRequestAnswer(
  status: number,
  statusMessage: string | undefined,
  body: Buffer,
): string {
  return `HTTP/1.1 ${status} ${statusMessage}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n${VIA_LINE}Connection: close\r\n\r\n${body}`;
}
