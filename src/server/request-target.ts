/**
 * The canonical target of each request the listener accepted (parsed once by
 * k8s/canonical-target.ts): set once, read by every way out, so that what the access rules judged
 * is what goes upstream.
 */
import { pathAndQuery, type RequestTarget } from '../k8s/canonical-target.js';

const targets = new WeakMap<object, RequestTarget>();

export function setRequestTarget(req: { url?: string }, t: RequestTarget): void {
  targets.set(req, t);
  req.url = pathAndQuery(t);
}

export function requestTarget(req: object): RequestTarget {
  const t = targets.get(req);
  if (t === undefined) throw new Error('request target read before it was parsed');
  return t;
}
