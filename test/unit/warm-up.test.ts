/**
 * The start-up warm-up (src/warmup): four exec sessions (both translations, both relays) through two
 * shims of its own, against an echo upstream made of the shim's endpoints. It reports what it
 * carried, gives back every socket and server it opened, and its upstream answers nothing but the
 * one path holding its secret.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { createLogger } from '../../src/observe/logger.js';
import { startEchoUpstream } from '../../src/warmup/echo-upstream.js';
import { warmUp } from '../../src/warmup/warm-up.js';

const log = createLogger({ level: 'silent', pretty: false });

/** Open TCP servers and sockets of this process (what process.getActiveResourcesInfo lists). */
function tcpResources(): number {
  return process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
}

test('warmUp carries both translations and both relays, every byte echoed, and gives back what it opened', async () => {
  const before = tcpResources();
  const r = await warmUp({ log, roundTrips: 200, bulkBytes: 300_000 });
  assert.equal(r.sessions, 4);
  // translated sessions get the round trips asked for, relayed ones a tenth
  assert.equal(r.roundTrips, 2 * 200 + 2 * 20);
  assert.equal(r.bytes, r.roundTrips + 4 * 300_000);
  assert.ok(r.ms > 0);
  // sockets close on the next turns of the event loop
  for (let i = 0; i < 50 && tcpResources() > before; i++) await new Promise((res) => setTimeout(res, 20));
  assert.equal(tcpResources(), before, process.getActiveResourcesInfo().join(', '));
});

test('warmUp gives up after its timeout, naming it, and still closes everything', async () => {
  const before = tcpResources();
  await assert.rejects(
    warmUp({ log, roundTrips: 1_000_000, timeoutMs: 300 }),
    /did not finish within 300 ms/,
  );
  for (let i = 0; i < 50 && tcpResources() > before; i++) await new Promise((res) => setTimeout(res, 20));
  assert.equal(tcpResources(), before, process.getActiveResourcesInfo().join(', '));
});

test('the echo upstream answers 404 to any path but its secret one, upgrades included', async () => {
  const upstream = await startEchoUpstream();
  try {
    assert.match(upstream.execPath, /\/pods\/warm-up-[0-9a-f]{32}\/exec\?command=cat&/);
    const guessed = upstream.execPath.replace(/warm-up-[0-9a-f]+/, 'warm-up-0');
    for (const upgrade of ['websocket', 'SPDY/3.1']) {
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = http.request(`${upstream.url}${guessed}`, {
          method: 'POST',
          headers: {
            connection: 'Upgrade',
            upgrade,
            'x-stream-protocol-version': 'v4.channel.k8s.io',
            'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
            'sec-websocket-version': '13',
            'sec-websocket-protocol': 'v5.channel.k8s.io',
          },
        });
        req.on('upgrade', () => resolve(101));
        req.on('response', (res) => resolve(res.statusCode));
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 404, upgrade);
    }
    const plain = await fetch(`${upstream.url}/api/v1/namespaces`);
    assert.equal(plain.status, 404);
  } finally {
    await upstream.close();
  }
});
