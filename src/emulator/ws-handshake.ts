/**
 * WebSocket handshakes (protocols.md §2.2). The CRI server and the apiserver's StreamTranslator use
 * golang.org/x/net/websocket, whose rules a client meets here too: GET only (405), version 13 only
 * (400 + `Sec-WebSocket-Version: 13`), a key (400), only the first `Sec-WebSocket-Protocol` line,
 * the first offered protocol the server allows (no protocol sent counts as `""`), and a bare 403
 * when none matches. The tunnel uses gorilla, whose checks `ws` makes the same way.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { headerHasToken } from '../k8s/protocols.js';
import { xnetRefusal } from './answer.js';

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return (
    String(req.headers.upgrade ?? '').toLowerCase() === 'websocket' &&
    headerHasToken(req.headers.connection, 'upgrade')
  );
}

/**
 * The subprotocols of the first `Sec-WebSocket-Protocol` line, split on commas and trimmed, as
 * x/net (`Header.Get`) and the apiserver's routing predicates read them. Node joins repeated lines,
 * so the raw headers are read.
 */
export function firstProtocolLine(req: IncomingMessage): string[] {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'sec-websocket-protocol') {
      const line = raw[i + 1]!.trim();
      return line === '' ? [] : line.split(',').map((p) => p.trim());
    }
  }
  return [];
}

/** x/net's request checks; answers and returns false when the request fails them. */
export function xnetAccepts(req: IncomingMessage, socket: Duplex): boolean {
  if (req.method !== 'GET') {
    xnetRefusal(socket, 405, 'bad method');
    return false;
  }
  if (!req.headers['sec-websocket-key']) {
    xnetRefusal(socket, 400, 'mismatch challenge/response');
    return false;
  }
  if (req.headers['sec-websocket-version'] !== '13') {
    xnetRefusal(socket, 400, 'missing or bad WebSocket Version', [['Sec-WebSocket-Version', '13']]);
    return false;
  }
  return true;
}

/** The first offered protocol that `allowed` contains; `""` stands for "none offered". */
export function xnetSelect(offered: readonly string[], allowed: readonly string[]): string | undefined {
  const candidates = offered.length === 0 ? [''] : offered;
  return candidates.find((p) => allowed.includes(p));
}

/** The subprotocol each pending handshake answers with (see acceptWebSocket). */
const chosen = new WeakMap<IncomingMessage, string>();

/**
 * The WebSocket server every handshake goes through: no compression (kubectl offers none),
 * x/net's 32 MiB frame limit, and the subprotocol header written from our own choice.
 */
export function createWebSocketServer(): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 32 * 1024 * 1024, skipUTF8Validation: true });
  wss.on('headers', (headers: string[], req: IncomingMessage) => {
    const protocol = chosen.get(req);
    if (protocol) headers.push(`Sec-WebSocket-Protocol: ${protocol}`);
  });
  return wss;
}

/**
 * Complete the handshake with exactly `protocol` (none when `""`). `ws` would reject the tunnel's
 * `SPDY/3.1+portforward.k8s.io` (not an RFC 6455 token; gorilla and x/net take it), so the request's
 * protocol header is removed before `ws` sees it and the answer's is added from our choice.
 */
export function acceptWebSocket(
  wss: WebSocketServer,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  protocol: string,
): Promise<WebSocket> {
  delete req.headers['sec-websocket-protocol'];
  chosen.set(req, protocol);
  return new Promise((resolve) => wss.handleUpgrade(req, socket, head, resolve));
}
