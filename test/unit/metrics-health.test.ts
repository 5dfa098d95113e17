/**
 * /healthz and /readyz against a scripted upstream on 127.0.0.1 reached through a real target
 * (kubeconfig with a token, or the --upstream pass-through form): readiness by the upstream's
 * answer, caching, the /version fallback, credentials, unreachable and silent upstreams.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createHealth, type HealthOptions } from '../../src/observe/health.js';
import { silentLogger } from '../../src/observe/logger.js';
import { loadUpstreamTarget, type UpstreamTarget } from '../../src/upstream/target.js';
import { freePort, withTimeout } from '../support/wait.js';

let dir: string;
const closers: (() => unknown)[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-health-'));
});
after(async () => {
  for (const c of closers.reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

type Answer = { status: number; body?: string } | 'hang';

/** An upstream whose answer per path is set by the test; it records each request. */
async function upstream(answers: Record<string, Answer>) {
  const seen: { path: string; authorization?: string }[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
    const a = answers[req.url ?? ''] ?? { status: 404 };
    if (a === 'hang') return;
    res.writeHead(a.status, { 'content-type': 'text/plain' });
    res.end(a.body ?? '');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, answers };
}

let n = 0;
async function tokenTarget(server: string): Promise<UpstreamTarget> {
  const file = join(dir, `kc-${++n}.json`);
  await writeFile(
    file,
    JSON.stringify({
      clusters: [{ name: 'c', cluster: { server } }],
      users: [{ name: 'u', user: { token: 'probe-token' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
  const target = await loadUpstreamTarget({ kubeconfig: file }, { HOME: dir });
  closers.push(() => target.agent.destroy());
  return target;
}

/** A shim-like server that mounts the health handler; returns its base URL. */
async function healthServer(target: UpstreamTarget, opts: HealthOptions = {}) {
  const health = createHealth(target, silentLogger(), { cacheMs: 0, ...opts });
  const server = http.createServer((req, res) => {
    if (health.handle(req, res)) return;
    res.writeHead(418);
    res.end('proxied');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call = async (path: string, method = 'GET') => {
    const res = await withTimeout(fetch(base + path, { method }), 5000, `${method} ${path}`);
    return { status: res.status, body: await res.text() };
  };
  return { call, health };
}

test('/healthz is ok while the process runs, whatever the upstream does', async () => {
  const target = await loadUpstreamTarget(
    { upstream: `http://127.0.0.1:${await freePort()}` },
    { HOME: dir },
  );
  const { call } = await healthServer(target);
  assert.deepEqual(await call('/healthz'), { status: 200, body: 'ok\n' });
  assert.equal((await call('/readyz')).status, 503);
});

test('/readyz is ok when the upstream /readyz is, asked with the shim credentials under the path prefix', async () => {
  const up = await upstream({ '/prefix/readyz': { status: 200, body: 'ok' } });
  const { call } = await healthServer(await tokenTarget(`${up.url}/prefix`));
  assert.deepEqual(await call('/readyz?verbose'), { status: 200, body: 'ok\n' });
  assert.deepEqual(up.seen, [{ path: '/prefix/readyz', authorization: 'Bearer probe-token' }]);
});

test('answers are cached for cacheMs and concurrent probes share one upstream request', async () => {
  const up = await upstream({ '/readyz': { status: 200 } });
  const { call } = await healthServer(await tokenTarget(up.url), { cacheMs: 300 });
  await Promise.all([call('/readyz'), call('/readyz'), call('/readyz')]);
  await call('/readyz');
  assert.equal(up.seen.length, 1);
  await new Promise((r) => setTimeout(r, 350));
  await call('/readyz');
  assert.equal(up.seen.length, 2);
});

test('an upstream without /readyz is asked for /version', async () => {
  const up = await upstream({ '/version': { status: 200, body: '{}' } });
  const { call } = await healthServer(await tokenTarget(up.url));
  assert.equal((await call('/readyz')).status, 200);
  assert.deepEqual(
    up.seen.map((s) => s.path),
    ['/readyz', '/version'],
  );
});

test('a failing upstream /readyz gives 503 with its failed checks on one line', async () => {
  const body = '[+]ping ok\n[-]etcd failed: reason withheld\n[-]informer-sync failed\nreadyz check failed\n';
  const up = await upstream({ '/readyz': { status: 500, body } });
  const { call } = await healthServer(await tokenTarget(up.url));
  assert.deepEqual(await call('/readyz'), {
    status: 503,
    body: 'upstream /readyz answered 500: [-]etcd failed: reason withheld; [-]informer-sync failed\n',
  });
});

test('401: not ready when the shim injects credentials; ready in the pass-through form', async () => {
  const up = await upstream({ '/readyz': { status: 401, body: 'Unauthorized' } });
  const injecting = await healthServer(await tokenTarget(up.url));
  assert.deepEqual(await injecting.call('/readyz'), {
    status: 503,
    body: "upstream rejected the shim's credentials (401 on /readyz)\n",
  });
  const passThrough = await healthServer(await loadUpstreamTarget({ upstream: up.url }, { HOME: dir }));
  assert.equal((await passThrough.call('/readyz')).status, 200);
  assert.equal(up.seen.at(-1)?.authorization, undefined, 'the pass-through probe carries no credentials');
});

test('an unreachable or silent upstream gives 503 with what failed, not the address or the error text', async () => {
  const port = await freePort();
  const dead = await healthServer(await tokenTarget(`http://127.0.0.1:${port}`));
  const r = await dead.call('/readyz');
  assert.equal(r.status, 503);
  assert.equal(r.body, 'upstream unreachable (ECONNREFUSED)\n');

  const up = await upstream({ '/readyz': 'hang' });
  const silent = await healthServer(await tokenTarget(up.url), { timeoutMs: 200 });
  const started = Date.now();
  assert.equal((await silent.call('/readyz')).body, 'upstream unreachable (ETIMEDOUT)\n');
  assert.ok(Date.now() - started < 2000);
});

test('other paths and methods are left to the proxy', async () => {
  const up = await upstream({});
  const { call } = await healthServer(await tokenTarget(up.url));
  assert.equal((await call('/api/v1/pods')).status, 418);
  assert.equal((await call('/readyz', 'POST')).status, 418);
  assert.equal((await call('/healthz/etcd')).status, 418);
  assert.deepEqual(await call('/healthz', 'HEAD'), { status: 200, body: '' });
});
