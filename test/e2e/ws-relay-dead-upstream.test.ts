/**
 * A relayed WebSocket exec whose upstream ends without a status — its connection closed (FIN) or
 * its Close sent — is a failure the client is told of (docs/design.md, rule 1): a Failure status on
 * channel 3, encoded for the client's protocol, then a Close; the session line says error. An
 * upstream that sends its status is relayed untouched. Real sockets: a real shim in front of a
 * scripted WebSocket upstream, a `ws` client.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import WebSocket from 'ws';
import { CH_ERROR, CH_STDOUT, decodeMessage, encodeClose, encodeMessage } from '../../src/channel/codec.js';
import { wsSocket } from '../../src/channel/ws-internals.js';
import { RC_BASE64, RC_V4, RC_V4_BASE64, RC_V5 } from '../../src/k8s/protocols.js';
import { decodeStatus, SUCCESS_STATUS_JSON } from '../../src/k8s/status.js';
import { startWsExecUpstream } from '../support/scripted-upstream.js';
import { startTestShim } from '../support/shim.js';
import { waitFor, withTimeout } from '../support/wait.js';

const OUTPUT = 'output before the end\n';

/** What a client saw, in order: messages (channel, payload, text or binary), then the Close code. */
interface Seen {
  messages: { channel: number; payload: string; binary: boolean }[];
  closeCode: number;
}

/** An exec as a `ws` client on `protocol`; stdin is closed (v5 CLOSE) at once, or the client leaves. */
function exec(url: string, protocol: string, leave = false): Promise<Seen> {
  const base64 = protocol.includes('base64');
  const ws = new WebSocket(url, [protocol], { perMessageDeflate: false });
  const messages: Seen['messages'] = [];
  ws.on('message', (data: Buffer, binary) => {
    const m = decodeMessage(data, binary, base64 && !binary); // the scripted upstream’s marker is binary
    if (m) messages.push({ channel: m.channel, payload: m.payload.toString(), binary });
    if (leave && m?.channel === CH_STDOUT) ws.close(1000);
  });
  ws.on('open', () => {
    assert.equal(ws.protocol, protocol);
    if (protocol === RC_V5) ws.send(encodeClose(0));
  });
  const closed = new Promise<Seen>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('close', (closeCode) => resolve({ messages, closeCode }));
  });
  return withTimeout(closed, 5000, `the ${protocol} session to end`).finally(() => ws.terminate());
}

describe('WebSocket exec relayed to an upstream that ends without a status', async () => {
  // each pod name is a script: send the output, then end as it says
  const upstream = await startWsExecUpstream(
    ({ ws, protocol, query }) => {
      const send = (channel: number, text: string) => {
        const base64 = protocol.includes('base64');
        ws.send(encodeMessage(channel, Buffer.from(text), base64), { binary: !base64 });
      };
      const end = query.get('end');
      send(CH_STDOUT, OUTPUT);
      if (end === 'fin') setTimeout(() => ws.terminate(), 50);
      else if (end === 'reset') setTimeout(() => (wsSocket(ws) as Socket).resetAndDestroy(), 50);
      else if (end === 'close') setTimeout(() => ws.close(1000), 50);
      else if (end === 'status') {
        send(CH_ERROR, SUCCESS_STATUS_JSON);
        ws.close(1000);
      }
      // 'wait': until the client leaves
    },
    [RC_V5, RC_V4, RC_V4_BASE64, RC_BASE64],
  );
  const shim = await startTestShim(upstream.url, 'websocket');
  after(async () => {
    await shim.close();
    await upstream.close();
  });
  let n = 0;
  /** A fresh pod name per session, to find its session line. */
  const session = (end: string) => {
    const pod = `p${++n}`;
    const url = `${shim.url.replace('http', 'ws')}/api/v1/namespaces/default/pods/${pod}/exec?command=x&stdin=true&stdout=true&end=${end}`;
    const line = () =>
      waitFor(`${pod}'s session line`, () => shim.sessionLines().find((l) => l['pod'] === pod));
    return { url, line };
  };

  for (const protocol of [RC_V5, RC_V4, RC_V4_BASE64]) {
    const ends = [
      { end: 'fin', how: 'a FIN', why: /the upstream ended the session without a status/ },
      { end: 'close', how: 'a Close', why: /the upstream ended the session without a status/ },
      { end: 'reset', how: 'a reset', why: /the upstream connection failed: .*ECONNRESET/ },
    ];
    for (const { end, how, why } of ends) {
      test(`${protocol}, the upstream ends with ${how}: output, a Failure status, Close 1000`, async () => {
        const s = session(end);
        const seen = await exec(s.url, protocol);
        const data = seen.messages.filter((m) => m.payload.length > 0);
        assert.deepEqual(
          data.map((m) => m.channel),
          [CH_STDOUT, CH_ERROR],
        );
        assert.equal(data[0]!.payload, OUTPUT);
        assert.equal(
          data[1]!.binary,
          !protocol.includes('base64'),
          'the status in the protocol’s kind of message',
        );
        const status = decodeStatus(data[1]!.payload);
        assert.equal(status.kind, 'failure');
        assert.match(status.kind === 'failure' ? status.message : '', why);
        assert.equal(seen.closeCode, 1000);
        const line = await s.line();
        assert.equal(line['mode'], 'relay');
        assert.equal(line['outcome'], 'error');
        assert.match(String(line['statusGuard']), /^sent the client a Failure status: /);
        assert.match(String(line['statusGuard']), why);
      });
    }
    test(`${protocol}, the upstream sends its status: relayed untouched, a success`, async () => {
      const s = session('status');
      const seen = await exec(s.url, protocol);
      const status = seen.messages.filter((m) => m.channel === CH_ERROR);
      assert.deepEqual(
        status.map((m) => m.payload),
        [SUCCESS_STATUS_JSON],
      );
      assert.equal(seen.closeCode, 1000);
      const line = await s.line();
      assert.equal(line['outcome'], 'success');
      assert.equal(line['exitCode'], 0);
      assert.equal(line['statusGuard'], undefined);
    });
  }

  test('the client leaves first: the upstream’s Close answers it, nothing is put in', async () => {
    const s = session('wait');
    const seen = await exec(s.url, RC_V5, true);
    assert.equal(
      seen.messages.some((m) => m.channel === CH_ERROR),
      false,
    );
    const line = await s.line();
    assert.equal(line['outcome'], 'failure');
    assert.match(String(line['statusGuard']), /the client left before the status/);
  });

  test(`${RC_BASE64} (v1): no status is its success, an ended connection is not a failure`, async () => {
    const s = session('fin');
    const seen = await exec(s.url, RC_BASE64);
    assert.deepEqual(
      seen.messages.filter((m) => m.payload.length > 0).map((m) => m.payload),
      [OUTPUT],
    );
    const line = await s.line();
    assert.equal(line['outcome'], 'success');
    assert.equal(line['statusGuard'], undefined);
  });
});
