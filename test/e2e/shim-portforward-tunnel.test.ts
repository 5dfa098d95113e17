/**
 * The tunnel translations on the wire (docs/protocols.md §4.3, §8.3), with our own clients where kubectl
 * cannot show it: the 101 names `SPDY/3.1+<the upstream's protocol>`, the SPDY session inside runs end
 * to end (PINGs answered by the far side), a text message is a protocol error, refusals reach the
 * client verbatim, upstream ends become WebSocket closes and back, WebSocket pings go toward
 * WebSocket peers. Then real kubectl where the shim is told to use a protocol the path cannot carry
 * (it must fail exactly as it fails against such a path without the shim), the session metrics, and
 * `kubeshim serve --port-forward-stats`.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { WebSocket } from 'ws';
import { TunnelStream } from '../../src/channel/tunnel.js';
import { acceptWebSocket, createWebSocketServer } from '../../src/channel/ws-accept.js';
import { type Emulator, type Generation, startEmulator } from '../../src/emulator/index.js';
import { PORTFORWARD, TUNNEL_PORTFORWARD } from '../../src/k8s/protocols.js';
import { Metrics } from '../../src/observe/metrics.js';
import { SpdySession } from '../../src/spdy/session.js';
import type { UpstreamMode } from '../../src/upstream/choice.js';
import { dialUpgrade, dialWebSocket, type Refusal } from '../../src/upstream/dial.js';
import { makeKubeEnv, runKubectl } from '../support/kubectl.js';
import { startTestShim, type TestShim } from '../support/shim.js';
import { readAll } from '../support/spdy-stream.js';
import { freePort, waitFor, withTimeout } from '../support/wait.js';

const podPath = (pod = 'demo') => `/api/v1/namespaces/default/pods/${pod}/portforward`;
const DIAL = { handshakeTimeoutMs: 10_000 };

const emulators = new Map<Generation, Emulator>();
async function emulator(generation: Generation): Promise<Emulator> {
  let emu = emulators.get(generation);
  if (!emu) {
    emu = await startEmulator({ generation });
    emulators.set(generation, emu);
  }
  return emu;
}

const shims: TestShim[] = [];
async function shimFor(upstream: string, mode: UpstreamMode, extra = {}): Promise<TestShim> {
  const shim = await startTestShim(upstream, mode, extra);
  shims.push(shim);
  return shim;
}

const agent = new http.Agent();
after(async () => {
  for (const s of shims) await s.close();
  for (const e of emulators.values()) await e.close();
  agent.destroy();
});

describe('tunnel client → shim (spdy) → a cluster that takes SPDY', () => {
  let shim: TestShim;
  let metrics: Metrics;
  before(async () => {
    metrics = new Metrics();
    shim = await shimFor((await emulator('modern')).url, 'spdy', {
      metrics,
      keepalive: { intervalMs: 50, timeoutMs: 5000 },
    });
  });

  test('the 101 names SPDY/3.1+portforward.k8s.io; the SPDY session inside runs end to end; pings; metrics', async () => {
    const since = shim.sessionLines().length;
    const t = await tunnel(shim.url);
    assert.equal(t.protocol, TUNNEL_PORTFORWARD);
    let pings = 0;
    t.ws.on('ping', () => pings++);
    const payload = randomBytes(1024 * 1024);
    const echo = await forward(t.session, 8080, '0');
    echo.data.end(payload);
    assert.ok((await readAll(echo.data)).equals(payload));
    const refused = await forward(t.session, 9999, '1');
    assert.match(
      (await readAll(refused.error)).toString(),
      /^error forwarding port 9999 to pod .*connection refused/,
    );
    assert.ok((await withTimeout(t.session.ping(), 5000, 'a SPDY PING answered by the far side')) >= 0);
    await waitFor('WebSocket pings from the shim', () => pings >= 3, 5000);
    t.session.close();
    assert.equal((await withTimeout(t.closed, 5000, 'close')).code, 1000);
    const line = await waitFor('the session line', () => shim.sessionLines()[since], 5000);
    assert.deepEqual(pickLine(line), {
      client: `websocket/${TUNNEL_PORTFORWARD}`,
      upstream: `spdy/${PORTFORWARD}`,
      mode: 'translate',
      outcome: 'success',
      portForwardStats: 'off',
    });
    const text = await metrics.registry.metrics();
    const labels = `subresource="portforward",client="websocket/${TUNNEL_PORTFORWARD}",upstream="spdy/${PORTFORWARD}"`;
    assert.match(
      text,
      new RegExp(`kubeshim_sessions_total\\{${escapeRegExp(labels)},outcome="success"\\} 1\\b`),
    );
    assert.match(
      text,
      new RegExp(`kubeshim_session_bytes_total\\{${escapeRegExp(labels)},direction="in"\\} [1-9]`),
    );
    assert.match(
      text,
      /kubeshim_upstream_upgrades_total\{subresource="portforward",protocol="spdy",result="ok"\} 1\b/,
    );
  });

  test('a text message from the client is a protocol error: close 1003, the upstream connection ends', async () => {
    const emu = await emulator('modern');
    const since = shim.sessionLines().length;
    const served = emu.sessions.length;
    const t = await tunnel(shim.url);
    t.ws.send('not binary');
    assert.equal((await withTimeout(t.closed, 5000, 'close')).code, 1003);
    const line = await waitFor('the session line', () => shim.sessionLines()[since], 5000);
    assert.match(String(line['closeReason']), /text message/);
    assert.equal(line['outcome'], 'error');
    await waitFor('the upstream session to end', () => emu.sessions.length > served, 5000);
  });
});

describe('SPDY client → shim (websocket) → a cluster that takes only WebSocket', () => {
  test('the 101 names portforward.k8s.io; the bytes are wrapped into the tunnel and back', async () => {
    const emu = await emulator('websocket');
    const shim = await shimFor(emu.url, 'websocket');
    const c = await spdyClient(shim.url);
    assert.equal(c.protocol, PORTFORWARD);
    const payload = randomBytes(1024 * 1024);
    const echo = await forward(c.session, 8080, '0');
    echo.data.end(payload);
    assert.ok((await readAll(echo.data)).equals(payload));
    assert.ok((await withTimeout(c.session.ping(), 5000, 'a SPDY PING answered by the far side')) >= 0);
    c.session.close();
    const line = await waitFor('the session line', () => shim.sessionLines()[0], 5000);
    assert.deepEqual(pickLine(line), {
      client: `spdy/${PORTFORWARD}`,
      upstream: `websocket/${TUNNEL_PORTFORWARD}`,
      mode: 'translate',
      outcome: 'success',
      portForwardStats: 'off',
    });
    const s = await emu.waitForSession((x) => x.subresource === 'portforward');
    assert.equal(`${s.transport}/${s.servedBy}/${s.connections}`, 'websocket/tunnel/1');
  });
});

describe('refusals reach the client verbatim', () => {
  test('tunnel client, shim told spdy, SPDY stripped on the way: the upstream SPDY answer', async () => {
    const emu = await emulator('websocket');
    const shim = await shimFor(emu.url, 'spdy');
    const viaShim = await tunnelRefusal(shim.url);
    const direct = await spdyRefusal(emu.url);
    assert.equal(direct.statusCode, 400);
    assert.deepEqual(summary(viaShim), summary(direct));
  });

  test('SPDY client, shim told websocket, WebSocket refused on the way: the upstream WebSocket answer', async () => {
    const emu = await emulator('spdy');
    const shim = await shimFor(emu.url, 'websocket');
    const viaShim = await spdyRefusal(shim.url);
    const direct = await tunnelRefusal(emu.url);
    assert.equal(direct.statusCode, 403);
    assert.deepEqual(summary(viaShim), summary(direct));
  });

  test('auto, both flavours refused (no such pod): each client gets what its own flavour got', async () => {
    const emu = await emulator('modern');
    const shim = await shimFor(emu.url, 'auto');
    const tunnelled = await tunnelRefusal(shim.url, 'nope');
    assert.equal(tunnelled.statusCode, 404);
    assert.deepEqual(summary(tunnelled), summary(await tunnelRefusal(emu.url, 'nope')));
    assert.deepEqual(
      summary(await spdyRefusal(shim.url, 'nope')),
      summary(await spdyRefusal(emu.url, 'nope')),
    );
  });
});

describe('scripted upstreams: handshake headers, ends, keepalive toward a WebSocket upstream', () => {
  let upstream: Scripted;
  before(async () => {
    upstream = await startScripted();
  });
  after(() => upstream?.close());

  test("a SPDY 101 without X-Stream-Protocol-Version: the apiserver's 500, no WebSocket", async () => {
    const shim = await shimFor(upstream.url, 'spdy');
    const r = await tunnelRefusal(shim.url, 'noversion');
    assert.equal(r.statusCode, 500);
    assert.match(r.body.toString(), /unable to upgrade: missing upgrade headers in response/);
  });

  test('the upstream SPDY connection ends: the tunnel client gets close 1000', async () => {
    const shim = await shimFor(upstream.url, 'spdy');
    const t = await tunnel(shim.url, 'eof');
    assert.equal((await withTimeout(t.closed, 5000, 'close')).code, 1000);
  });

  test('WebSocket pings toward the tunnel upstream; its close 1000 ends the SPDY client connection', async () => {
    const shim = await shimFor(upstream.url, 'websocket', { keepalive: { intervalMs: 50, timeoutMs: 5000 } });
    const c = await spdyClient(shim.url, 'tunnel');
    await withTimeout(
      new Promise((resolve) => c.socket.once('close', resolve)),
      5000,
      'the connection to end',
    );
    assert.ok(upstream.pings >= 3, `${upstream.pings} pings reached the upstream`);
    assert.equal(upstream.closeCode, 1000);
  });
});

describe('kubectl through a shim told to use what the path cannot carry', () => {
  const run = async (server: string, version: '1.27' | '1.33', extraEnv: NodeJS.ProcessEnv = {}) => {
    const kube = await makeKubeEnv(server);
    try {
      const r = await runKubectl(version, ['port-forward', 'demo', `${await freePort()}:8080`], {
        env: kube.env,
        extraEnv,
        timeoutMs: 20_000,
      });
      return { code: r.code, output: r.stderr + r.stdout.toString() };
    } finally {
      await kube.cleanup();
    }
  };
  const noWebSockets = { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' };

  test('spdy through a WebSocket-only path: every kubectl fails as SPDY-only kubectl fails there without the shim', async () => {
    const emu = await emulator('websocket');
    const shim = await shimFor(emu.url, 'spdy');
    const direct = await run(emu.url, '1.27');
    assert.deepEqual(direct, {
      code: 1,
      output: 'error: error upgrading connection: Upgrade request required\n',
    });
    assert.deepEqual(await run(shim.url, '1.27'), direct);
    assert.deepEqual(await run(shim.url, '1.33', noWebSockets), await run(emu.url, '1.33', noWebSockets));
    // kubectl 1.33 tries the tunnel, gets the upstream's SPDY refusal, falls back to SPDY, fails the same
    assert.deepEqual(await run(shim.url, '1.33'), direct);
  });

  test("websocket through a SPDY-only path: kubectl fails on the path's WebSocket refusal", async () => {
    const emu = await emulator('spdy');
    const shim = await shimFor(emu.url, 'websocket');
    const refusalsBefore = emu.refusals.length;
    const expected = { code: 1, output: 'error: error upgrading connection: \n' }; // x/net's bare 403 (§2.2)
    assert.deepEqual(await run(shim.url, '1.27'), expected);
    assert.deepEqual(await run(shim.url, '1.33'), expected);
    assert.deepEqual(
      emu.refusals.slice(refusalsBefore).map((r) => `${r.transport} ${r.code}`),
      ['websocket 403', 'websocket 403', 'websocket 403'],
    );
  });
});

describe('the observer (portForwardStats) only watches', () => {
  test('a text message it cannot read stops it; the relay still carries the message and the close', async () => {
    const emu = await emulator('modern');
    const shim = await shimFor(emu.url, 'auto', { portForwardStats: true });
    const t = await tunnel(shim.url);
    const echo = await forward(t.session, 8080, '0');
    echo.data.end('seen\n');
    assert.equal((await readAll(echo.data)).toString(), 'seen\n');
    t.ws.send('not binary'); // relayed as it is: the emulator's tunnel closes with 1003
    assert.equal((await withTimeout(t.closed, 5000, 'close')).code, 1003);
    const line = await waitFor('the session line', () => shim.sessionLines()[0], 5000);
    assert.equal(line['mode'], 'relay');
    assert.equal(line['portForwardStats'], 'stopped: a text message in the tunnel');
    assert.equal(line['connections'], 1);
  });
});

describe('kubeshim serve --port-forward-stats', () => {
  let child: ChildProcess | undefined;
  after(() => {
    child?.kill('SIGKILL');
  });

  test('the session line of a relayed tunnel counts its connections; each connection has its own line', async () => {
    const emu = await emulator('modern');
    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli.ts',
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--upstream',
        emu.url,
        '--port-forward-stats',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { PATH: process.env['PATH'], HOME: '/nonexistent' } },
    );
    const lines: Record<string, unknown>[] = [];
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => {
      partial += d.toString();
      for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
        lines.push(JSON.parse(partial.slice(0, nl)));
        partial = partial.slice(nl + 1);
      }
    });
    const listening = await waitFor('listening', () => lines.find((l) => l['msg'] === 'listening'), 30_000);
    const t = await tunnel(String(listening['url']));
    const echo = await forward(t.session, 8080, '0');
    echo.data.end('counted\n');
    assert.equal((await readAll(echo.data)).toString(), 'counted\n');
    t.session.close();
    const line = await waitFor('the session line', () => lines.find((l) => l['msg'] === 'session'), 10_000);
    assert.deepEqual(
      {
        mode: line['mode'],
        stats: line['portForwardStats'],
        connections: line['connections'],
        forwards: line['forwards'],
      },
      {
        mode: 'relay',
        stats: 'observed',
        connections: 1,
        forwards: { 8080: { connections: 1, bytesIn: 8, bytesOut: 8, errors: 0 } },
      },
    );
    const connection = lines.find((l) => l['msg'] === 'port-forward connection');
    assert.deepEqual(
      { port: connection?.['port'], requestId: connection?.['requestId'], bytesIn: connection?.['bytesIn'] },
      { port: 8080, requestId: '0', bytesIn: 8 },
    );
  });
});

// ---- clients ----------------------------------------------------------------------------------------

interface TunnelClient {
  ws: WebSocket;
  protocol: string;
  session: SpdySession;
  closed: Promise<{ code: number }>;
}

const target = (base: string) => ({ url: new URL(base), agent });

/** A tunnelled port-forward client (kubectl 1.31+'s shape): a SPDY client session inside a WebSocket. */
async function tunnel(base: string, pod?: string): Promise<TunnelClient> {
  const r = await dialWebSocket(target(base), podPath(pod), [TUNNEL_PORTFORWARD], {}, DIAL);
  if (!r.ok) throw new Error(`refused: ${r.refusal.statusCode} ${r.refusal.body}`);
  const closed = new Promise<{ code: number }>((resolve) => r.ws.once('close', (code) => resolve({ code })));
  return {
    ws: r.ws,
    protocol: r.protocol,
    session: new SpdySession(new TunnelStream(r.ws), { role: 'client' }),
    closed,
  };
}

async function tunnelRefusal(base: string, pod?: string): Promise<Refusal> {
  const r = await dialWebSocket(target(base), podPath(pod), [TUNNEL_PORTFORWARD], {}, DIAL);
  if (r.ok) {
    r.ws.terminate();
    throw new Error('the tunnel was accepted');
  }
  return r.refusal;
}

function spdyDial(base: string, pod?: string) {
  return dialUpgrade(
    target(base),
    'POST',
    podPath(pod),
    { connection: 'Upgrade', upgrade: 'SPDY/3.1', 'x-stream-protocol-version': PORTFORWARD },
    DIAL,
  );
}

async function spdyClient(
  base: string,
  pod?: string,
): Promise<{ session: SpdySession; socket: Duplex; protocol: string }> {
  const r = await spdyDial(base, pod);
  if (!r.ok) throw new Error(`refused: ${r.refusal.statusCode} ${r.refusal.body}`);
  return {
    session: new SpdySession(r.socket, { role: 'client', head: r.head }),
    socket: r.socket,
    protocol: String(r.response.headers['x-stream-protocol-version'] ?? ''),
  };
}

async function spdyRefusal(base: string, pod?: string): Promise<Refusal> {
  const r = await spdyDial(base, pod);
  if (r.ok) {
    r.socket.destroy();
    throw new Error('the SPDY upgrade was accepted');
  }
  return r.refusal;
}

/** What a client can tell of a refusal: status, content type, body. */
function summary(r: Refusal) {
  const type = r.rawHeaders.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'content-type');
  return {
    status: r.statusCode,
    contentType: type < 0 ? undefined : r.rawHeaders[type + 1],
    body: r.body.toString(),
  };
}

/** One forwarded connection the way kubectl opens it (§4.1): error stream, half-closed, then data. */
async function forward(session: SpdySession, port: number, requestid: string) {
  const headers = { port: String(port), requestid };
  const error = await session.openStream({ streamtype: 'error', ...headers });
  error.end();
  const data = await session.openStream({ streamtype: 'data', ...headers });
  return { error, data };
}

function pickLine(line: Record<string, unknown>) {
  const { client, upstream, mode, outcome, portForwardStats } = line;
  return { client, upstream, mode, outcome, portForwardStats };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

// ---- a scripted upstream ----------------------------------------------------------------------------

interface Scripted {
  url: string;
  /** WebSocket pings that reached the `tunnel` pod. */
  pings: number;
  /** The close code the `tunnel` pod's WebSocket ended with. */
  closeCode: number | undefined;
  close(): Promise<void>;
}

/**
 * Pods by behaviour: `noversion` answers the SPDY upgrade without X-Stream-Protocol-Version, `eof`
 * accepts it and ends the connection, `tunnel` accepts the tunnel WebSocket, counts pings and closes
 * 1000 after the third.
 */
async function startScripted(): Promise<Scripted> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = createWebSocketServer();
  const sockets = new Set<Socket>();
  const scripted: Scripted = {
    url: '',
    pings: 0,
    closeCode: undefined,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy(); // upgraded: closeAllConnections no longer sees them
        server.close(() => resolve());
      }),
  };
  const spdy101 = (version: boolean) =>
    `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n${version ? `X-Stream-Protocol-Version: ${PORTFORWARD}\r\n` : ''}\r\n`;
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => {});
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const pod = /\/pods\/([^/]+)\//.exec(req.url ?? '')?.[1];
    if (pod === 'noversion') socket.write(spdy101(false));
    else if (pod === 'eof') {
      socket.write(spdy101(true));
      setTimeout(() => socket.end(), 100);
    } else if (pod === 'tunnel')
      void acceptWebSocket(wss, req, socket, head, TUNNEL_PORTFORWARD).then((ws) => {
        ws.on('ping', () => {
          if (++scripted.pings === 3) ws.close(1000);
        });
        ws.on('close', (code) => {
          scripted.closeCode = code;
        });
        ws.resume();
      });
    else socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  scripted.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return scripted;
}
