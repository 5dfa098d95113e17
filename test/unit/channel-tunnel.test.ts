/**
 * TunnelStream (docs/protocols.md §4.3): the byte-stream view of a WebSocket, over a real ws
 * server/client pair on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { ChannelProtocolError } from '../../src/channel/codec.js';
import { TunnelStream } from '../../src/channel/tunnel.js';
import { wsSocket } from '../../src/channel/ws-internals.js';
import { waitFor, withTimeout } from '../support/wait.js';

interface Pair {
  /** Server side, wrapped in a TunnelStream. */
  tunnel: TunnelStream;
  /** Client side, a plain ws WebSocket. */
  client: WebSocket;
}

async function pair(t: { after(fn: () => unknown): void }, highWaterMark?: number): Promise<Pair> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const port = (wss.address() as { port: number }).port;
  const accepted = once(wss, 'connection');
  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  const [ws] = (await accepted) as [WebSocket];
  await once(client, 'open');
  const tunnel = new TunnelStream(ws, highWaterMark);
  t.after(() => {
    client.terminate();
    tunnel.destroy();
    wss.close();
  });
  return { tunnel, client };
}

function collect(stream: TunnelStream): { bytes: () => Buffer } {
  const parts: Buffer[] = [];
  stream.on('data', (d: Buffer) => parts.push(d));
  return { bytes: () => Buffer.concat(parts) };
}

test('binary message payloads concatenate into one byte stream; message boundaries mean nothing', async (t) => {
  const { tunnel, client } = await pair(t);
  const got = collect(tunnel);
  const pieces = ['SY', 'N_STR', 'EAM', '', 'x'.repeat(100_000), 'end'];
  for (const p of pieces) client.send(Buffer.from(p), { binary: true });
  const want = pieces.join('');
  await waitFor('all bytes', () => got.bytes().length === want.length);
  assert.equal(got.bytes().toString(), want);
});

test('fragmented messages are reassembled (gorilla style: one big non-final frame, then an empty final one)', async (t) => {
  const { tunnel, client } = await pair(t);
  const got = collect(tunnel);
  const big = randomBytes(32 * 1024);
  client.send(big, { binary: true, fin: false });
  client.send(Buffer.alloc(0), { binary: true, fin: true });
  const small = [randomBytes(4096), randomBytes(4096), randomBytes(100)];
  client.send(small[0]!, { binary: true, fin: false });
  client.send(small[1]!, { binary: true, fin: false });
  client.send(small[2]!, { binary: true, fin: true });
  const want = Buffer.concat([big, ...small]);
  await waitFor('all bytes', () => got.bytes().length === want.length);
  assert.deepEqual(got.bytes(), want);
});

test('each write becomes one binary message; end() closes with 1000', async (t) => {
  const { tunnel, client } = await pair(t);
  const messages: [Buffer, boolean][] = [];
  client.on('message', (data: Buffer, isBinary: boolean) => messages.push([data, isBinary]));
  const closed = once(client, 'close');
  tunnel.write(Buffer.from('one'));
  tunnel.write(Buffer.from('two'));
  tunnel.end(Buffer.from('three'));
  const [code] = await withTimeout(closed, 3000, 'client close');
  assert.equal(code, 1000);
  assert.deepEqual(
    messages.map(([d, b]) => [d.toString(), b]),
    [
      ['one', true],
      ['two', true],
      ['three', true],
    ],
  );
});

test('a text message is a protocol error: the stream errors and the WebSocket closes with 1003', async (t) => {
  const { tunnel, client } = await pair(t);
  const got = collect(tunnel);
  client.send(Buffer.from('bytes first'), { binary: true });
  await waitFor('binary bytes', () => got.bytes().length === 11);
  const errored = once(tunnel, 'error');
  const clientClosed = once(client, 'close');
  client.send('not allowed');
  const [err] = await withTimeout(errored, 3000, 'tunnel error');
  assert.ok(err instanceof ChannelProtocolError);
  assert.equal((err as ChannelProtocolError).closeCode, 1003);
  const [code] = await withTimeout(clientClosed, 3000, 'client close');
  assert.ok(code === 1003 || code === 1006, `close code ${code}`);
  assert.equal(tunnel.destroyed, true);
});

test('the peer closing ends the readable side after the data, with the close code kept', async (t) => {
  const { tunnel, client } = await pair(t);
  const got = collect(tunnel);
  client.send(Buffer.from('last words'), { binary: true });
  client.close(1000, 'bye');
  await withTimeout(once(tunnel, 'end'), 3000, 'tunnel end');
  assert.equal(got.bytes().toString(), 'last words');
  assert.equal(tunnel.closeCode, 1000);
  assert.equal(tunnel.closeReason, 'bye');
  await waitFor('tunnel fully closed (writable side ended too)', () => tunnel.closed, 3000);
});

test('backpressure in: an unread tunnel pauses the WebSocket, memory stays bounded, reading resumes it', async (t) => {
  const hwm = 64 * 1024;
  const { tunnel, client } = await pair(t, hwm);
  const clientSocket = wsSocket(client);
  const total = 32 * 1024 * 1024;
  const chunk = randomBytes(32 * 1024);
  const sentHash = createHash('sha256');
  let sent = 0;
  // send only while the client's socket takes it, as a well-behaved writer does
  const pump = async () => {
    while (sent < total) {
      client.send(chunk, { binary: true });
      sentHash.update(chunk);
      sent += chunk.length;
      if (clientSocket.writableNeedDrain) await once(clientSocket, 'drain');
    }
  };
  const pumping = pump();
  await waitFor('server WebSocket paused', () => tunnel.ws.isPaused, 5000);
  await new Promise((r) => setTimeout(r, 300));
  const stalledAt = sent;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sent, stalledAt, 'the writer stalled');
  assert.ok(sent < total / 2, `${sent} of ${total} bytes went out`);
  assert.ok(tunnel.readableLength <= hwm + 64 * 1024, `tunnel holds ${tunnel.readableLength} bytes`);

  const gotHash = createHash('sha256');
  let got = 0;
  tunnel.on('data', (d: Buffer) => {
    gotHash.update(d);
    got += d.length;
  });
  await waitFor('all bytes', () => got === total, 30_000);
  await pumping;
  assert.equal(gotHash.digest('hex'), sentHash.digest('hex'));
});

test('backpressure out: writes wait while the peer does not read, and finish once it does', async (t) => {
  const { tunnel, client } = await pair(t);
  client.pause();
  const total = 32 * 1024 * 1024;
  const chunk = randomBytes(64 * 1024);
  let written = 0;
  let done = false;
  const pump = async () => {
    while (written < total) {
      if (!tunnel.write(chunk)) await once(tunnel, 'drain');
      written += chunk.length;
    }
    done = true;
  };
  const pumping = pump();
  await new Promise((r) => setTimeout(r, 500));
  const stalledAt = written;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(written, stalledAt, 'the writer stalled');
  assert.equal(done, false);
  assert.ok(written < total / 2, `${written} of ${total} bytes were accepted`);

  let got = 0;
  client.on('message', (d: Buffer) => {
    got += d.length;
  });
  client.resume();
  await withTimeout(pumping, 30_000, 'writer finished');
  await waitFor('all bytes', () => got === total, 30_000);
});
