/** Our channel frames, read by a real `ws` peer: both roles, every length encoding, and the 32 KiB split. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { sendChannel } from '../../src/channel/send.js';
import { withTimeout } from '../support/wait.js';

let wss: WebSocketServer;
let serverSide: WebSocket;
let clientSide: WebSocket;

before(async () => {
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const accepted = new Promise<WebSocket>((r) => wss.once('connection', r));
  clientSide = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  await new Promise((r) => clientSide.once('open', r));
  serverSide = await accepted;
});

after(() => {
  clientSide.terminate();
  wss.close();
});

const SIZES = [0, 1, 124, 125, 126, 127, 65533, 65534, 65535, 65536, 100_000, 1 << 20];

function receive(ws: WebSocket, count: number): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    const on = (data: Buffer, isBinary: boolean) => {
      assert.equal(isBinary, true);
      got.push(data);
      if (got.length === count) {
        ws.off('message', on);
        resolve(got);
      }
    };
    ws.on('message', on);
  });
}

/** What the receiver must reassemble: [channel] + payload, in ≤ 32 KiB messages. */
function expected(channel: number, payload: Buffer): Buffer[] {
  if (payload.length === 0) return [Buffer.from([channel])];
  const out: Buffer[] = [];
  for (let off = 0; off < payload.length; off += 32 * 1024) {
    out.push(Buffer.concat([Buffer.from([channel]), payload.subarray(off, off + 32 * 1024)]));
  }
  return out;
}

for (const [name, from, to] of [
  ['server → client (unmasked)', () => serverSide, () => clientSide],
  ['client → server (masked)', () => clientSide, () => serverSide],
] as const) {
  test(`${name}: every length encoding arrives intact`, async () => {
    for (const size of SIZES) {
      const payload = randomBytes(size);
      const want = expected(7, payload);
      const got = receive(to(), want.length);
      sendChannel(from(), 7, payload, false);
      assert.deepEqual(await withTimeout(got, 5000, `frames of ${size}`), want, `size ${size}`);
    }
  });
}

test('base64 protocols still go as text frames', async () => {
  const got = new Promise<[Buffer, boolean]>((r) =>
    clientSide.once('message', (d: Buffer, b: boolean) => r([d, b])),
  );
  sendChannel(serverSide, 1, Buffer.from('\n'), true);
  const [data, isBinary] = await got;
  assert.equal(isBinary, false);
  assert.equal(data.toString(), '1Cg==');
  const marker = new Promise<Buffer>((r) => clientSide.once('message', (d: Buffer) => r(d)));
  sendChannel(serverSide, 1, Buffer.alloc(0), true);
  assert.equal((await marker).toString(), '1', 'an empty payload is one message: the established marker');
});
