/**
 * SPDY client → WebSocket upstream, when the client is slow to open the streams its query promised.
 * The shim dials the upstream before it answers the client, so the command runs at once, and the
 * upstream (the emulator, as x/net does) closes TCP soon after its status. Whatever happens to that
 * socket meanwhile, the client that opens its streams late gets all of the output and the real
 * status; the one that never opens them all gets a Failure when the stream wait (30 s) is over,
 * never a Success with the output dropped (docs/design.md, "Rules that never bend", 1).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { decodeStatus } from '../../src/k8s/status.js';
import { SpdySession, type SpdyStream } from '../../src/spdy/session.js';
import { startTestShim, type TestShim } from '../support/shim.js';
import { readAll } from '../support/spdy-stream.js';
import { waitFor } from '../support/wait.js';

let emu: Emulator;
let shim: TestShim;

before(async () => {
  emu = await startEmulator({ generation: 'modern' });
  // frequent pings: the first one after the upstream's TCP close fails, and the shim's upstream
  // socket is closed (with the output still unread) well before the client opens its last stream
  shim = await startTestShim(emu.url, 'websocket', { keepalive: { intervalMs: 100, timeoutMs: 30_000 } });
});
after(async () => {
  await shim?.close();
  await emu?.close();
});

const SCRIPT = 'echo out; echo err >&2; exit 3';
const EXEC = `/api/v1/namespaces/default/pods/demo/exec?command=sh&command=-c&command=${encodeURIComponent(SCRIPT)}&stdin=true&stdout=true&stderr=true`;

interface Client {
  session: SpdySession;
  socket: Duplex;
  /** Open a stream; undefined when the shim refuses it (its session is over). */
  open(type: string): Promise<SpdyStream | undefined>;
}

/** A SPDY v4 exec client that opens no stream until asked. */
function connect(): Promise<Client> {
  return new Promise((resolve, reject) => {
    const req = http.request(shim.url + EXEC, {
      method: 'POST',
      headers: {
        connection: 'Upgrade',
        upgrade: 'SPDY/3.1',
        'x-stream-protocol-version': 'v4.channel.k8s.io',
      },
    });
    req.once('response', (res) => reject(new Error(`handshake refused: ${res.statusCode}`)));
    req.once('error', reject);
    req.once('upgrade', (_res, socket, head) => {
      const session = new SpdySession(socket, { role: 'client', head });
      resolve({
        session,
        socket,
        open: (type) => session.openStream({ streamtype: type }).catch(() => undefined),
      });
    });
    req.end();
  });
}

/** Every stream the query promised but stdin, opened in kubectl's order. */
async function openAllButStdin(c: Client): Promise<Record<'error' | 'stdout' | 'stderr', SpdyStream>> {
  const error = await c.open('error');
  const stdout = await c.open('stdout');
  const stderr = await c.open('stderr');
  assert.ok(error && stdout && stderr);
  return { error, stdout, stderr };
}

/** The session line of the session that started at `index` of the shim's session lines. */
const sessionLine = (index: number) => waitFor('session line', () => shim.sessionLines()[index], 40_000);

test('a client that opens stdin after the upstream finished gets all of the output and the real status', async () => {
  const index = shim.sessionLines().length;
  const c = await connect();
  try {
    const { error, stdout, stderr } = await openAllButStdin(c);
    const reads = [readAll(stdout, 20_000), readAll(stderr, 20_000), readAll(error, 20_000)];
    // the command is over and, a second later, the upstream's TCP connection too
    await emu.waitForSession((s) => s.command?.[0] === 'sh');
    await sleep(1500);
    const stdin = await c.open('stdin');
    stdin?.end();
    const [out, err, status] = await Promise.all(reads);
    assert.equal(out.toString(), 'out\n');
    assert.equal(err.toString(), 'err\n');
    assert.deepEqual(decodeStatus(status), { kind: 'exit', code: 3 });
    const line = await sessionLine(index);
    assert.equal(line['client'], 'spdy/v4.channel.k8s.io');
    assert.equal(line['upstream'], 'websocket/v5.channel.k8s.io');
    assert.equal(line['outcome'], 'exit-code');
    assert.equal(line['exitCode'], 3);
  } finally {
    c.socket.destroy();
  }
});

test('a client that never opens stdin gets a Failure at the end of the stream wait, never Success', async () => {
  const index = shim.sessionLines().length;
  const c = await connect();
  try {
    const { error, stdout, stderr } = await openAllButStdin(c);
    const reads = [readAll(stdout, 40_000), readAll(stderr, 40_000), readAll(error, 40_000)];
    const [out, err, status] = await Promise.all(reads);
    assert.equal(out.length, 0);
    assert.equal(err.length, 0);
    const decoded = decodeStatus(status);
    assert.equal(decoded.kind, 'failure');
    assert.match(
      decoded.kind === 'failure' ? decoded.message : '',
      /timed out waiting for client to create streams \(3 of 4\)/,
    );
    const line = await sessionLine(index);
    assert.equal(line['outcome'], 'error');
    assert.match(String(line['closeReason']), /timed out waiting for client to create streams/);
    assert.equal(line['exitCode'], undefined);
  } finally {
    c.socket.destroy();
  }
});
