/**
 * Which client headers and credentials travel upstream. The client's identity (Authorization,
 * impersonation, User-Agent) passes on, unless the shim injects its own credentials: then the
 * client's Authorization and impersonation headers are dropped and the target's go on instead
 * (docs/protocols.md §8.4). The listener's own token is taken out earlier (server/access.ts).
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { BEARER_SUBPROTOCOL, splitProtocolHeader } from '../k8s/protocols.js';
import type { Logger } from '../observe/logger.js';
import { type AuthHeaders, CREDENTIALS_UNAVAILABLE } from './credentials.js';
import type { CredentialedUpstream } from './target.js';

/** Headers that describe one hop, not the request (RFC 9110 §7.6.1), plus ones we set ourselves. */
const HOP_BY_HOP = new Set([
  'host',
  'keep-alive',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'content-length',
]);

/**
 * Headers no client may send on through the shim, on any path: a credential for a proxy in front
 * of the shim (Proxy-Authorization), and the headers an API server takes as an authenticating front
 * proxy's word for who the user is (requestheader authentication: X-Remote-User, X-Remote-Group,
 * X-Remote-Extra-*), which it believes when the connection carries the proxy's client certificate —
 * as the shim's own may be.
 */
function isForOneHopOnly(name: string): boolean {
  return name === 'proxy-authorization' || name === 'proxy-connection' || name.startsWith('x-remote-');
}

/** Take out the headers no client may send on (isForOneHopOnly): for requests proxied as they came. */
export function dropOneHopHeaders(headers: IncomingHttpHeaders): void {
  for (const name of Object.keys(headers)) if (isForOneHopOnly(name)) delete headers[name];
}

/** Identity headers a translated request carries (the rest of the request is rebuilt). */
function isIdentityHeader(name: string): boolean {
  return name === 'authorization' || name === 'user-agent' || name.startsWith('impersonate-');
}

/**
 * A Sec-WebSocket-Protocol value split into the bearer tokens browsers carry in it (decoded, §1.3)
 * and the other subprotocols.
 */
export function splitBearerSubprotocols(value: string | string[] | undefined): {
  tokens: string[];
  rest: string[];
} {
  const tokens: string[] = [];
  const rest: string[] = [];
  for (const p of splitProtocolHeader(value)) {
    if (p.startsWith(BEARER_SUBPROTOCOL))
      tokens.push(Buffer.from(p.slice(BEARER_SUBPROTOCOL.length), 'base64url').toString('utf8'));
    else rest.push(p);
  }
  return { tokens, rest };
}

/**
 * When the shim lends its own identity, the client's Authorization, its bearer-token WebSocket
 * subprotocol and every Impersonate-* header go: a client must not choose whom the shim's
 * credentials act as, nor send its own identity beside them.
 */
export function dropClientIdentity(headers: IncomingHttpHeaders | OutgoingHttpHeaders): void {
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'authorization' || lower.startsWith('impersonate-')) delete headers[name];
    else if (lower === 'sec-websocket-protocol') {
      const kept = splitBearerSubprotocols(headers[name] as string | string[] | undefined).rest;
      if (kept.length > 0) headers[name] = kept.join(', ');
      else delete headers[name];
    }
  }
}

export interface CredentialPolicy {
  /** The shim supplies credentials: drop the client's Authorization. */
  injectsCredentials: boolean;
  /** Headers of the shim's own credentials (may be empty). */
  auth: AuthHeaders;
}

/**
 * The credentials for one upstream request. A failure is logged here with its cause and thrown as
 * CREDENTIALS_UNAVAILABLE: the client learns what failed, never what a plugin printed.
 */
export async function credentialPolicy(target: CredentialedUpstream, log: Logger): Promise<CredentialPolicy> {
  let auth: AuthHeaders;
  try {
    auth = await target.authHeaders();
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not get upstream credentials');
    throw new Error(CREDENTIALS_UNAVAILABLE);
  }
  return { injectsCredentials: target.injectsCredentials, auth };
}

/** A 401 to the shim's own credentials drops the cached ones, as client-go does (the next request fetches fresh ones). */
export function noteUpstreamStatus(target: CredentialedUpstream, statusCode: number | undefined): void {
  if (statusCode === 401 && target.injectsCredentials) target.invalidateCredentials?.();
}

function forwardedFor(req: IncomingMessage): string {
  const prior = req.headers['x-forwarded-for'];
  const addr = req.socket.remoteAddress ?? '';
  return prior ? `${prior}, ${addr}` : addr;
}

function withCredentials(headers: OutgoingHttpHeaders, policy: CredentialPolicy): OutgoingHttpHeaders {
  if (policy.injectsCredentials) dropClientIdentity(headers);
  for (const [k, v] of Object.entries(policy.auth)) headers[k.toLowerCase()] = v;
  return headers;
}

/**
 * For a request rebuilt in another protocol: identity headers only, plus X-Forwarded-For. A
 * browser's bearer subprotocol (`bearerToken`) becomes Authorization, unless the shim lends its own
 * identity (§1.3).
 */
export function translatedHeaders(
  req: IncomingMessage,
  policy: CredentialPolicy,
  bearerToken?: string,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers as IncomingHttpHeaders)) {
    if (value !== undefined && isIdentityHeader(name)) out[name] = value;
  }
  out['x-forwarded-for'] = forwardedFor(req);
  const headers = withCredentials(out, policy);
  if (bearerToken && !policy.injectsCredentials) headers['authorization'] = `Bearer ${bearerToken}`;
  return headers;
}

/** For a request relayed as it came (pass-through upgrades): everything but hop-by-hop headers. */
export function relayedHeaders(req: IncomingMessage, policy: CredentialPolicy): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers as IncomingHttpHeaders)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !isForOneHopOnly(name)) out[name] = value;
  }
  out['x-forwarded-for'] = forwardedFor(req);
  return withCredentials(out, policy);
}
