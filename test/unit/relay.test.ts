/** The byte relay: half-closes pass through, and a side that ended never wedges the other. */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { relay } from '../../src/bridge/relay.js';
import { SessionRecord } from '../../src/bridge/session-record.js';
import { silentLogger } from '../../src/observe/logger.js';
import { withTimeout } from '../support/wait.js';

/**
 * A connected pair of TCP sockets on loopback. The accepting side allows half-open, as http.Server's
 * sockets do; the dialing side as told (kubectl keeps writing after our FIN; the http client's
 * upgraded sockets close on the peer's FIN).
 */
async function socketPair(dialerHalfOpen: boolean): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const dialed = net.connect({
    port: (server.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    allowHalfOpen: dialerHalfOpen,
  });
  const inside = await accepted;
  server.close();
  return [inside, dialed];
}

function record() {
  return new SessionRecord(
    { subresource: 'exec', client: 'c', upstream: 'u', mode: 'relay', namespace: 'n', pod: 'p' },
    silentLogger(),
  );
}

test('bytes pass both ways, and the relay ends when both sides closed', async () => {
  const [clientSide, clientPeer] = await socketPair(true);
  const [upstreamPeer, upstreamSide] = await socketPair(false);
  const r = record();
  const done = relay({ client: clientSide, upstream: upstreamSide, clientHead: Buffer.from('h') }, r);
  const got: Buffer[] = [];
  upstreamPeer.on('data', (d: Buffer) => got.push(d));
  clientPeer.write('ello');
  await new Promise((res) => setTimeout(res, 50));
  upstreamPeer.end('bye');
  const back: Buffer[] = [];
  clientPeer.on('data', (d: Buffer) => back.push(d));
  await new Promise((res) => clientPeer.once('end', res));
  clientPeer.end();
  await withTimeout(done, 2000, 'relay end');
  assert.equal(Buffer.concat(got).toString(), 'hello');
  assert.equal(Buffer.concat(back).toString(), 'bye');
  assert.equal(r.bytesIn, 5);
  assert.equal(r.bytesOut, 3);
});

test('data from the client after the upstream ended does not wedge the client socket', async () => {
  const [clientSide, clientPeer] = await socketPair(true);
  const [upstreamPeer, upstreamSide] = await socketPair(false);
  const done = relay({ client: clientSide, upstream: upstreamSide }, record());
  upstreamPeer.resume();
  upstreamPeer.end();
  await new Promise((res) => clientPeer.once('end', res));
  await new Promise((res) => setTimeout(res, 50)); // the upstream socket is fully closed by now
  // what kubectl does at exit, after the upstream is gone: RST frames, later GOAWAY, then FIN
  clientPeer.write(Buffer.alloc(16, 1));
  await new Promise((res) => setTimeout(res, 50));
  clientPeer.end(Buffer.alloc(12, 1));
  await withTimeout(done, 2000, 'relay end');
  assert.equal(clientSide.destroyed, true);
});

test('a client that resets its connection left early (failure); an upstream reset is an error', async () => {
  for (const side of ['client', 'upstream'] as const) {
    const [clientSide, clientPeer] = await socketPair(true);
    const [upstreamPeer, upstreamSide] = await socketPair(false);
    const r = record();
    const done = relay({ client: clientSide, upstream: upstreamSide }, r);
    upstreamPeer.on('error', () => {});
    clientPeer.on('error', () => {});
    clientPeer.on('end', () => clientPeer.end()).resume(); // a client closes once the shim has
    upstreamPeer.write(Buffer.alloc(64 * 1024, 1)); // unread data: closing sends an RST
    await new Promise((res) => setTimeout(res, 50));
    (side === 'client' ? clientPeer : upstreamPeer).resetAndDestroy();
    const reason = await withTimeout(done, 2000, 'relay end');
    assert.match(reason, new RegExp(`^${side} connection failed: .*ECONNRESET`));
    assert.equal(r.outcome, side === 'client' ? 'failure' : 'error', side);
  }
});
