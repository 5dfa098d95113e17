/**
 * The shim's Prometheus metrics: scrape the text exposition and read the counts back, per
 * registry (two Metrics side by side stay independent), and through the /metrics endpoint.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Metrics } from '../../src/observe/metrics.js';
import { withTimeout } from '../support/wait.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text exposition (labels without escapes, which these values do not need). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[k as string] = v as string;
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample of `name` whose labels include `labels` (undefined if none). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  assert.ok(hits.length <= 1, `more than one sample of ${name} ${JSON.stringify(labels)}`);
  return hits[0]?.value;
}

const exec = { subresource: 'exec', client: 'v5.channel.k8s.io', upstream: 'v4.channel.k8s.io' };
const pf = {
  subresource: 'portforward',
  client: 'SPDY/3.1+portforward.k8s.io',
  upstream: 'portforward.k8s.io',
};

test('sessions: active gauge, outcomes, durations and bytes by direction', async () => {
  const m = new Metrics();
  m.sessionOpened(exec);
  m.sessionOpened(exec);
  m.sessionOpened(pf);
  m.sessionClosed(exec, { durationMs: 2500, bytesIn: 10, bytesOut: 4096, outcome: 'exit-code' });
  m.sessionClosed(pf, { durationMs: 3 * 3600_000, bytesIn: 7, bytesOut: 0, outcome: 'success' });

  const { contentType, body } = await m.render();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  const s = parse(body);
  assert.equal(value(s, 'kubeshim_sessions_active', exec), 1);
  assert.equal(value(s, 'kubeshim_sessions_active', pf), 0);
  assert.equal(value(s, 'kubeshim_sessions_total', { ...exec, outcome: 'exit-code' }), 1);
  assert.equal(value(s, 'kubeshim_sessions_total', { ...pf, outcome: 'success' }), 1);
  assert.equal(value(s, 'kubeshim_sessions_total', { ...exec, outcome: 'success' }), undefined);

  assert.equal(value(s, 'kubeshim_session_duration_seconds_count', exec), 1);
  assert.equal(value(s, 'kubeshim_session_duration_seconds_sum', exec), 2.5);
  assert.equal(value(s, 'kubeshim_session_duration_seconds_bucket', { ...exec, le: '1' }), 0);
  assert.equal(value(s, 'kubeshim_session_duration_seconds_bucket', { ...exec, le: '5' }), 1);
  assert.equal(value(s, 'kubeshim_session_duration_seconds_bucket', { ...pf, le: '7200' }), 0);
  assert.equal(value(s, 'kubeshim_session_duration_seconds_bucket', { ...pf, le: '14400' }), 1);
  const buckets = s.filter(
    (x) => x.name === 'kubeshim_session_duration_seconds_bucket' && x.labels.subresource === 'exec',
  );
  assert.equal(buckets[0]?.labels.le, '0.1', 'buckets start at 0.1 s');

  assert.equal(value(s, 'kubeshim_session_bytes_total', { ...exec, direction: 'in' }), 10);
  assert.equal(value(s, 'kubeshim_session_bytes_total', { ...exec, direction: 'out' }), 4096);
  assert.equal(value(s, 'kubeshim_session_bytes_total', { ...pf, direction: 'in' }), 7);

  for (const name of [
    'kubeshim_sessions_active',
    'kubeshim_sessions_total',
    'kubeshim_session_duration_seconds',
    'kubeshim_session_bytes_total',
    'kubeshim_upstream_upgrades_total',
    'kubeshim_fallbacks_total',
  ]) {
    assert.match(body, new RegExp(`^# HELP ${name} \\S`, 'm'), `help text of ${name}`);
  }
});

test('upgrades by result and fallbacks by reason are counted', async () => {
  const m = new Metrics();
  m.upgrade('exec', 'v5.channel.k8s.io', 'refused');
  m.upgrade('exec', 'v4.channel.k8s.io', 'ok');
  m.upgrade('exec', 'v4.channel.k8s.io', 'ok');
  m.upgrade('portforward', 'portforward.k8s.io', 'error');
  m.fallback('exec', 'websocket-refused-400');
  m.fallback('exec', 'websocket-refused-400');
  const s = parse((await m.render()).body);
  const up = 'kubeshim_upstream_upgrades_total';
  assert.equal(value(s, up, { subresource: 'exec', protocol: 'v4.channel.k8s.io', result: 'ok' }), 2);
  assert.equal(value(s, up, { subresource: 'exec', protocol: 'v5.channel.k8s.io', result: 'refused' }), 1);
  assert.equal(value(s, up, { subresource: 'portforward', result: 'error' }), 1);
  assert.equal(
    value(s, 'kubeshim_fallbacks_total', { subresource: 'exec', reason: 'websocket-refused-400' }),
    2,
  );
});

test('each Metrics has its own registry, with the default process metrics', async () => {
  const a = new Metrics();
  const b = new Metrics();
  a.upgrade('attach', 'v5.channel.k8s.io', 'ok');
  const sa = parse((await a.render()).body);
  const sb = parse((await b.render()).body);
  assert.equal(value(sa, 'kubeshim_upstream_upgrades_total', { subresource: 'attach' }), 1);
  assert.equal(value(sb, 'kubeshim_upstream_upgrades_total', { subresource: 'attach' }), undefined);
  for (const s of [sa, sb]) {
    assert.ok((value(s, 'process_resident_memory_bytes') ?? 0) > 0, 'process metrics');
    assert.ok(value(s, 'nodejs_heap_size_total_bytes') !== undefined, 'nodejs metrics');
  }
});

test('handle() answers GET /metrics and leaves every other request alone', async (t) => {
  const m = new Metrics();
  m.fallback('exec', 'spdy-refused-403');
  const server = http.createServer((req, res) => {
    const endpoints = [m.handle]; // handed over unbound, as the listener takes it
    if (!endpoints.some((e) => e(req, res))) {
      res.writeHead(404);
      res.end('not mine');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(r)));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const scrape = await withTimeout(fetch(`${base}/metrics?x=1`), 5000, 'scrape');
  assert.equal(scrape.status, 200);
  assert.match(scrape.headers.get('content-type') ?? '', /^text\/plain/);
  assert.equal(
    value(parse(await scrape.text()), 'kubeshim_fallbacks_total', { reason: 'spdy-refused-403' }),
    1,
  );
  const other = await withTimeout(fetch(`${base}/metrics/extra`), 5000, 'other path');
  assert.equal(other.status, 404);
  const post = await withTimeout(fetch(`${base}/metrics`, { method: 'POST' }), 5000, 'POST');
  assert.equal(post.status, 404);
});
