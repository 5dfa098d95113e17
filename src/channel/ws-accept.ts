/**
 * Accepting WebSocket handshakes with Kubernetes subprotocols. `ws` rejects the tunnel's
 * `SPDY/3.1+portforward.k8s.io` (the `/` makes it no RFC 6455 token; gorilla and x/net take it,
 * docs/protocols.md §4.3), so the request's protocol header is removed before `ws` sees it and the
 * answer's is added from the caller's choice. The WebSocket comes back paused: messages that
 * arrive with the handshake would otherwise be emitted on the next tick, before a caller resumed on
 * a later microtask has attached its listeners.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { checkWsAssumptions } from './ws-internals.js';

/** Whether this process has checked its `ws` yet (ws-internals.ts). */
let wsChecked = false;

/** The subprotocol each pending handshake answers with. */
const chosen = new WeakMap<IncomingMessage, string>();

/**
 * A handshake-only server: no compression (kubectl offers none), x/net's 32 MiB frame limit.
 * `extraHeaders`: header lines added to every 101 it writes. The first one made in a process checks
 * that the installed `ws` still behaves as our frame writers assume (throws WsAssumptionError).
 */
export function createWebSocketServer(extraHeaders: string[] = []): WebSocketServer {
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: 32 * 1024 * 1024,
    skipUTF8Validation: true,
  });
  wss.on('headers', (headers: string[], req: IncomingMessage) => {
    const protocol = chosen.get(req);
    if (protocol) headers.push(`Sec-WebSocket-Protocol: ${protocol}`);
    headers.push(...extraHeaders);
  });
  if (!wsChecked) {
    checkWsAssumptions(wss);
    wsChecked = true;
  }
  return wss;
}

/**
 * Complete the handshake answering exactly `protocol` (none when `""`); resolves with a paused
 * WebSocket, or rejects when the client's connection is gone (`ws` drops such a socket without
 * calling back, which would leave the caller waiting for good).
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
  return new Promise((resolve, reject) => {
    let accepted = false;
    // without a verifyClient, ws answers and calls back synchronously, or not at all
    wss.handleUpgrade(req, socket, head, (ws) => {
      accepted = true;
      ws.pause();
      resolve(ws);
    });
    if (!accepted) {
      socket.destroy();
      reject(new Error('the client left during the WebSocket handshake'));
    }
  });
}
