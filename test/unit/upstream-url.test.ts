/**
 * The canonical request target and the one upstream URL builder: whatever a client puts in its
 * request line, the URL dialed is on the configured upstream's origin, under its path prefix, and
 * its path is byte for byte the path the access rules judged.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseRequestTarget, pathAndQuery } from '../../src/k8s/canonical-target.js';
import { upstreamUrl } from '../../src/upstream/upstream-url.js';

const BASES = [
  new URL('https://api.example:6443'),
  new URL('https://api.example:6443/prefix/'),
  new URL('http://127.0.0.1:8080/k8s/clusters/c-1'),
];

test('refused before anything is dialed: absolute-form, authority-like, backslashes, escaped separators', () => {
  for (const raw of [
    'http://127.0.0.1:1/steal',
    'https://evil.example/api',
    '//127.0.0.1:1/steal',
    '//api/v1/namespaces/default/pods/demo/log',
    '/\\evil.example/x',
    '\\\\evil.example/x',
    '/api\\..\\..\\x',
    '*',
    'evil.example:443',
    '',
    '/api/v1%2F..%2Fx',
    '/api/%5C',
    '/api/%00',
    '/api/%G0',
    '/api#frag',
    '/api /x',
    '/api/\u00e9',
  ])
    assert.equal(parseRequestTarget(raw).ok, false, JSON.stringify(raw));
});

test('normalised once: unreserved escapes decoded, repeated slashes and dot segments resolved, query kept', () => {
  const canon = (raw: string) => {
    const p = parseRequestTarget(raw);
    assert.ok(p.ok, raw);
    return pathAndQuery(p.target);
  };
  assert.equal(
    canon('/api/v1/namespaces/a/pods/b/%65xec?command=sh'),
    '/api/v1/namespaces/a/pods/b/exec?command=sh',
  );
  assert.equal(canon('/api//v1///pods/'), '/api/v1/pods/');
  assert.equal(canon('/api/v1/x/../../y/./z'), '/api/y/z');
  assert.equal(canon('/../../etc'), '/etc');
  assert.equal(canon('/api/%2e%2E/x'), '/x');
  assert.equal(canon('/a/%3a%7e'), '/a/%3A~');
  assert.equal(canon('/a/{x}?q=<a>&b=//c'), '/a/%7Bx%7D?q=%3Ca%3E&b=//c');
  assert.equal(canon('/'), '/');
});

test('the builder keeps the upstream origin and its path prefix', () => {
  const t = parseRequestTarget('/api/v1/pods?watch=1');
  assert.ok(t.ok);
  assert.equal(upstreamUrl(BASES[0]!, t.target).href, 'https://api.example:6443/api/v1/pods?watch=1');
  assert.equal(upstreamUrl(BASES[1]!, t.target).href, 'https://api.example:6443/prefix/api/v1/pods?watch=1');
  assert.equal(
    upstreamUrl(BASES[2]!, t.target, true).href,
    'ws://127.0.0.1:8080/k8s/clusters/c-1/api/v1/pods?watch=1',
  );
  assert.throws(() => upstreamUrl(BASES[0]!, '//evil.example/x'), /not a request path/);
  assert.throws(() => upstreamUrl(BASES[0]!, 'http://evil.example/x'), /not a request path/);
});

/** Targets built from the characters that matter to URL parsers, and from anything at all. */
const hostile = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc
    .array(
      fc.constantFrom(
        '/',
        '\\',
        '.',
        '..',
        '%2e',
        '%2F',
        '%5c',
        '%',
        ':',
        '@',
        '?',
        '#',
        '//',
        'a',
        'evil.example',
        'http:',
        '%40',
        '%3A',
        ' ',
        '\t',
        '[',
        ']',
        '::1',
      ),
      {
        maxLength: 16,
      },
    )
    .map((parts) => parts.join('')),
  fc.webUrl().map((u) => u.slice(u.indexOf('//'))),
  fc.webPath(),
);

test('fuzz: no input yields another origin; the dialed path is byte for byte the judged path; parsing is idempotent', () => {
  fc.assert(
    fc.property(fc.constantFrom(...BASES), hostile, fc.boolean(), (base, raw, ws) => {
      const parsed = parseRequestTarget(raw);
      if (!parsed.ok) {
        assert.throws(() => upstreamUrl(base, raw));
        return;
      }
      const { target } = parsed;
      assert.ok(target.path.startsWith('/') && !target.path.startsWith('//'));
      const url = upstreamUrl(base, target, ws);
      assert.equal(url.host, base.host);
      assert.equal(url.hostname, base.hostname);
      assert.equal(url.port, base.port);
      assert.equal(url.username + url.password, '');
      assert.equal(url.protocol, ws ? (base.protocol === 'https:' ? 'wss:' : 'ws:') : base.protocol);
      const prefix = base.pathname.replace(/\/+$/, '');
      assert.equal(url.pathname + url.search, prefix + pathAndQuery(target));
      const again = parseRequestTarget(pathAndQuery(target));
      assert.ok(again.ok);
      assert.deepEqual(again.target, target);
      // the string form of the builder reads the same
      assert.equal(upstreamUrl(base, raw, ws).href, url.href);
    }),
    { numRuns: 20_000 },
  );
});
