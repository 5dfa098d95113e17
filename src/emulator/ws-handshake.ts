/**
 * WebSocket handshakes (docs/protocols.md §2.2). The CRI server and the apiserver's StreamTranslator use
 * golang.org/x/net/websocket, whose rules a client meets here too: GET only (405), version 13 only
 * (400 + `Sec-WebSocket-Version: 13`), a key (400), only the first `Sec-WebSocket-Protocol` line,
 * the first offered protocol the server allows (no protocol sent counts as `""`), and a bare 403
 * when none matches. The tunnel uses gorilla, whose checks `ws` makes the same way. Accepting
 * itself is shared with the shim (src/channel/ws-accept.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { headerHasToken } from '../k8s/protocols.js';
import { xnetRefusal } from './answer.js';

/**
 * x/net's rule: `Upgrade` is `websocket` itself, case aside (a list such as `h2c, websocket` is not),
 * and `Connection` names `upgrade`. The shim's classifier accepts `websocket` anywhere in the list.
 */
export function isExactWebSocketUpgrade(req: IncomingMessage): boolean {
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

export { acceptWebSocket, createWebSocketServer } from '../channel/ws-accept.js';
