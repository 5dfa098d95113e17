/**
 * A WebSocket client that breaks the framing is named in the session line: the closeReason says
 * what was wrong (an invalid opcode, a message over the 32 MiB limit), not "closed (1006)".
 * Raw frames over a real handshake, into each translation a WebSocket client reaches: exec, legacy
 * port-forward (channel pairs) and the port-forward tunnel, in front of the emulator over SPDY.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { startTestShim, type TestShim } from '../support/shim.js';
import { waitFor } from '../support/wait.js';

let emu: Emulator;
let shim: TestShim;

before(async () => {
  emu = await startEmulator({ generation: 'spdy' });
  shim = await startTestShim(emu.url, 'spdy');
});

after(async () => {
  await shim?.close();
  await emu?.close();
});

/** A WebSocket handshake by hand; resolves with the socket once the 101 came. */
async function handshake(path: string, protocol: string): Promise<net.Socket> {
  const socket = net.connect(Number(new URL(shim.url).port), '127.0.0.1');
  socket.on('error', () => {});
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`,
  );
  let text = '';
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  await waitFor('the 101', () => text.startsWith('HTTP/1.1 101'), 10_000, 5);
  return socket;
}

/** A masked frame header with `opcode` declaring `length` bytes (64-bit length form). */
function frameHeader(opcode: number, length: number): Buffer {
  const h = Buffer.alloc(14);
  h[0] = 0x80 | opcode;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(length), 2);
  return h; // mask key: zeros
}

const cases = [
  { name: 'an invalid opcode', frame: frameHeader(0x3, 0), reason: /invalid opcode 3$/i },
  {
    name: 'a message over the 32 MiB limit',
    frame: frameHeader(0x2, 64 * 1024 * 1024),
    reason: /max payload size exceeded/i,
  },
];
const paths = [
  {
    name: 'translated exec',
    path: '/api/v1/namespaces/default/pods/demo/exec?command=cat&stdin=1&stdout=1',
    protocol: 'v5.channel.k8s.io',
    said: /^client protocol error: /,
  },
  {
    name: 'legacy port-forward',
    path: '/api/v1/namespaces/default/pods/demo/portforward?ports=8080',
    protocol: 'v4.channel.k8s.io',
    said: /^client protocol error: /,
  },
  {
    // relayed SPDY inside the tunnel: the relay names the client's failure as it does any other
    name: 'port-forward tunnel',
    path: '/api/v1/namespaces/default/pods/demo/portforward',
    protocol: 'SPDY/3.1+portforward.k8s.io',
    said: /^client connection failed: /,
  },
];

for (const p of paths) {
  for (const c of cases) {
    test(`${p.name}: ${c.name} is the session's closeReason`, async () => {
      const before = shim.sessionLines().length;
      const socket = await handshake(p.path, p.protocol);
      socket.write(c.frame);
      const line = await waitFor('the session line', () => shim.sessionLines()[before], 10_000);
      socket.destroy();
      assert.match(String(line['closeReason']), p.said);
      assert.match(String(line['closeReason']), c.reason);
      assert.equal(line['outcome'], 'error');
    });
  }
}
