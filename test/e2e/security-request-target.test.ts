/**
 * What a client can make the shim dial: only the configured upstream. A shim that injects a bearer
 * token sits in front of a recording upstream; a second server stands for the attacker's. Request
 * targets in absolute-form, authority-like (`//host:port/…`), with backslashes or escaped slashes
 * get a 400 Status, for plain requests and every kind of upgrade, and nothing reaches either
 * server; `//` cannot dodge --reject-paths; the path a reject pattern judged is the path forwarded.
 */
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import {
  AccessControl,
  acceptedHosts,
  DEFAULT_ACCEPT_HOSTS,
  parsePatterns,
} from '../../src/server/access.js';
import { startTestShim, type TestShim } from '../support/shim.js';
import { withTimeout } from '../support/wait.js';

const SECRET = 'injected-secret-9c1f';

interface Recorder {
  port: number;
  seen: { url: string; authorization?: string }[];
  server: http.Server;
}

async function recorder(): Promise<Recorder> {
  const seen: Recorder['seen'] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  server.on('upgrade', (req: IncomingMessage, socket) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, seen, server };
}

let upstream: Recorder;
let attacker: Recorder;
let shim: TestShim;

before(async () => {
  upstream = await recorder();
  attacker = await recorder();
  const agent = new http.Agent({ keepAlive: false });
  shim = await startTestShim(`http://127.0.0.1:${upstream.port}/`, 'auto', {
    target: {
      url: new URL(`http://127.0.0.1:${upstream.port}/`),
      agent,
      authHeaders: async () => ({ authorization: `Bearer ${SECRET}` }),
      injectsCredentials: true,
    },
    access: new AccessControl({
      acceptHosts: acceptedHosts(parsePatterns('h', DEFAULT_ACCEPT_HOSTS.join(',')), '127.0.0.1'),
      acceptPaths: [/^.*/],
      rejectPaths: parsePatterns('--reject-paths', '^/api/.*/pods/.*/log$'),
    }),
  });
});

after(async () => {
  await shim?.close();
  upstream?.server.close();
  attacker?.server.close();
});

/** Send a raw head; the whole answer once the shim closes (or after 3 s). */
function send(head: string): Promise<string> {
  const port = Number(new URL(shim.url).port);
  return withTimeout(
    new Promise<string>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      c.on('data', (d: Buffer) => {
        chunks.push(d);
        if (Buffer.concat(chunks).includes('\r\n\r\n')) c.destroy();
      });
      c.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      c.on('error', reject);
      c.write(head);
    }),
    5000,
    'an answer from the shim',
  );
}

const UPGRADES: Record<string, string> = {
  plain: '',
  spdy: 'Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n',
  websocket:
    'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n',
  other: 'Connection: Upgrade\r\nUpgrade: h2c\r\n',
};

test('targets that name another host, or could, are refused with 400 before any dial, for every kind of request', async () => {
  const evil = `127.0.0.1:${attacker.port}`;
  const targets = [
    `//${evil}/api/v1/namespaces/default/pods/demo/exec?command=id&stdout=1`,
    `http://${evil}/api/v1/namespaces/default/pods/demo/exec?command=id&stdout=1`,
    `/\\${evil}/api/v1/namespaces/default/pods/demo/exec`,
    `/api/v1/namespaces/default/pods/demo%2F..%2F..%2F..%2Fx/exec`,
    `//${evil}/steal`,
    `http://${evil}/steal`,
  ];
  for (const [kind, headers] of Object.entries(UPGRADES)) {
    for (const target of targets) {
      const method = kind === 'spdy' ? 'POST' : 'GET';
      const answer = await send(`${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`);
      assert.match(answer, /^HTTP\/1\.1 400 /, `${kind} ${target}: ${answer.slice(0, 80)}`);
      assert.match(answer, /"reason":"BadRequest"/, `${kind} ${target}`);
    }
  }
  assert.deepEqual(attacker.seen, [], 'the attacker saw nothing');
  assert.deepEqual(upstream.seen, [], 'nothing was dialed at all');
  const refused = shim
    .logs()
    .filter((l) => String(l['msg']).startsWith('request denied') && l['status'] === 400);
  assert.ok(refused.length >= targets.length, 'each refusal is logged');
});

test('CONNECT is refused with a 405 Status saying kubeshim is not a forward proxy, and logged; nothing is dialed', async () => {
  const before = upstream.seen.length;
  for (const target of [`127.0.0.1:${attacker.port}`, `127.0.0.1:${new URL(shim.url).port}`]) {
    const answer = await send(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 405 /, answer.slice(0, 80));
    assert.match(answer, /not a forward proxy/);
  }
  assert.deepEqual(attacker.seen, [], 'the attacker saw nothing');
  assert.equal(upstream.seen.length, before, 'nothing was dialed');
  assert.equal(shim.logs().filter((l) => l['msg'] === 'refused: not a forward proxy').length, 2);
});

test('`//api/…` does not dodge --reject-paths, and what a pattern judged is what is forwarded', async () => {
  const before = upstream.seen.length;
  for (const target of [
    '//api/v1/namespaces/default/pods/demo/log',
    '/api//v1/namespaces/default/pods/demo/log',
    '/api/v1/namespaces/default/pods/x/../demo/log',
    '/api/v1/namespaces/default/pods/demo/%6cog',
  ]) {
    const answer = await send(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    assert.match(answer, /^HTTP\/1\.1 (400|403) /, target);
  }
  assert.equal(upstream.seen.length, before, 'none forwarded');
  const ok = await send(
    'GET /api/v1//namespaces/./default/pods/demo/%6cogs?x=a//b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
  );
  assert.match(ok, /^HTTP\/1\.1 200 /);
  assert.deepEqual(upstream.seen.at(-1), {
    url: '/api/v1/namespaces/default/pods/demo/logs?x=a//b',
    authorization: `Bearer ${SECRET}`,
  });
});

test('an upstream with a path prefix keeps it for plain requests and upgrades alike', async () => {
  const agent = new http.Agent();
  const prefixed = await startTestShim(`http://127.0.0.1:${upstream.port}/`, 'auto', {
    target: {
      url: new URL(`http://127.0.0.1:${upstream.port}/k8s/clusters/c1/`),
      agent,
      authHeaders: async () => ({}),
      injectsCredentials: false,
    },
  });
  try {
    const port = new URL(prefixed.url).port;
    const get = await new Promise<number>((resolve, reject) =>
      http
        .get(`http://127.0.0.1:${port}/api/v1/pods`, (res) => resolve(res.statusCode ?? 0))
        .on('error', reject),
    );
    assert.equal(get, 200);
    assert.equal(upstream.seen.at(-1)?.url, '/k8s/clusters/c1/api/v1/pods');
    const c = net.connect(Number(port), '127.0.0.1');
    c.write(`GET /api/v1/watch/pods HTTP/1.1\r\nHost: 127.0.0.1\r\n${UPGRADES.other}\r\n`);
    await withTimeout(new Promise((r) => c.once('data', r)), 5000, 'an answer');
    c.destroy();
    assert.equal(upstream.seen.at(-1)?.url, '/k8s/clusters/c1/api/v1/watch/pods');
  } finally {
    await prefixed.close();
  }
});
