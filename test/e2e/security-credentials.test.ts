/**
 * Whose identity the shim lends, with `kubeshim serve` as a real process: the `listening` line
 * says it; when the shim injects credentials, the client's own Authorization and Impersonate-*
 * headers never reach the upstream (plain requests and upgrades), and the kubeconfig's `as`,
 * `as-groups`, `as-uid`, `as-user-extra` go instead; a failing exec plugin's output reaches no log
 * and no answer (clients, /readyz and the log are told what failed); a URL with a password is refused.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli, type ServeProcess, startServe } from '../support/processes.js';
import { waitFor, withTimeout } from '../support/wait.js';

const PLUGIN_OUTPUT = 'PLUGIN-PRINTED-7f3e-secret-hint';
let dir: string;
let upstream: http.Server;
let upstreamUrl: string;
/** Raw header pairs of every request the upstream got, plain or upgrade. */
const seen: { url: string; raw: string[] }[] = [];
const started: ServeProcess[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-creds-'));
  upstream = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', raw: req.rawHeaders });
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  upstream.on('upgrade', (req: IncomingMessage, socket) => {
    seen.push({ url: req.url ?? '', raw: req.rawHeaders });
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});

after(async () => {
  for (const s of started) await s.stop();
  upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

async function kubeconfig(name: string, user: object): Promise<string> {
  const file = join(dir, `${name}.json`);
  await writeFile(
    file,
    JSON.stringify({
      clusters: [{ name: 'c', cluster: { server: upstreamUrl } }],
      users: [{ name: 'u', user }],
      contexts: [{ name: name, context: { cluster: 'c', user: 'u' } }],
      'current-context': name,
    }),
  );
  return file;
}

async function serve(args: string[]): Promise<ServeProcess> {
  const s = await startServe(args, { PATH: process.env.PATH, HOME: dir });
  started.push(s);
  // serve looks at the upstream once at start (GET /version, /api): done before the test's own
  // requests, so that the upstream sees only those from here on
  await waitFor('the upstream check', () =>
    s.lines().some((l) => l['msg'] === 'upstream answers' || /^upstream check failed/.test(String(l['msg']))),
  );
  return s;
}

/** Header values by name (lowercased), repeats kept. */
function values(raw: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

/** A proxy's credential, and an authenticating front proxy's word for the user: never sent on, on any path. */
const ONE_HOP_ONLY =
  'Proxy-Authorization: Basic cHJveHk6c2VjcmV0\r\nX-Remote-User: admin\r\nX-Remote-Group: system:masters\r\nX-Remote-Extra-Scopes: all\r\n';
const HOSTILE =
  'Authorization: Bearer client-own\r\nImpersonate-User: root\r\nImpersonate-Group: system:masters\r\nImpersonate-Extra-Scopes: all\r\n' +
  ONE_HOP_ONLY;

/** Send a raw head; the answer once the shim closes (or ends its head). */
function send(url: string, head: string): Promise<string> {
  return withTimeout(
    new Promise<string>((resolve, reject) => {
      const c = net.connect(Number(new URL(url).port), '127.0.0.1');
      let text = '';
      c.on('data', (d: Buffer) => {
        text += d.toString('latin1');
      });
      c.on('close', () => resolve(text));
      c.on('error', reject);
      c.write(head);
    }),
    10_000,
    'an answer from the shim',
  );
}

test('injected credentials: the listening line says so; client identity headers are dropped, the kubeconfig impersonation is sent', async () => {
  const kc = await kubeconfig('injecting', {
    token: 'injected-token',
    as: 'jane',
    'as-groups': ['devs', 'ops'],
    'as-uid': '42',
    'as-user-extra': { 'example.com/team': ['blue'] },
  });
  const s = await serve(['--kubeconfig', kc]);
  const listening = s.lines().find((l) => l['msg'] === 'listening')!;
  assert.match(
    String(listening['credentials']),
    /^injected from context "injecting" \(auth: token, impersonating jane\)$/,
  );
  const heads = [
    `GET /api/v1/pods HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${HOSTILE}\r\n`,
    `GET /api/v1/watch/pods HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.Y2xpZW50LW93bg, v1.watch\r\n${HOSTILE}\r\n`,
    `POST /api/v1/namespaces/default/pods/p/exec?command=id&stdout=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n${HOSTILE}\r\n`,
  ];
  for (const head of heads) {
    const before = seen.length;
    await send(s.url, head);
    assert.ok(seen.length > before, `forwarded: ${head.split('\r\n')[0]}`);
    for (const r of seen.slice(before)) {
      assert.deepEqual(values(r.raw, 'authorization'), ['Bearer injected-token'], r.url);
      assert.deepEqual(values(r.raw, 'impersonate-user'), ['jane'], r.url);
      assert.deepEqual(values(r.raw, 'impersonate-group'), ['devs', 'ops'], r.url);
      assert.deepEqual(values(r.raw, 'impersonate-uid'), ['42'], r.url);
      assert.deepEqual(values(r.raw, 'impersonate-extra-example.com%2fteam'), ['blue'], r.url);
      assert.deepEqual(values(r.raw, 'impersonate-extra-scopes'), [], r.url);
      for (const p of values(r.raw, 'sec-websocket-protocol')) assert.ok(!p.includes('bearer'), p);
      assertNoOneHopHeaders(r);
    }
  }
});

test('pass-through: the listening line says so, and the client identity goes upstream as it came, without the one-hop headers', async () => {
  const s = await serve(['--upstream', upstreamUrl]);
  assert.equal(s.lines().find((l) => l['msg'] === 'listening')!['credentials'], 'pass-through');
  const before = seen.length;
  await send(s.url, `GET /api/v1/pods HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${HOSTILE}\r\n`);
  await send(
    s.url,
    `GET /api/v1/watch/pods HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${HOSTILE}\r\n`,
  );
  assert.equal(seen.length, before + 2);
  for (const r of seen.slice(before)) {
    assert.deepEqual(values(r.raw, 'authorization'), ['Bearer client-own']);
    assert.deepEqual(values(r.raw, 'impersonate-user'), ['root']);
    assertNoOneHopHeaders(r);
  }
});

function assertNoOneHopHeaders(r: { url: string; raw: string[] }): void {
  for (const name of ['proxy-authorization', 'x-remote-user', 'x-remote-group', 'x-remote-extra-scopes'])
    assert.deepEqual(values(r.raw, name), [], `${name} on ${r.url}`);
}

test("a failing exec plugin: clients, /readyz and the shim's log are told what failed, never what the plugin printed", async () => {
  const plugin = join(dir, 'failing-plugin.sh');
  await writeFile(plugin, `#!/bin/sh\necho "${PLUGIN_OUTPUT}" >&2\nexit 1\n`);
  await chmod(plugin, 0o755);
  const kc = await kubeconfig('plugin', {
    exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' },
  });
  const s = await serve(['--kubeconfig', kc]);
  const plain = await send(
    s.url,
    'GET /api/v1/pods HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
  );
  assert.match(plain, /^HTTP\/1\.1 502 /);
  assert.match(plain, /could not get its upstream credentials/);
  const upgrade = await send(
    s.url,
    'POST /api/v1/namespaces/default/pods/p/exec?command=id&stdout=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n',
  );
  assert.match(upgrade, /^HTTP\/1\.1 5\d\d /);
  const readyz = await send(s.url, 'GET /readyz HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
  assert.match(readyz, /^HTTP\/1\.1 503 /);
  assert.match(readyz, /cannot get upstream credentials/);
  for (const answer of [plain, upgrade, readyz]) assert.ok(!answer.includes(PLUGIN_OUTPUT), answer);
  assert.ok(!s.output().includes(PLUGIN_OUTPUT), "not in the shim's own log either");
  assert.match(
    s.output(),
    /exec plugin \\".*failing-plugin\.sh\\" failed \(\d+ bytes on stderr\): run \\".*failing-plugin\.sh\\" yourself/,
  );
});

test('an --upstream URL with a user name and password is refused, without echoing the password', async () => {
  const r = await runCli(
    ['serve', '--listen', '127.0.0.1:0', '--upstream', 'http://admin:hunter2@127.0.0.1:9'],
    {
      PATH: process.env.PATH,
      HOME: dir,
    },
  );
  assert.notEqual(r.code, 0);
  const output = `${r.stdout.toString()}${r.stderr}`;
  assert.match(output, /--upstream carries a user name or password/);
  assert.ok(!output.includes('hunter2'));
});
