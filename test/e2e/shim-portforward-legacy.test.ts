/**
 * Legacy WebSocket port-forward clients (`ports=` in the query, channel pairs with the 2-byte port
 * preamble, docs/protocols.md §4.2), written with `ws`, through the shim's translator to clusters that
 * cannot carry them: a SPDY-only path (the translator opens a data and an error stream per port with
 * our SPDY client role) and, with the shim told to use SPDY, a WebSocket-only path (the same SPDY
 * session inside the tunnel). What the client sees must be what the CRI itself would send. Against a
 * scripted SPDY upstream: the error stream flows only toward the client (§9), keepalives run on both
 * legs, and an upstream that dies mid-forward is reported on the error channels, not hidden.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { decodeMessage, encodeMessage } from '../../src/channel/codec.js';
import { type Emulator, type Generation, startEmulator } from '../../src/emulator/index.js';
import { SpdySession, type SpdyStream } from '../../src/spdy/session.js';
import type { UpstreamMode } from '../../src/upstream/choice.js';
import { startTestShim, type TestShim } from '../support/shim.js';
import { waitFor, withTimeout } from '../support/wait.js';

const V4 = 'v4.channel.k8s.io';
const V4_BASE64 = 'v4.base64.channel.k8s.io';
const PATH = '/api/v1/namespaces/default/pods/demo/portforward';
const HTTP_GET = Buffer.from('GET / HTTP/1.0\r\n\r\n');

interface Pair {
  emu: Emulator;
  shim: TestShim;
}

const pairs = new Map<string, Pair>();

async function pair(generation: Generation, mode: UpstreamMode): Promise<Pair> {
  const key = `${generation}/${mode}`;
  let p = pairs.get(key);
  if (!p) {
    const emu = await startEmulator({ generation });
    p = { emu, shim: await startTestShim(emu.url, mode) };
    pairs.set(key, p);
  }
  return p;
}

after(async () => {
  for (const p of pairs.values()) {
    await p.shim.close();
    await p.emu.close();
  }
});

describe('legacy client → shim (auto) → SPDY-only cluster', () => {
  for (const protocol of [V4, V4_BASE64]) {
    test(`${protocol}: two ports at once — 1 MB echoed byte-exact on one, HTTP on the other`, async () => {
      const { emu, shim } = await pair('spdy', 'auto');
      assert.ok(await shim.sessions.whenIdle(10_000), 'earlier sessions ended');
      const since = shim.sessionLines().length;
      const served = emu.sessions.length;
      const c = await connectLegacy(shim.url, [8080, 80], protocol);
      assert.equal(c.protocol, protocol);
      const payload = randomBytes(1024 * 1024);
      for (let off = 0; off < payload.length; off += 32 * 1024)
        c.send(0, payload.subarray(off, off + 32 * 1024));
      c.send(2, HTTP_GET);
      await waitFor('the echo', () => c.payload(0).length >= payload.length, 20_000);
      await waitFor(
        'the HTTP response',
        () => c.payload(2).toString().endsWith('hello from pod demo\n'),
        10_000,
      );
      assert.ok(c.payload(0).equals(payload));
      assert.deepEqual(c.preambles(), [8080, 8080, 80, 80]);
      assert.equal(c.payload(1).length + c.payload(3).length, 0, 'no error text');
      c.ws.close(1000);
      const line = await waitFor('the session line', () => shim.sessionLines()[since], 10_000);
      assert.deepEqual(
        {
          client: line['client'],
          upstream: line['upstream'],
          mode: line['mode'],
          portForwardStats: line['portForwardStats'],
          ports: line['ports'],
          connections: line['connections'],
          forwards: line['forwards'],
        },
        {
          client: `websocket/${protocol}`,
          upstream: 'spdy/portforward.k8s.io',
          mode: 'translate',
          portForwardStats: 'translator',
          ports: [8080, 80],
          connections: 2,
          forwards: {
            8080: { connections: 1, bytesIn: payload.length, bytesOut: payload.length, errors: 0 },
            80: { connections: 1, bytesIn: HTTP_GET.length, bytesOut: c.payload(2).length, errors: 0 },
          },
        },
      );
      const s = await waitFor('the emulator session', () => emu.sessions[served], 5000);
      assert.equal(
        `${s.transport}/${s.servedBy}/${s.protocol}/${s.connections}`,
        'spdy/cri/portforward.k8s.io/2',
      );
    });

    test(`${protocol}: a port where nothing listens — what the CRI itself sends, then close 1000`, async () => {
      const reference = await pair('legacy', 'auto'); // a 1.28 cluster relays legacy WebSocket to the CRI
      const { shim } = await pair('spdy', 'auto');
      const transcript = async (base: string) => {
        const c = await connectLegacy(base, [80, 9999], protocol);
        c.send(0, HTTP_GET);
        const closed = await withTimeout(c.closed, 10_000, 'the server to close');
        return { closed: closed.code, ...c.transcript() };
      };
      const direct = await transcript(reference.emu.url);
      const shimmed = await transcript(shim.url);
      assert.match(
        direct.channels[3]!,
        /^error forwarding port 9999 to pod SANDBOX, uid : .*connection refused/,
      );
      assert.match(direct.channels[0]!, /^HTTP\/1\.1 200 OK/);
      assert.deepEqual(shimmed, direct);
      assert.equal(direct.closed, 1000);
    });
  }
});

describe('legacy client → shim (spdy) → WebSocket-only cluster', () => {
  test('SPDY is refused, so the translator runs its SPDY session inside the tunnel', async () => {
    const { emu, shim } = await pair('websocket', 'spdy');
    const since = shim.sessionLines().length;
    const c = await connectLegacy(shim.url, [8080], V4);
    c.send(0, Buffer.from('through the tunnel\n'));
    await waitFor('the echo', () => c.payload(0).toString() === 'through the tunnel\n', 10_000);
    c.ws.close(1000);
    const line = await waitFor('the session line', () => shim.sessionLines()[since], 10_000);
    assert.equal(line['client'], `websocket/${V4}`);
    assert.equal(line['upstream'], 'websocket/SPDY/3.1+portforward.k8s.io');
    const served = await emu.waitForSession((s) => s.subresource === 'portforward');
    assert.equal(`${served.transport}/${served.servedBy}`, 'websocket/tunnel');
    assert.equal(served.connections, 1);
  });
});

describe('legacy translator against a scripted SPDY upstream', () => {
  let upstream: ScriptedPortForward;
  let shim: TestShim;
  before(async () => {
    upstream = await startScriptedPortForward();
    shim = await startTestShim(upstream.url, 'spdy', {
      keepalive: { intervalMs: 50, timeoutMs: 5000 },
      spdyPingMs: 50,
    });
  });
  after(async () => {
    await shim?.close();
    await upstream?.close();
  });

  test('the error stream flows only toward the client; pings on both legs', async () => {
    upstream.script = (data) => data.pipe(data);
    const c = await connectLegacy(shim.url, [7000], V4);
    c.send(1, Buffer.from('from the client on the error channel'));
    c.send(0, Buffer.from('hello'));
    await waitFor('the echo', () => c.payload(0).toString() === 'hello', 10_000);
    await waitFor('pings on both legs', () => c.pings() >= 3 && upstream.pings >= 3, 10_000);
    c.ws.close(1000);
    await withTimeout(c.closed, 5000, 'close');
    const [error, data] = upstream.streams;
    assert.deepEqual(error?.headers, { streamtype: 'error', port: '7000', requestid: '0' });
    assert.deepEqual(data?.headers, { streamtype: 'data', port: '7000', requestid: '0' });
    assert.equal(error.received, 0, 'nothing was written on the error stream');
    assert.equal(
      error.endedBeforeData,
      true,
      'the error stream was half-closed before the data stream opened',
    );
    assert.equal(data.received, 'hello'.length);
  });

  for (const how of ['reset', 'end'] as const) {
    test(`the upstream connection ${how === 'reset' ? 'is reset' : 'ends'} mid-forward: the client is told on the error channel, and the WebSocket closes`, async () => {
      assert.ok(await shim.sessions.whenIdle(10_000), 'earlier sessions ended');
      const since = shim.sessionLines().length;
      upstream.script = (data, socket) => {
        data.once('data', () => (how === 'reset' ? socket.resetAndDestroy() : socket.end()));
      };
      const c = await connectLegacy(shim.url, [7000, 7001], V4);
      c.send(0, Buffer.from('anyone there?'));
      const closed = await withTimeout(c.closed, 10_000, 'the WebSocket to close').finally(() =>
        c.ws.terminate(),
      );
      assert.equal(closed.code, 1011);
      assert.match(c.payload(1).toString(), /upstream connection/);
      assert.match(c.payload(3).toString(), /upstream connection/);
      const line = await waitFor('the session line', () => shim.sessionLines()[since], 5000);
      assert.equal(line['outcome'], 'error');
    });
  }
});

// ---- a legacy client --------------------------------------------------------------------------------

interface LegacyClient {
  ws: WebSocket;
  protocol: string;
  send(channel: number, data: Buffer): void;
  /** The port preambles of every channel, in channel order. */
  preambles(): number[];
  /** What a channel carried after its preamble. */
  payload(channel: number): Buffer;
  /** Each channel's content after its preamble, as text with the Date header and pod ids masked. */
  transcript(): { preambles: number[]; channels: Record<number, string> };
  pings(): number;
  closed: Promise<{ code: number; reason: string }>;
}

function connectLegacy(base: string, ports: number[], protocol: string): Promise<LegacyClient> {
  const base64 = protocol === V4_BASE64;
  const query = ports.map((p) => `ports=${p}`).join('&');
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}${PATH}?${query}`, [protocol], {
    perMessageDeflate: false,
  });
  const messages = new Map<number, Buffer[]>();
  let pings = 0;
  ws.on('ping', () => pings++);
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    const m = decodeMessage(raw, isBinary, base64);
    if (m === null) return;
    messages.set(m.channel, [...(messages.get(m.channel) ?? []), Buffer.from(m.payload)]);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const channels = () => [...messages.keys()].sort((a, b) => a - b);
  const payload = (channel: number) => Buffer.concat((messages.get(channel) ?? []).slice(1));
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res: IncomingMessage) =>
      reject(new Error(`handshake refused: ${res.statusCode}`)),
    );
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        ws,
        protocol: ws.protocol,
        send: (channel, data) => ws.send(encodeMessage(channel, data, base64), { binary: !base64 }),
        preambles: () => channels().map((ch) => messages.get(ch)![0]!.readUInt16LE(0)),
        payload,
        transcript: () => ({
          preambles: channels().map((ch) => messages.get(ch)![0]!.readUInt16LE(0)),
          channels: Object.fromEntries(channels().map((ch) => [ch, mask(payload(ch).toString())])),
        }),
        pings: () => pings,
        closed,
      }),
    );
  });
}

function mask(text: string): string {
  return text
    .replace(/^Date: .*$/m, 'Date: DATE\r')
    .replace(/[0-9a-f]{64}/g, 'SANDBOX')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'UID');
}

// ---- a scripted SPDY port-forward upstream ----------------------------------------------------------

interface SeenStream {
  headers: Record<string, string>;
  received: number;
  /** Error streams: the client half-closed it before it opened the pair's data stream. */
  endedBeforeData?: boolean;
}

interface ScriptedPortForward {
  url: string;
  /** Streams of the latest session, in the order they were opened. */
  streams: SeenStream[];
  /** PINGs from the shim, all sessions. */
  pings: number;
  /** What happens to each data stream (after it was answered). */
  script: (data: SpdyStream, socket: Socket) => void;
  close(): Promise<void>;
}

/** Answers the SPDY port-forward upgrade (§2.1), replies to every stream, records what arrives on it. */
async function startScriptedPortForward(): Promise<ScriptedPortForward> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const scripted: ScriptedPortForward = {
    url: '',
    streams: [],
    pings: 0,
    script: () => {},
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('upgrade', (_req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => {});
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n',
    );
    const session = new SpdySession(socket, { role: 'server', head });
    const streams: SeenStream[] = [];
    scripted.streams = streams;
    const errorStreams = new Map<string, SpdyStream>();
    session.on('ping', () => scripted.pings++);
    session.on('stream', (stream) => {
      stream.reply();
      const seen: SeenStream = { headers: { ...stream.headers }, received: 0 };
      streams.push(seen);
      const request = stream.headers['requestid'] ?? '';
      stream.on('data', (d: Buffer) => {
        seen.received += d.length;
      });
      if (stream.streamType === 'error') {
        errorStreams.set(request, stream);
        return;
      }
      const error = streams.find(
        (s) => s.headers['streamtype'] === 'error' && s.headers['requestid'] === request,
      );
      if (error) error.endedBeforeData = errorStreams.get(request)?.remoteClosed;
      scripted.script(stream, socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  scripted.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return scripted;
}
