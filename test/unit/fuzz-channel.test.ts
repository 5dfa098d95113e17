/**
 * Hostile input for the WebSocket side: the channel codec (every decoder: messages, CLOSE, the port
 * preamble, legacy port lists) with random and mutated real kubectl messages, and the tunnel's
 * byte view fed random message sequences over a real WebSocket pair. Decoders answer with a value
 * or a ChannelProtocolError, never anything else; the tunnel hands on exactly the binary payloads up
 * to the first violation, then errors and closes with 1003.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { WebSocket, WebSocketServer } from 'ws';
import { legacyPorts, validPorts } from '../../src/bridge/legacy-portforward.js';
import {
  CH_CLOSE,
  ChannelProtocolError,
  decodeMessage,
  decodePortPreamble,
  encodeMessage,
  parseClosePayload,
} from '../../src/channel/codec.js';
import { TunnelStream } from '../../src/channel/tunnel.js';
import { mutated } from '../fixtures/mutate.js';
import { recordedSession, wsDataMessages } from '../fixtures/sessions.js';
import { withTimeout } from '../support/wait.js';

/** Run `fn`; it may return or throw a ChannelProtocolError, nothing else. */
function valueOrProtocolError<T>(fn: () => T): T | ChannelProtocolError {
  try {
    return fn();
  } catch (err) {
    assert.ok(err instanceof ChannelProtocolError, `threw ${(err as Error).name}: ${(err as Error).message}`);
    assert.ok(err.closeCode === 1002 || err.closeCode === 1003);
    return err;
  }
}

test('decodeMessage: random messages decode to a channel and a payload view, null, or a ChannelProtocolError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), fc.boolean(), (bytes, isBinary, base64) => {
      const data = Buffer.from(bytes);
      const r = valueOrProtocolError(() => decodeMessage(data, isBinary, base64));
      if (r === null) assert.equal(data.length, 0);
      else if (!(r instanceof ChannelProtocolError)) {
        if (base64) {
          assert.ok(r.channel >= 0 && r.channel <= 9);
          assert.ok(r.payload.length <= Math.ceil(((data.length - 1) * 3) / 4));
        } else {
          assert.equal(r.channel, data[0]);
          assert.equal(r.payload.length, data.length - 1);
        }
      }
    }),
    { numRuns: 2000 },
  );
});

test('base64 text messages: any string decodes or is refused; what decodes re-encodes to the same bytes', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (text) => {
      const r = valueOrProtocolError(() => decodeMessage(Buffer.from(text, 'latin1'), false, true));
      if (r === null || r instanceof ChannelProtocolError) return;
      const again = decodeMessage(Buffer.from(encodeMessage(r.channel, r.payload, true)), false, true);
      assert.deepEqual(again?.payload, r.payload);
    }),
    { numRuns: 2000 },
  );
});

test('CLOSE payloads, port preambles and legacy port lists: a valid value or a refusal', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 6 }), (bytes) => {
      const b = Buffer.from(bytes);
      const ch = valueOrProtocolError(() => parseClosePayload(b));
      if (typeof ch === 'number') assert.ok(b.length === 1 && ch < 5);
      const port = valueOrProtocolError(() => decodePortPreamble(b));
      if (typeof port === 'number') assert.ok(port >= 0 && port <= 65535 && b.length >= 2);
    }),
    { numRuns: 1000 },
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('ports', 'port', 'x'), fc.string())), (pairs) => {
      const ports = legacyPorts(new URLSearchParams(pairs));
      if (validPorts(ports)) for (const p of ports) assert.ok(Number.isInteger(p) && p > 0 && p < 65536);
    }),
    { numRuns: 1000 },
  );
});

test('legacy port lists: decimal digits only, as the kubelet parses them; at most 128 ports, a channel pair each', () => {
  const parse = (q: string) => legacyPorts(new URLSearchParams(q));
  assert.deepEqual(parse('ports=8080&ports=9090'), [8080, 9090]);
  assert.deepEqual(parse('port=8080,9090'), [8080, 9090]);
  for (const bad of ['0x1f90', '8.08e3', '8080.0', ' 8080', '+8080', '-1', '65536', '0'])
    assert.equal(validPorts(parse(`ports=${encodeURIComponent(bad)}`)), false, bad);
  const many = (n: number) => `port=${Array.from({ length: n }, (_, i) => i + 1).join(',')}`;
  assert.equal(validPorts(parse(many(128))), true);
  // a 129th pair would be channels 256 and 257: bytes 0 and 1, the first pair's
  assert.equal(validPorts(parse(many(129))), false);
});

test('mutated kubectl v5 messages decode like a server decodes them: value, null or ChannelProtocolError', () => {
  const messages = wsDataMessages(recordedSession('websocket-v5-exec'), 'client');
  assert.ok(messages.some((m) => m.data[0] === CH_CLOSE));
  for (const m of messages) {
    fc.assert(
      fc.property(mutated(m.data), fc.boolean(), (data, isBinary) => {
        const r = valueOrProtocolError(() => decodeMessage(data, true, false));
        if (r && !(r instanceof ChannelProtocolError) && r.channel === CH_CLOSE)
          valueOrProtocolError(() => parseClosePayload(r.payload));
        valueOrProtocolError(() => decodeMessage(data, isBinary, true));
      }),
      { numRuns: 300 },
    );
  }
});

// ---- the tunnel's byte view over a real WebSocket pair --------------------------------------------

let wss: WebSocketServer;
let url: string;
const accepted: WebSocket[] = [];

before(async () => {
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  wss.on('connection', (ws) => accepted.push(ws));
  await once(wss, 'listening');
  url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
});

after(() => wss.close());

type Msg = { text: boolean; data: Buffer; fragments: number };

const message: fc.Arbitrary<Msg> = fc.record({
  text: fc.boolean().map((b) => b && Math.random() < 0.2),
  data: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fragments: fc.integer({ min: 1, max: 3 }),
});

async function sendAll(client: WebSocket, msgs: Msg[]): Promise<void> {
  for (const m of msgs) {
    if (client.readyState !== client.OPEN) return;
    const step = Math.max(1, Math.ceil(m.data.length / m.fragments));
    for (let off = 0, i = 0; i < m.fragments; off += step, i++) {
      const fin = i === m.fragments - 1;
      client.send(m.text ? m.data.toString('latin1') : m.data.subarray(off, fin ? undefined : off + step), {
        binary: !m.text,
        fin: m.text || fin,
      });
      if (m.text) break;
    }
  }
}

test('the tunnel reads exactly the binary payloads up to the first text message, then errors with 1003', async () => {
  const recorded = wsDataMessages(recordedSession('tunnel-portforward'), 'client').map(
    (m): Msg => ({ text: !m.binary, data: m.data, fragments: 1 }),
  );
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.array(message, { maxLength: 12 }), fc.constant(recorded)), async (msgs) => {
      const known = accepted.length;
      const client = new WebSocket(url, { perMessageDeflate: false });
      client.on('error', () => {});
      await once(client, 'open');
      const server = accepted[known] ?? (await once(wss, 'connection'))[0];
      const tunnel = new TunnelStream(server as WebSocket);
      const got: Buffer[] = [];
      tunnel.on('data', (d: Buffer) => got.push(d));
      const ended = new Promise<Error | undefined>((resolve) => {
        tunnel.once('error', resolve);
        tunnel.once('end', () => resolve(undefined));
      });
      await sendAll(client, msgs);
      const firstText = msgs.findIndex((m) => m.text);
      const expected = Buffer.concat(msgs.slice(0, firstText < 0 ? undefined : firstText).map((m) => m.data));
      if (firstText < 0) client.close(1000);
      const closeCode = once(client, 'close').then(([code]) => code as number);
      const err = await withTimeout(ended, 2000, 'tunnel end');
      assert.deepEqual(Buffer.concat(got), expected);
      if (firstText >= 0) {
        assert.ok(err instanceof ChannelProtocolError);
        assert.equal(await withTimeout(closeCode, 2000, 'close'), 1003);
      } else {
        assert.equal(err, undefined);
      }
      client.terminate();
    }),
    { numRuns: 60 },
  );
});
