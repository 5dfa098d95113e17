/**
 * Request classification: which streaming subresource an upgrade is for, and which protocol the
 * client speaks (Upgrade header, subprotocols, X-Stream-Protocol-Version; docs/protocols.md §1.1, §2).
 * What comes out is a k8s/stream-request.ts StreamRequest.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestTarget } from '../k8s/canonical-target.js';
import {
  BEARER_SUBPROTOCOL,
  HEADER_STREAM_PROTOCOL,
  headerHasToken,
  splitProtocolHeader,
} from '../k8s/protocols.js';
import type { ClientProtocol, StreamRequest, Subresource } from '../k8s/stream-request.js';

const STREAM_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|attach|portforward)\/?$/;

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return (
    headerHasToken(req.headers.upgrade, 'websocket') && headerHasToken(req.headers.connection, 'upgrade')
  );
}

export function isSpdyUpgrade(req: IncomingMessage): boolean {
  return headerHasToken(req.headers.upgrade, 'spdy/3.1');
}

/** A streaming request we translate, or undefined for any other upgrade (relayed as it is). */
export function classifyUpgrade(req: IncomingMessage, target: RequestTarget): StreamRequest | undefined {
  const m = STREAM_PATH.exec(target.path);
  if (!m) return undefined;
  let client: ClientProtocol;
  if (isWebSocketUpgrade(req)) {
    const all = splitProtocolHeader(req.headers['sec-websocket-protocol']);
    const bearer = all.find((p) => p.startsWith(BEARER_SUBPROTOCOL));
    client = { kind: 'websocket', offered: all.filter((p) => !p.startsWith(BEARER_SUBPROTOCOL)) };
    if (bearer)
      client.bearerToken = Buffer.from(bearer.slice(BEARER_SUBPROTOCOL.length), 'base64url').toString('utf8');
  } else if (isSpdyUpgrade(req)) {
    client = { kind: 'spdy', offered: splitProtocolHeader(req.headers[HEADER_STREAM_PROTOCOL]) };
  } else {
    return undefined;
  }
  const namespace = decodeSegment(m[1]!);
  const pod = decodeSegment(m[2]!);
  if (namespace === undefined || pod === undefined) return undefined; // malformed %-escapes: not ours to read
  return {
    subresource: m[3] as Subresource,
    namespace,
    pod,
    target,
    query: new URLSearchParams(target.query),
    client,
  };
}

function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
