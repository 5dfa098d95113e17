/** The API paths the emulator knows, parsed once for plain requests and upgrades alike. */

export type PodSubresource = 'exec' | 'attach' | 'portforward' | 'log';

export type Route =
  | { kind: 'version' }
  | { kind: 'health' }
  | { kind: 'api' }
  | { kind: 'apiV1' }
  | { kind: 'apis' }
  | { kind: 'openapi' }
  | { kind: 'namespaces' }
  | { kind: 'namespace'; name: string }
  /** `namespace` undefined: pods of all namespaces. */
  | { kind: 'pods'; namespace: string | undefined }
  | { kind: 'pod'; namespace: string; name: string }
  | { kind: 'podSubresource'; namespace: string; name: string; subresource: PodSubresource }
  | { kind: 'unknown' };

const SUBRESOURCES: readonly string[] = ['exec', 'attach', 'portforward', 'log'];

export function parseRoute(pathname: string): Route {
  const path = pathname.replace(/\/+$/, '');
  switch (path) {
    case '/version':
      return { kind: 'version' };
    case '/healthz':
    case '/livez':
    case '/readyz':
      return { kind: 'health' };
    case '/api':
      return { kind: 'api' };
    case '/api/v1':
      return { kind: 'apiV1' };
    case '/apis':
      return { kind: 'apis' };
    case '/api/v1/namespaces':
      return { kind: 'namespaces' };
    case '/api/v1/pods':
      return { kind: 'pods', namespace: undefined };
  }
  if (path === '/openapi' || path.startsWith('/openapi/')) return { kind: 'openapi' };
  let parts: string[];
  try {
    parts = path.split('/').slice(1).map(decodeURIComponent);
  } catch {
    return { kind: 'unknown' };
  }
  if (parts[0] !== 'api' || parts[1] !== 'v1' || parts[2] !== 'namespaces' || !parts[3])
    return { kind: 'unknown' };
  const namespace = parts[3];
  if (parts.length === 4) return { kind: 'namespace', name: namespace };
  if (parts[4] !== 'pods') return { kind: 'unknown' };
  if (parts.length === 5) return { kind: 'pods', namespace };
  const name = parts[5];
  if (!name) return { kind: 'unknown' };
  if (parts.length === 6) return { kind: 'pod', namespace, name };
  const sub = parts[6]!;
  if (parts.length === 7 && SUBRESOURCES.includes(sub))
    return { kind: 'podSubresource', namespace, name, subresource: sub as PodSubresource };
  return { kind: 'unknown' };
}
