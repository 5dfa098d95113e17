/**
 * The passive SPDY tap (src/spdy/tap.ts) and its two users, the status guard and the port-forward
 * observer: frames of both directions with their offsets, bytes left as they are, and the two ways
 * a watch ends told apart — bytes that are not SPDY (the peer's doing) and a listener that throws
 * (a bug of ours: the session ends as an internal error, never a protocol error, and nothing throws
 * into the relay).
 */
import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { test } from 'node:test';
import { PortForwardObserver } from '../../src/bridge/portforward-observer.js';
import { SessionRecord } from '../../src/bridge/session-record.js';
import { SpdyStatusGuard } from '../../src/bridge/spdy-status-guard.js';
import { remoteCommandVersion } from '../../src/k8s/protocols.js';
import type { Logger } from '../../src/observe/logger.js';
import { FLAG_FIN, GoAwayStatus, RstStatus, SpdyProtocolError } from '../../src/spdy/constants.js';
import {
  dataFrameHeader,
  goAwayFrame,
  pingFrame,
  rstStreamFrame,
  synStreamFrame,
} from '../../src/spdy/frame-writer.js';
import { HeaderCompressor } from '../../src/spdy/header-block.js';
import { SpdyTap, type TapDirectionName } from '../../src/spdy/tap.js';

const data = (id: number, payload: string, flags = 0) =>
  Buffer.concat([dataFrameHeader(id, flags, payload.length), Buffer.from(payload)]);

/** A logger that keeps its lines by level. */
function capturingLogger(): { log: Logger; lines: Record<string, unknown[][]> } {
  const lines: Record<string, unknown[][]> = { error: [], warn: [], info: [], debug: [] };
  const log = Object.fromEntries(
    Object.keys(lines).map((level) => [level, (...args: unknown[]) => lines[level]!.push(args)]),
  ) as unknown as Logger;
  return { log, lines };
}

function sessionRecord(log: Logger): { record: SessionRecord; aborted: string[] } {
  const record = new SessionRecord(
    { subresource: 'exec', client: 'spdy/x', upstream: 'spdy/x', mode: 'relay', namespace: 'ns', pod: 'p' },
    log,
  );
  const aborted: string[] = [];
  record.onAbort((reason) => aborted.push(reason));
  return { record, aborted };
}

test('the tap reports both directions with offsets; payloads are slices of the chunks, left unchanged', () => {
  const syn = synStreamFrame(1, 0, 0, new HeaderCompressor().compress({ streamtype: 'stdin' }));
  const fromClient = Buffer.concat([syn, data(1, 'hello'), pingFrame(1)]);
  const seen: unknown[][] = [];
  const tap = new SpdyTap({
    client: {
      onSynStream: (id, headers, offset) => seen.push(['client syn', id, headers['streamtype'], offset]),
      onData: (id, payload, fin, offset) => {
        const inside = payload.byteOffset - fromClient.byteOffset;
        assert.ok(
          payload.buffer === fromClient.buffer && inside >= 0 && inside < fromClient.length,
          'a slice of the relayed chunk, not a copy',
        );
        seen.push(['client data', id, payload.toString(), fin, offset]);
      },
      onPing: (id, offset) => seen.push(['client ping', id, offset]),
    },
    upstream: {
      onData: (id, payload, fin, offset) => seen.push(['upstream data', id, payload.toString(), fin, offset]),
      onRstStream: (id, status, offset) => seen.push(['upstream rst', id, status, offset]),
      onGoAway: (last, status, offset) => seen.push(['upstream goaway', last, status, offset]),
    },
    onUnreadable: (d, err) => assert.fail(`${d}: ${err.message}`),
    onInternalError: (d, err) => assert.fail(`${d}: ${String(err)}`),
  });
  const copy = Buffer.from(fromClient);
  // split inside the DATA payload: its two pieces both carry the frame's offset
  const cut = syn.length + 8 + 2;
  tap.client.watch(fromClient.subarray(0, cut));
  tap.client.watch(fromClient.subarray(cut));
  assert.ok(fromClient.equals(copy), 'the relayed bytes are not changed');
  tap.upstream.watch(Buffer.concat([data(1, 'out', FLAG_FIN), rstStreamFrame(1, RstStatus.CANCEL)]));
  assert.equal(tap.upstream.bytesWatched, 11 + 16);
  assert.ok(tap.upstream.atFrameBoundary);
  tap.upstream.watch(dataFrameHeader(3, 0, 100));
  assert.equal(tap.upstream.dataMissing, 100);
  assert.deepEqual(seen, [
    ['client syn', 1, 'stdin', 0],
    ['client data', 1, 'he', false, syn.length],
    ['client data', 1, 'llo', false, syn.length],
    ['client ping', 1, syn.length + 13],
    ['upstream data', 1, 'out', true, 0],
    ['upstream rst', 1, RstStatus.CANCEL, 11],
  ]);
});

test('bytes that are not SPDY end the watch as unreadable; a throwing listener as a listener error', () => {
  const ends: [string, TapDirectionName, unknown][] = [];
  const bug = new Error('a bug in a listener');
  const tap = (onPing: () => void) =>
    new SpdyTap({
      client: { onPing },
      upstream: {},
      onUnreadable: (d, err) => ends.push(['unreadable', d, err]),
      onInternalError: (d, err) => ends.push(['listener', d, err]),
    });

  const garbled = tap(() => {});
  garbled.upstream.watch(Buffer.concat([dataFrameHeader(0, 0, 1), Buffer.from('x')])); // DATA on stream 0
  assert.equal(ends.length, 1);
  assert.equal(ends[0]![0], 'unreadable');
  assert.equal(ends[0]![1], 'upstream');
  assert.ok(ends[0]![2] instanceof SpdyProtocolError);
  assert.equal(garbled.active, false);

  ends.length = 0;
  let pings = 0;
  const buggy = tap(() => {
    pings++;
    throw bug;
  });
  assert.doesNotThrow(() => buggy.client.watch(Buffer.concat([pingFrame(1), pingFrame(3)])));
  assert.deepEqual(ends, [['listener', 'client', bug]]);
  assert.equal(buggy.active, false);
  buggy.client.watch(pingFrame(5));
  assert.equal(pings, 1, 'nothing read after the bug');
});

test('status guard: a bug in what reads the streams ends the session as an internal error, logged as a bug', () => {
  const { log, lines } = capturingLogger();
  const { record, aborted } = sessionRecord(log);
  const guard = new SpdyStatusGuard(
    remoteCommandVersion('v4.channel.k8s.io')!,
    new PassThrough(),
    log,
    record,
  );
  const bug = new Error('a bug reading stdout');
  guard.exec.fromUpstream = () => {
    throw bug;
  };
  const compressor = new HeaderCompressor();
  guard.onClientData(synStreamFrame(1, 0, 0, compressor.compress({ streamtype: 'stdout' })));
  let forwarded: Buffer[] | undefined;
  assert.doesNotThrow(() => {
    forwarded = guard.onUpstreamData(data(1, 'output'));
  });
  assert.equal(forwarded, undefined, 'the chunk goes on as it is');
  assert.equal(lines['error']!.length, 1);
  assert.equal((lines['error']![0]![0] as { err: unknown }).err, bug);
  assert.match(String(lines['error']![0]![1]), /^bug: /);
  assert.equal(record.outcome, 'error');
  assert.deepEqual(aborted, ['internal error in the status guard: a bug reading stdout']);
  assert.ok(!JSON.stringify(lines).includes('protocol'), 'not reported as a protocol error');
  assert.doesNotThrow(() => guard.onUpstreamEnd(undefined));
});

test('port-forward observer: a bug while counting ends the session as an internal error, logged as a bug', () => {
  const { log, lines } = capturingLogger();
  const { record, aborted } = sessionRecord(log);
  const observer = new PortForwardObserver(record, log, 'spdy');
  const bug = new Error('a bug counting a connection');
  (observer as unknown as { onStreamOpened: () => void }).onStreamOpened = () => {
    throw bug;
  };
  const { hooks } = observer;
  const syn = synStreamFrame(1, 0, 0, new HeaderCompressor().compress({ streamtype: 'data', port: '80' }));
  assert.doesNotThrow(() => hooks.onClientData?.(syn));
  assert.equal(lines['error']!.length, 1);
  assert.equal((lines['error']![0]![0] as { err: unknown }).err, bug);
  assert.equal(record.outcome, 'error');
  assert.deepEqual(aborted, ['internal error in the port-forward observer: a bug counting a connection']);
  assert.doesNotThrow(() => hooks.onUpstreamData?.(data(1, 'x')));
});

test('port-forward observer: a client naming thousands of ports cannot flood the log or the session line', () => {
  const { log, lines } = capturingLogger();
  const { record } = sessionRecord(log);
  const { hooks } = new PortForwardObserver(record, log, 'spdy');
  const compressor = new HeaderCompressor();
  const n = 2000;
  for (let i = 0; i < n; i++) {
    const id = 2 * i + 1;
    const headers = { streamtype: 'data', port: String(1000 + i), requestid: String(i) };
    hooks.onClientData?.(synStreamFrame(id, 0, FLAG_FIN, compressor.compress(headers)));
    hooks.onUpstreamData?.(rstStreamFrame(id, RstStatus.CANCEL));
  }
  const extra = (record as unknown as { extra: Record<string, unknown> }).extra;
  assert.equal((extra['ports'] as number[]).length, 64, 'ports with figures of their own');
  assert.equal((extra['otherPorts'] as { connections: number }).connections, n - 64);
  assert.equal(extra['connections'], n, 'every connection still counted');
  const connectionLines = lines['info']!.filter((l) => l[1] === 'port-forward connection');
  assert.equal(connectionLines.length, 1000);
  assert.equal(
    lines['warn']!.filter((l) => String(l[1]).startsWith('port-forward connections: no more')).length,
    1,
  );
});

test('status guard: an upstream that ends without a status gets one put in, unless the client left first', async () => {
  const v4 = remoteCommandVersion('v4.channel.k8s.io')!;
  const errorSyn = () => synStreamFrame(1, 0, 0, new HeaderCompressor().compress({ streamtype: 'error' }));
  const upstreamReset = rstStreamFrame(1, RstStatus.CANCEL);

  // the client is still there: a Failure status goes in before the upstream's reset
  const stayed = sessionRecord(capturingLogger().log);
  const guard = new SpdyStatusGuard(v4, new PassThrough(), capturingLogger().log, stayed.record);
  guard.onClientData(errorSyn());
  const put = guard.onUpstreamData(upstreamReset);
  assert.equal(put?.length, 3, 'a status frame between the chunk halves');
  assert.equal(stayed.record.outcome, 'error');

  // the client said GOAWAY first (kubectl cp exits once the archive's end is read): nothing to tell
  const left = sessionRecord(capturingLogger().log);
  const afterGoAway = new SpdyStatusGuard(v4, new PassThrough(), capturingLogger().log, left.record);
  afterGoAway.onClientData(Buffer.concat([errorSyn(), goAwayFrame(0, GoAwayStatus.OK)]));
  assert.equal(afterGoAway.onUpstreamData(upstreamReset), undefined);
  assert.equal(left.record.outcome, 'failure');

  // the client's connection ended (its FIN read, our side still open) before the upstream's clean
  // end: nothing is written to it
  const ended = sessionRecord(capturingLogger().log);
  const written: Buffer[] = [];
  const client = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      written.push(chunk);
      callback();
    },
  });
  const afterFin = new SpdyStatusGuard(v4, client, capturingLogger().log, ended.record);
  afterFin.onClientData(errorSyn());
  client.push(null);
  client.resume();
  await new Promise((resolve) => client.once('end', resolve));
  afterFin.onUpstreamEnd(undefined);
  assert.deepEqual(written, []);
  assert.equal(ended.record.outcome, 'failure');
});
