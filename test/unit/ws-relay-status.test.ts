/**
 * The WebSocket exec relay's hooks put a Failure status just before an upstream's Close that came
 * without one, wherever the Close lies in the chunk read; a Close begun in an earlier chunk is
 * already on its way, and the session is an error all the same (docs/design.md, rule 1).
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { RelayedExec, wsExecRelayHooks } from '../../src/bridge/relayed-exec.js';
import { SessionRecord } from '../../src/bridge/session-record.js';
import { CH_ERROR, CH_STDOUT, encodeMessage } from '../../src/channel/codec.js';
import { serverFrame } from '../../src/channel/ws-frame.js';
import { RC_V5, remoteCommandVersion } from '../../src/k8s/protocols.js';
import { decodeStatus, SUCCESS_STATUS_JSON } from '../../src/k8s/status.js';
import { silentLogger } from '../../src/observe/logger.js';
import { capturedLogger } from '../support/captured-log.js';

const STDOUT = serverFrame(encodeMessage(CH_STDOUT, Buffer.from('output'), false));
const CLOSE = Buffer.from([0x88, 0x02, 0x03, 0xe8]);

function hooks() {
  const { log, lines } = capturedLogger();
  const record = new SessionRecord(
    { subresource: 'exec', client: 'c', upstream: 'u', mode: 'relay', namespace: 'n', pod: 'p' },
    log,
  );
  const version = remoteCommandVersion(RC_V5)!;
  const exec = new RelayedExec(version, record);
  const h = wsExecRelayHooks(exec, version, new PassThrough(), silentLogger());
  return { record, exec, h, lines };
}

test('a Close after output in one chunk: the Failure status goes between them', () => {
  const { record, exec, h } = hooks();
  const pieces = h.onUpstreamData!(Buffer.concat([STDOUT, CLOSE]));
  assert.ok(pieces);
  assert.equal(pieces.length, 3);
  assert.deepEqual(pieces[0], STDOUT);
  assert.deepEqual(pieces[2], CLOSE);
  const status = pieces[1]!;
  assert.equal(status[0], 0x82); // a binary frame, FIN
  assert.equal(status[4], CH_ERROR); // after a 16-bit length
  const decoded = decodeStatus(status.subarray(5));
  assert.equal(decoded.kind, 'failure');
  h.onUpstreamEnd!(undefined);
  exec.settle();
  assert.equal(record.outcome, 'error');
});

test('a Close whose header began in an earlier chunk: nothing put in, the session an error', async () => {
  const { record, exec, h, lines } = hooks();
  assert.equal(h.onUpstreamData!(Buffer.concat([STDOUT, CLOSE.subarray(0, 1)])), undefined);
  assert.equal(h.onUpstreamData!(CLOSE.subarray(1)), undefined);
  h.onUpstreamEnd!(undefined);
  exec.settle();
  record.finish('upstream closed the connection');
  await new Promise((r) => setImmediate(r));
  const line = lines.find((l) => l['msg'] === 'session')!;
  assert.equal(line['outcome'], 'error');
  assert.match(String(line['statusGuard']), /none sent to the client/);
});

test('a status, then the Close, in one chunk: relayed as it is', () => {
  const { record, exec, h } = hooks();
  const status = serverFrame(encodeMessage(CH_ERROR, Buffer.from(SUCCESS_STATUS_JSON), false));
  assert.equal(h.onUpstreamData!(Buffer.concat([STDOUT, status, CLOSE])), undefined);
  h.onUpstreamEnd!(undefined);
  exec.settle();
  assert.equal(record.outcome, 'success');
});
