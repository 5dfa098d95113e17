/**
 * Hostile input for everything that reads a request before a session exists: classifyUpgrade,
 * the protocol headers (split, tokens, negotiation), `--listen`, the access checks (Host, Origin,
 * token, paths) and the flag parsers. Random and mutated values (from the recorded kubectl
 * requests) give a value or a clean refusal, never a throw out of the request path.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseRequestTarget } from '../../src/k8s/canonical-target.js';
import { headerHasToken, negotiate, splitProtocolHeader } from '../../src/k8s/protocols.js';
import { execStreams } from '../../src/k8s/stream-request.js';
import {
  AccessControl,
  acceptedHosts,
  checkListenerSecurity,
  DEFAULT_ACCEPT_HOSTS,
  hostOf,
  parsePatterns,
} from '../../src/server/access.js';
import { classifyUpgrade } from '../../src/server/classify.js';
import { formatDuration, parseCount, parseDuration } from '../../src/server/limits.js';
import { parseListen } from '../../src/server/listen-address.js';
import { mutated } from '../fixtures/mutate.js';
import { recordedSessions } from '../fixtures/sessions.js';

/** A request as Node parses it from a head: method, url and lowercased headers (repeats as arrays). */
function parseHead(head: string): IncomingMessage | undefined {
  const lines = head.split('\r\n');
  const m = /^(\S+) (\S+) HTTP\/1\.1$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers: Record<string, string | string[]> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    const prior = headers[name];
    // Node joins repeats of most headers with ", " and keeps a few as arrays; both shapes occur
    headers[name] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [prior, value];
  }
  return { method: m[1], url: m[2], headers, socket: {} } as unknown as IncomingMessage;
}

const anyHeaderValue = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 80 }),
  fc.array(fc.string({ maxLength: 40 }), { maxLength: 4 }),
);

/** Classify as the listener does: only a target that parses canonically gets that far. */
function classify(req: IncomingMessage) {
  const parsed = parseRequestTarget(req.url);
  return parsed.ok ? classifyUpgrade(req, parsed.target) : undefined;
}

function fakeRequest(url: string, headers: Record<string, string | string[] | undefined>) {
  return { method: 'GET', url, headers, socket: {} } as unknown as IncomingMessage;
}

test('classifyUpgrade: random paths and headers give a stream request or undefined, never a throw', () => {
  const path = fc.oneof(
    fc.string({ maxLength: 120 }),
    fc
      .tuple(
        fc.stringMatching(/^[%a-z0-9.-]{0,12}$/),
        fc.stringMatching(/^[%a-zA-Z0-9._~-]{0,12}$/),
        fc.constantFrom('exec', 'attach', 'portforward', 'exec/', 'log'),
        fc.string({ maxLength: 60 }),
      )
      .map(([ns, pod, sub, q]) => `/api/v1/namespaces/${ns}/pods/${pod}/${sub}?${q}`),
  );
  fc.assert(
    fc.property(
      path,
      anyHeaderValue,
      anyHeaderValue,
      anyHeaderValue,
      anyHeaderValue,
      (url, up, conn, ws, xs) => {
        const sr = classify(
          fakeRequest(url, {
            upgrade: up,
            connection: conn,
            'sec-websocket-protocol': ws,
            'x-stream-protocol-version': xs,
          }),
        );
        if (sr === undefined) return;
        assert.ok(['exec', 'attach', 'portforward'].includes(sr.subresource));
        for (const p of sr.client.offered) assert.ok(p === p.trim() && p !== '' && !p.includes(','));
        const streams = execStreams(sr.query);
        assert.ok(!(streams.tty && streams.stderr));
      },
    ),
    { numRuns: 3000 },
  );
});

test('classifyUpgrade on mutated kubectl request heads: a value or undefined', () => {
  for (const s of recordedSessions()) {
    const base = Buffer.from(s.request, 'latin1');
    assert.ok(classify(parseHead(s.request)!), `${s.name} classifies`);
    fc.assert(
      fc.property(mutated(base), (bytes) => {
        const req = parseHead(bytes.toString('latin1'));
        if (req) classify(req);
      }),
      { numRuns: 400 },
    );
  }
});

test('protocol headers: split, token and negotiation hold their contracts on any input', () => {
  fc.assert(
    fc.property(anyHeaderValue, fc.string({ maxLength: 12 }), (value, token) => {
      const parts = splitProtocolHeader(value);
      for (const p of parts) assert.ok(p !== '' && p === p.trim() && !p.includes(','));
      const has = headerHasToken(value, token);
      if (has) assert.ok(parts.some((p) => p.toLowerCase() === token.toLowerCase()));
      const server = ['v4.channel.k8s.io', 'v5.channel.k8s.io', ...parts.slice(0, 1)];
      const chosen = negotiate(parts, server);
      if (chosen !== undefined) assert.ok(parts.includes(chosen) && server.includes(chosen));
    }),
    { numRuns: 3000 },
  );
});

test('--listen: any string is a host and a port in range, or an Error', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.tuple(fc.string({ maxLength: 20 }), fc.nat({ max: 999_999 })).map(([h, p]) => `${h}:${p}`),
        fc.tuple(fc.ipV6(), fc.nat({ max: 70_000 })).map(([h, p]) => `[${h}]:${p}`),
      ),
      (value) => {
        try {
          const { host, port } = parseListen(value);
          assert.ok(Number.isInteger(port) && port >= 0 && port <= 65535);
          assert.equal(typeof host, 'string');
        } catch (err) {
          assert.ok(err instanceof Error && /--listen/.test(err.message));
        }
      },
    ),
    { numRuns: 3000 },
  );
});

const hosts = acceptedHosts(parsePatterns('--accept-hosts', DEFAULT_ACCEPT_HOSTS.join(',')), '127.0.0.1');

test('Host and Origin: only the allowed names pass, with any port; everything else is a 403', () => {
  const access = new AccessControl({ acceptHosts: hosts, acceptPaths: [/^.*/], rejectPaths: [] });
  const check = (headers: Record<string, string | undefined>) =>
    access.check(fakeRequest('/api/v1/pods', headers), '/api/v1/pods');
  for (const h of ['127.0.0.1:8001', 'localhost', 'LOCALHOST:1', '[::1]:8001', '[::1]', '127.0.0.1'])
    assert.equal(check({ host: h }), undefined, h);
  for (const h of ['evil.example', 'evil.example:8001', '127.0.0.1.evil.example', '127.0.0.2', '', 'a b'])
    assert.equal(check({ host: h })?.status, 403, h);
  assert.equal(check({})?.status, 403, 'no Host');
  assert.equal(check({ host: 'localhost', origin: 'http://localhost:3000' }), undefined);
  for (const o of ['https://evil.example', 'null', 'file://', 'garbage'])
    assert.equal(check({ host: 'localhost', origin: o })?.status, 403, o);
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), fc.option(fc.string({ maxLength: 40 })), (host, origin) => {
      const d = check({ host, origin: origin ?? undefined });
      const h = hostOf(host);
      const allowed = h !== undefined && ['localhost', '127.0.0.1', '[::1]'].includes(h);
      if (!allowed) assert.equal(d?.status, 403, `host ${JSON.stringify(host)}`);
    }),
    { numRuns: 3000 },
  );
});

test('--accept-hosts patterns match whole host names, unlike kubectl proxy', () => {
  const access = new AccessControl({
    acceptHosts: parsePatterns('--accept-hosts', 'shim\\.example\\.com,^10\\.0\\.0\\.\\d+'),
    acceptPaths: [/^.*/],
    rejectPaths: [],
  });
  const check = (host: string, origin?: string) =>
    access.check(fakeRequest('/api', { host, origin }), '/api')?.status;
  assert.equal(check('shim.example.com:8443'), undefined);
  assert.equal(check('SHIM.example.com'), undefined, 'the Host is compared lowercased');
  assert.equal(check('shim.example.com.evil.net'), 403);
  assert.equal(check('evil-shim.example.com'), 403);
  assert.equal(check('10.0.0.7'), undefined);
  assert.equal(check('10.0.0.7.evil.net'), 403);
  assert.equal(check('shim.example.com', 'https://shim.example.com.evil.net'), 403);
});

test('token: only the exact bearer token passes, by header or subprotocol, and it is removed from the request', () => {
  const token = 'listener-secret-0123456789';
  const access = new AccessControl({ acceptHosts: hosts, acceptPaths: [/^.*/], rejectPaths: [] });
  const guarded = new AccessControl({ acceptHosts: hosts, acceptPaths: [/^.*/], rejectPaths: [], token });
  const sub = (t: string) => `base64url.bearer.authorization.k8s.io.${Buffer.from(t).toString('base64url')}`;
  const ok = fakeRequest('/api', { host: 'localhost', authorization: `Bearer ${token}` });
  assert.equal(guarded.check(ok, '/api'), undefined);
  assert.equal(ok.headers.authorization, undefined, 'never forwarded');
  const ws = fakeRequest('/api', {
    host: 'localhost',
    'sec-websocket-protocol': `v5.channel.k8s.io, ${sub(token)}`,
  });
  assert.equal(guarded.check(ws, '/api'), undefined);
  assert.equal(ws.headers['sec-websocket-protocol'], 'v5.channel.k8s.io');
  assert.equal(
    access.check(fakeRequest('/api', { host: 'localhost' }), '/api'),
    undefined,
    'no token configured',
  );
  fc.assert(
    fc.property(
      fc.string({ maxLength: 40 }),
      fc.constantFrom('Bearer ', 'bearer ', 'Basic ', ''),
      (t, scheme) => {
        const req = fakeRequest('/api', { host: 'localhost', authorization: scheme + t });
        const d = guarded.check(req, '/api');
        const exact = scheme.toLowerCase() === 'bearer ' && t.trim() === token;
        assert.equal(d === undefined, exact);
        if (d) assert.equal(d.status, 401);
        assert.equal(req.headers.authorization, undefined);
      },
    ),
    { numRuns: 2000 },
  );
});

test('paths: judged in canonical form, so %-escapes, dot segments and // cannot dodge a reject pattern; malformed targets get 400', () => {
  const access = new AccessControl({
    acceptHosts: hosts,
    acceptPaths: parsePatterns('--accept-paths', '^/api'),
    rejectPaths: parsePatterns('--reject-paths', '^/api/.*/pods/.*/exec'),
  });
  const check = (url: string) => {
    const parsed = parseRequestTarget(url);
    if (!parsed.ok) return 400;
    return access.check(fakeRequest(url, { host: 'localhost' }), parsed.target.path)?.status;
  };
  assert.equal(check('/api/v1/namespaces/a/pods/b/attach'), undefined);
  assert.equal(check('/api/v1/namespaces/a/pods/b/exec?command=sh'), 403);
  assert.equal(check('/api/v1/namespaces/a/pods/b/%65xec'), 403);
  assert.equal(check('/api/v1/namespaces/a/pods/x/../b/exec'), 403);
  assert.equal(check('/apis/x'), undefined);
  assert.equal(check('/healthz'), 403);
  assert.equal(check('/api/v1/namespaces/a/pods//b///exec'), 403);
  assert.equal(check('/api/v1/namespaces/a/pods/b/./exec/'), 403);
  assert.equal(check('//api/v1/namespaces/a/pods/b/exec'), 400);
  assert.equal(check('/api/v1/namespaces/a/pods/b%2Fexec'), 400);
  assert.equal(check('/api/%E'), 400);
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (url) => {
      const status = check(url);
      const parsed = parseRequestTarget(url);
      if (!parsed.ok) assert.equal(status, 400);
      else if (/^\/api\/.*\/pods\/.*\/exec/.test(parsed.target.path)) assert.equal(status, 403);
    }),
    { numRuns: 3000 },
  );
});

test('flag parsers: regex lists, durations and counts give values or an Error naming the flag', () => {
  assert.throws(() => parsePatterns('--accept-hosts', '^ok$,(unclosed'), /--accept-hosts: '\(unclosed'/);
  assert.deepEqual(
    parsePatterns('--reject-paths', ' ^/a , ,^/b ').map((r) => r.source),
    [/^\/a/.source, /^\/b/.source],
  );
  assert.equal(parseDuration('--x', '1h30m'), 5_400_000);
  assert.equal(parseDuration('--x', '500ms'), 500);
  assert.equal(parseDuration('--x', '2.5'), 2500);
  assert.equal(parseDuration('--x', '0'), 0);
  assert.equal(formatDuration(90_000), '90 s');
  assert.equal(formatDuration(600_000), '10 min');
  fc.assert(
    fc.property(fc.string({ maxLength: 16 }), (v) => {
      for (const parse of [parseDuration, parseCount]) {
        try {
          const n = parse('--flag', v);
          assert.ok(Number.isFinite(n) && n >= 0);
        } catch (err) {
          assert.match((err as Error).message, /^--flag: /);
        }
      }
      try {
        parsePatterns('--flag', v);
      } catch (err) {
        assert.match((err as Error).message, /^--flag: /);
      }
    }),
    { numRuns: 3000 },
  );
});

test('a listener off loopback needs TLS and client authentication, or the explicit insecure flag', () => {
  const base = { tls: false, clientCa: false, token: false, insecureListenAnywhere: false };
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) checkListenerSecurity({ ...base, host });
  for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com']) {
    assert.throws(() => checkListenerSecurity({ ...base, host }), /--insecure-listen-anywhere/);
    assert.throws(() => checkListenerSecurity({ ...base, host, tls: true }), /--client-ca or --token-file/);
    assert.throws(() => checkListenerSecurity({ ...base, host, token: true }), /--tls-cert/);
    checkListenerSecurity({ ...base, host, tls: true, token: true });
    checkListenerSecurity({ ...base, host, tls: true, clientCa: true });
    checkListenerSecurity({ ...base, host, insecureListenAnywhere: true });
  }
});
