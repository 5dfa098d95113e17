/**
 * The one reading of a request's target. Every request is parsed here once, before any check or
 * dial; what comes out is the only form the rest of the shim sees, and the path the access rules
 * judge is byte for byte the path sent upstream.
 *
 * Served: origin-form only (`/path?query`). Refused (400): absolute-form (`http://h/x`), `*`,
 * anything starting `//` (a URL parser reads it as a host), backslashes (some parsers read them as
 * `/`), a fragment, control characters or spaces, broken `%`-escapes, and escapes of `/`, `\` or NUL
 * in the path (the API server decodes the path before routing, so `%2F` would be a hidden `/`).
 *
 * Normalised, in this order, once:
 * 1. `%`-escapes of unreserved characters (letters, digits, `-._~`) are decoded (`%65xec` → `exec`);
 *    every other escape is kept, its hex digits uppercased (`%3a` → `%3A`);
 * 2. runs of `/` become one `/`;
 * 3. `.` and `..` segments are resolved (`..` never climbs above `/`);
 * 4. characters a URL may not carry bare (`"<>[]^`{|}` in the path, `"'<>` in the query) are
 *    %-escaped, so that no URL parser downstream re-encodes what was judged.
 * Otherwise the query is kept exactly as sent.
 *
 * The listener parses each request here (server/request-target.ts keeps the result); the upstream
 * URL builder parses the paths the shim makes itself (probes, readiness) the same way.
 */

/** A request target in its canonical form; only parseRequestTarget makes one. */
export interface RequestTarget {
  /** The normalised path, starting with a single `/`. */
  readonly path: string;
  /** The query without its `?`, as sent ('' when none). */
  readonly query: string;
  readonly __canonical: true;
}

export type ParsedTarget = { ok: true; target: RequestTarget } | { ok: false; reason: string };

const UNRESERVED = /[A-Za-z0-9\-._~]/;
/** Printable characters that are not allowed unescaped in a URL's path, and in its query. */
const PATH_BARE = /["<>[\]^`{|}]/;
const QUERY_BARE = /["'<>]/;
/** Escapes that would change how the path splits into segments, or end it early. */
const FORBIDDEN_ESCAPES = new Set(['2F', '5C', '00']);

export function parseRequestTarget(raw: string | undefined): ParsedTarget {
  const refuse = (reason: string): ParsedTarget => ({ ok: false, reason });
  if (raw === undefined || raw === '') return refuse('empty request target');
  if (!raw.startsWith('/')) return refuse('only origin-form request targets (/path) are served');
  if (raw.startsWith('//')) return refuse('a request target may not start with //');
  for (let i = 0; i < raw.length; i++) {
    // control characters, space, DEL and anything outside ASCII are never valid in a target
    const code = raw.charCodeAt(i);
    if (code <= 0x20 || code >= 0x7f) return refuse('control characters or spaces in the request target');
  }
  if (raw.includes('\\')) return refuse('backslashes in the request target');
  if (raw.includes('#')) return refuse('a fragment in the request target');
  const q = raw.indexOf('?');
  const rawPath = q < 0 ? raw : raw.slice(0, q);
  const query = escapeAll(q < 0 ? '' : raw.slice(q + 1), QUERY_BARE);
  if (/%(?![0-9A-Fa-f]{2})/.test(query)) return refuse('a broken %-escape in the query');

  let decoded = '';
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath[i]!;
    if (c !== '%') {
      decoded += PATH_BARE.test(c) ? percent(c) : c;
      continue;
    }
    const hex = rawPath.slice(i + 1, i + 3).toUpperCase();
    if (!/^[0-9A-F]{2}$/.test(hex)) return refuse('a broken %-escape in the path');
    if (FORBIDDEN_ESCAPES.has(hex)) return refuse(`%${hex} in the path (an escaped /, \\ or NUL)`);
    const ch = String.fromCharCode(Number.parseInt(hex, 16));
    decoded += UNRESERVED.test(ch) ? ch : `%${hex}`;
    i += 2;
  }
  return {
    ok: true,
    target: { path: removeDotSegments(decoded.replace(/\/{2,}/g, '/')), query, __canonical: true },
  };
}

function percent(c: string): string {
  return `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
}

function escapeAll(s: string, bare: RegExp): string {
  let out = '';
  for (const c of s) out += bare.test(c) ? percent(c) : c;
  return out;
}

/** `.` and `..` segments resolved; a trailing slash is kept where the input had one. */
function removeDotSegments(path: string): string {
  const segments = path.split('/').slice(1);
  const out: string[] = [];
  segments.forEach((s, i) => {
    const last = i === segments.length - 1;
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      if (last) out.push('');
      return;
    }
    out.push(s);
  });
  return `/${out.join('/')}`;
}

/** Path and query as one string, the way a request line carries them. */
export function pathAndQuery(t: RequestTarget): string {
  return t.query === '' ? t.path : `${t.path}?${t.query}`;
}
