/**
 * Request classification: which streaming subresource an upgrade is for, and which protocol the
 * client speaks (Upgrade header, subprotocols, X-Stream-Protocol-Version; docs/protocols.md §1.1, §2).
 */
import type { IncomingMessage } from 'node:http';
import {
  BEARER_SUBPROTOCOL,
  HEADER_STREAM_PROTOCOL,
  headerHasToken,
  splitProtocolHeader,
} from '../k8s/protocols.js';
import type { RequestTarget } from './request-target.js';

export type Subresource = 'exec' | 'attach' | 'portforward';

export type ClientProtocol =
  | { kind: 'spdy'; offered: string[] }
  /** `bearerToken`: from a `base64url.bearer.authorization.k8s.io.` subprotocol (browsers, §1.3). */
  | { kind: 'websocket'; offered: string[]; bearerToken?: string };

export interface StreamRequest {
  subresource: Subresource;
  namespace: string;
  pod: string;
  /** The request's canonical target (request-target.ts). */
  target: RequestTarget;
  query: URLSearchParams;
  client: ClientProtocol;
}

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

/** Which streams an exec/attach session has, from its query (§1.1; the CRI counts from the query too). */
export interface ExecStreams {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** Go's strconv.ParseBool truths, which is how the apiserver reads these parameters. */
function queryBool(q: URLSearchParams, name: string): boolean {
  return ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(q.get(name) ?? '');
}

export function execStreams(q: URLSearchParams): ExecStreams {
  const tty = queryBool(q, 'tty');
  return {
    stdin: queryBool(q, 'stdin'),
    stdout: queryBool(q, 'stdout'),
    // with a TTY stderr is merged into stdout and never gets a stream (§3.1)
    stderr: queryBool(q, 'stderr') && !tty,
    tty,
  };
}
