/**
 * Who may use the shim. Every request, streaming upgrades included, passes these checks before
 * anything is proxied:
 * - the Host header must match an allowed host (kubectl proxy's `--accept-hosts`, but each pattern
 *   must match the whole host name, see wholeHost): a page served
 *   from elsewhere that makes its name resolve to 127.0.0.1 (DNS rebinding) still sends its own
 *   name, and is refused;
 * - an Origin header, when there is one, must name an allowed host too: a browser page on another
 *   site can open a WebSocket to 127.0.0.1 with the right Host, but not with the right Origin
 *   (kubectl sends no Origin);
 * - with `--token-file`, a bearer token (Authorization header, or the WebSocket bearer subprotocol
 *   browsers use, docs/protocols.md §1.3) compared in constant time — and then removed from the
 *   request, so that the listener's token never travels upstream;
 * - the path must match `--accept-paths` and no `--reject-paths` (kubectl proxy's flags), matched
 *   against the canonical path (request-target.ts) — the very path that is forwarded, so neither
 *   percent-encoding, dot segments nor repeated slashes can dodge a reject pattern. Unlike kubectl
 *   proxy, nothing is rejected by default: carrying exec and attach is what the shim is for.
 * Refusals are Kubernetes Status answers (403, or 401 for a missing/wrong token), logged once each
 * without any header values.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { splitBearerSubprotocols } from '../upstream/headers.js';
import { isLoopback } from './listen-address.js';

/** kubectl proxy's default `--accept-hosts`; the listen host is added to it. */
export const DEFAULT_ACCEPT_HOSTS = ['^localhost$', '^127\\.0\\.0\\.1$', '^\\[::1\\]$'];
export const DEFAULT_ACCEPT_PATHS = ['^.*'];
/** kubectl proxy rejects exec and attach by default; the shim exists to carry them. */
export const DEFAULT_REJECT_PATHS: string[] = [];

export interface AccessOptions {
  acceptHosts: RegExp[];
  acceptPaths: RegExp[];
  rejectPaths: RegExp[];
  /** Bearer token every client must present (`--token-file`). */
  token?: string;
}

export interface Denial {
  status: 400 | 401 | 403;
  reason: 'BadRequest' | 'Unauthorized' | 'Forbidden';
  message: string;
}

/** A comma-separated list of regular expressions (kubectl proxy's flag format). */
export function parsePatterns(flag: string, value: string): RegExp[] {
  return value
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => {
      try {
        return new RegExp(p);
      } catch (err) {
        throw new Error(`${flag}: '${p}' is not a regular expression: ${(err as Error).message}`);
      }
    });
}

/** The accepted hosts: the given patterns plus the listen host itself (unless it is a wildcard). */
export function acceptedHosts(patterns: RegExp[], listenHost: string): RegExp[] {
  if (listenHost === '0.0.0.0' || listenHost === '::' || listenHost === '') return patterns;
  const name = isIP(listenHost) === 6 ? `[${listenHost}]` : listenHost;
  const own = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'i');
  return patterns.some((p) => p.source === own.source) ? patterns : [...patterns, own];
}

/**
 * The host part of a Host header value: the port dropped, IPv6 literals kept in their brackets
 * (`[::1]:8001` → `[::1]`), lowercased. Undefined when the value is not a host[:port].
 */
export function hostOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s/@]+)(?::(\d{1,5}))?$/.exec(value.trim());
  return m ? m[1]!.toLowerCase() : undefined;
}

/** The host of an Origin header (`https://name:port` → `name`), or undefined when it has none. */
function originHost(origin: string): string | undefined {
  try {
    const host = new URL(origin).host;
    return host ? hostOf(host) : undefined;
  } catch {
    return undefined;
  }
}

/** Compare without leaking where or how long the values differ. */
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * A host pattern that must match the whole host name: kubectl proxy matches its `--accept-hosts`
 * anywhere in the name, so there `shim\.example\.com` also accepts `shim.example.com.evil.net`.
 */
function wholeHost(p: RegExp): RegExp {
  return new RegExp(`^(?:${p.source})$`, p.flags.replace(/[gy]/g, ''));
}

export class AccessControl {
  private readonly hosts: RegExp[];

  constructor(private readonly opts: AccessOptions) {
    this.hosts = opts.acceptHosts.map(wholeHost);
  }

  /**
   * Check a request, given its canonical path (request-target.ts). On success the listener token (if any) has been taken out of it; on failure
   * the answer to give.
   */
  check(req: IncomingMessage, path: string): Denial | undefined {
    const { acceptPaths, rejectPaths } = this.opts;
    const acceptHosts = this.hosts;
    const host = hostOf(req.headers.host);
    if (host === undefined || !acceptHosts.some((p) => p.test(host))) {
      return forbidden(`kubeshim does not serve the host ${JSON.stringify(req.headers.host ?? '')}`);
    }
    const origin = req.headers.origin;
    if (origin !== undefined) {
      const from = originHost(origin);
      if (from === undefined || !acceptHosts.some((p) => p.test(from)))
        return forbidden(`kubeshim does not serve requests from the origin ${JSON.stringify(origin)}`);
    }
    if (this.opts.token !== undefined && !this.takeToken(req, this.opts.token)) {
      return {
        status: 401,
        reason: 'Unauthorized',
        message: 'kubeshim: a valid bearer token is required',
      };
    }
    if (!acceptPaths.some((p) => p.test(path)) || rejectPaths.some((p) => p.test(path)))
      return forbidden(`kubeshim does not serve the path ${JSON.stringify(path)}`);
    return undefined;
  }

  /** True when the request carries the token; it is removed either way it came. */
  private takeToken(req: IncomingMessage, token: string): boolean {
    const auth = req.headers.authorization;
    const presented: string[] = [];
    if (auth !== undefined) {
      delete req.headers.authorization;
      const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
      if (m) presented.push(m[1]!.trim());
    }
    const { tokens, rest } = splitBearerSubprotocols(req.headers['sec-websocket-protocol']);
    if (tokens.length > 0) {
      if (rest.length > 0) req.headers['sec-websocket-protocol'] = rest.join(', ');
      else delete req.headers['sec-websocket-protocol'];
      presented.push(...tokens);
    }
    // every candidate is compared, so the time taken says nothing about which one matched
    return presented.map((p) => sameSecret(p, token)).includes(true);
  }
}

function forbidden(message: string): Denial {
  return { status: 403, reason: 'Forbidden', message };
}

export interface ListenerSecurity {
  host: string;
  tls: boolean;
  clientCa: boolean;
  token: boolean;
  insecureListenAnywhere: boolean;
}

/**
 * A listener off the loopback interface carries the user's cluster credentials to whoever can
 * reach it: it needs TLS and a way to tell clients apart (client certificates or a token), or an
 * explicit `--insecure-listen-anywhere`.
 */
export function checkListenerSecurity(s: ListenerSecurity): void {
  if (isLoopback(s.host) || s.insecureListenAnywhere) return;
  if (s.tls && (s.clientCa || s.token)) return;
  const missing = s.tls
    ? '--client-ca or --token-file'
    : '--tls-cert/--tls-key and --client-ca or --token-file';
  throw new Error(
    `--listen ${s.host} is reachable from other hosts: it needs ${missing} (or --insecure-listen-anywhere)`,
  );
}
