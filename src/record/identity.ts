/**
 * Whom a request belongs to, as well as the shim can know it, in this order:
 * - what the listener itself authenticated: the client certificate's subject (mTLS), or the name
 *   of the listener token (`--token-file`);
 * - else the claims of the client's bearer token when it is a JWT (ServiceAccount and OIDC tokens
 *   are): decoded, NOT verified — the upstream verifies it — and so labelled `claimed`;
 * - else the client's address.
 * Never the token itself: only a few naming claims are kept.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { splitProtocolHeader } from '../k8s/protocols.js';

export type Identity =
  | { via: 'client-certificate'; subject: string; address: string }
  | { via: 'listener-token'; name: string; address: string }
  | { via: 'bearer-claims'; claimed: Record<string, string>; address: string }
  | { via: 'address'; address: string };

export interface ListenerAuth {
  /** The listener token's name, when the listener requires one (every request past it presented it). */
  tokenName?: string;
}

const BEARER_SUBPROTOCOL = 'base64url.bearer.authorization.k8s.io.';
/** Claims that name someone; everything else in a token stays out of logs. */
const NAMING_CLAIMS = ['iss', 'sub', 'email', 'preferred_username', 'name'] as const;
const MAX_CLAIM = 256;

/**
 * Call before the request's credentials are taken out for the upstream (the listener token is
 * already gone by then: its presence is what `auth.tokenName` stands for).
 */
export function identify(req: IncomingMessage, auth: ListenerAuth): Identity {
  const address = req.socket.remoteAddress ?? '';
  const subject = certificateSubject(req.socket as TLSSocket);
  if (subject !== undefined) return { via: 'client-certificate', subject, address };
  if (auth.tokenName !== undefined) return { via: 'listener-token', name: auth.tokenName, address };
  const claimed = jwtClaims(bearerToken(req));
  if (claimed !== undefined) return { via: 'bearer-claims', claimed, address };
  return { via: 'address', address };
}

/** True when `v` (read back from a recording's header) has the shape of an Identity. */
export function isIdentity(v: unknown): v is Identity {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  const str = (k: string) => typeof o[k] === 'string';
  switch (o['via']) {
    case 'client-certificate':
      return str('subject');
    case 'listener-token':
      return str('name');
    case 'bearer-claims':
      return (
        typeof o['claimed'] === 'object' &&
        o['claimed'] !== null &&
        Object.values(o['claimed']).every((c) => typeof c === 'string')
      );
    case 'address':
      return str('address');
    default:
      return false;
  }
}

/** One line for people: `cert:CN=alice`, `token:ops`, `claimed:system:serviceaccount:ns:sa`, `127.0.0.1`. */
export function describeIdentity(id: Identity): string {
  switch (id.via) {
    case 'client-certificate':
      return `cert:${id.subject}`;
    case 'listener-token':
      return `token:${id.name}`;
    case 'bearer-claims':
      return `claimed:${id.claimed['sub'] ?? id.claimed['email'] ?? id.claimed['iss'] ?? '?'}`;
    case 'address':
      return id.address;
  }
}

function certificateSubject(socket: TLSSocket): string | undefined {
  if (!socket.encrypted || !socket.authorized) return undefined;
  const subject = socket.getPeerCertificate()?.subject as Record<string, string | string[]> | undefined;
  if (!subject || Object.keys(subject).length === 0) return undefined;
  return Object.entries(subject)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
    .join(',');
}

function bearerToken(req: IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)/i.exec(req.headers.authorization ?? '');
  if (m) return m[1];
  const sub = splitProtocolHeader(req.headers['sec-websocket-protocol']).find((p) =>
    p.startsWith(BEARER_SUBPROTOCOL),
  );
  return sub && Buffer.from(sub.slice(BEARER_SUBPROTOCOL.length), 'base64url').toString('utf8');
}

/** The naming claims of a JWT's payload (unverified), or undefined when it is not one. */
export function jwtClaims(token: string | undefined): Record<string, string> | undefined {
  const parts = token?.split('.');
  if (parts?.length !== 3 || parts[1]!.length > 16 * 1024) return undefined;
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof payload !== 'object' || payload === null) return undefined;
  const claims: Record<string, string> = {};
  for (const name of NAMING_CLAIMS) {
    const v = payload[name];
    if (typeof v === 'string') claims[name] = v.slice(0, MAX_CLAIM);
  }
  // a ServiceAccount token names its account under kubernetes.io
  const k8s = payload['kubernetes.io'] as
    | { namespace?: unknown; serviceaccount?: { name?: unknown } }
    | undefined;
  if (typeof k8s?.namespace === 'string') claims['namespace'] = k8s.namespace.slice(0, MAX_CLAIM);
  if (typeof k8s?.serviceaccount?.name === 'string')
    claims['serviceaccount'] = k8s.serviceaccount.name.slice(0, MAX_CLAIM);
  return Object.keys(claims).length > 0 ? claims : undefined;
}
