/**
 * The one place an upstream URL is made: plain requests, streaming and other upgrades, readiness
 * and doctor probes all go through it. It takes a canonical request target (k8s/canonical-target.ts) and
 * can only produce a URL on the configured upstream's origin, under its path prefix
 * (`--upstream https://h/prefix` → `https://h/prefix/api/...`); a string is parsed canonically
 * first and refused the same way the listener refuses it.
 */
import { parseRequestTarget, type RequestTarget } from '../k8s/canonical-target.js';

export function upstreamUrl(base: URL, target: RequestTarget | string, websocket = false): URL {
  const t = typeof target === 'string' ? canonical(target) : target;
  const url = new URL(base.origin);
  url.pathname = base.pathname.replace(/\/+$/, '') + t.path;
  url.search = t.query === '' ? '' : `?${t.query}`;
  if (url.origin !== base.origin) throw new Error('upstream URL left the upstream origin');
  if (websocket) url.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
  return url;
}

function canonical(raw: string): RequestTarget {
  const parsed = parseRequestTarget(raw);
  if (!parsed.ok) throw new Error(`not a request path: ${parsed.reason}`);
  return parsed.target;
}
