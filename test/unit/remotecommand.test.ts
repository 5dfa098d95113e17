/**
 * The remotecommand rules and the pipe, without sockets: which streams a query promises, the
 * status bytes per version, and backpressure from a congested sink to its source.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CH_ERROR, CH_STDERR, CH_STDOUT } from '../../src/channel/codec.js';
import {
  RC_V1,
  RC_V2,
  RC_V4,
  type RemoteCommandVersion,
  remoteCommandVersion,
} from '../../src/k8s/protocols.js';
import { exitCodeStatus, SUCCESS_STATUS_JSON, successStatus } from '../../src/k8s/status.js';
import { pipe, type Sink, type Source } from '../../src/remotecommand/flow.js';
import { statusBytes } from '../../src/remotecommand/status.js';
import { establishedChannel, promisedStreams } from '../../src/remotecommand/streams.js';

const v = (name: string): RemoteCommandVersion => remoteCommandVersion(name)!;
const wants = (w: Partial<{ stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }>) => ({
  stdin: false,
  stdout: false,
  stderr: false,
  tty: false,
  ...w,
});

describe('promised streams', () => {
  test("client-go's order; stderr never with a TTY; resize with a TTY from v3", () => {
    assert.deepEqual(promisedStreams(wants({ stdin: true, stdout: true, stderr: true }), v(RC_V4)), [
      'error',
      'stdin',
      'stdout',
      'stderr',
    ]);
    const tty = wants({ stdin: true, stdout: true, stderr: true, tty: true });
    assert.deepEqual(promisedStreams(tty, v(RC_V4)), ['error', 'stdin', 'stdout', 'resize']);
    assert.deepEqual(promisedStreams(tty, v(RC_V2)), ['error', 'stdin', 'stdout']);
  });

  test('the established message goes to the lowest writable channel', () => {
    assert.equal(establishedChannel(wants({ stdout: true, stderr: true })), CH_STDOUT);
    assert.equal(establishedChannel(wants({ stderr: true })), CH_STDERR);
    assert.equal(establishedChannel(wants({ stderr: true, tty: true })), CH_ERROR);
  });
});

describe('status bytes', () => {
  test('JSON from v4 (the upstream bytes untouched), text on failure only before', () => {
    assert.equal(String(statusBytes({ status: successStatus() }, v(RC_V4))), SUCCESS_STATUS_JSON);
    const raw = Buffer.from('{"status":"Success","metadata":{}}');
    assert.equal(statusBytes({ status: successStatus(), raw }, v(RC_V4)), raw);
    assert.equal(statusBytes({ status: successStatus() }, v(RC_V1)), null);
    assert.match(String(statusBytes({ status: exitCodeStatus(3) }, v(RC_V1))), /exit code 3$/);
  });
});

describe('pipe', () => {
  test('a congested sink pauses the source until it has flushed; the end half-closes the sink', () => {
    let data: (chunk: Buffer) => void = () => {};
    let end: () => void = () => {};
    const events: string[] = [];
    const source: Source = {
      read: (d, e) => {
        data = d;
        end = e;
      },
      pause: () => events.push('pause'),
      resume: () => events.push('resume'),
    };
    let congested = true;
    let flushed: (() => void) | undefined;
    const sink: Sink = {
      write: (chunk) => {
        events.push(`write ${chunk}`);
        return !congested;
      },
      afterFlush: (next) => {
        flushed = next;
      },
      end: () => events.push('end'),
    };
    const tapped: string[] = [];
    pipe(source, sink, (chunk) => tapped.push(String(chunk)));
    data(Buffer.from('a'));
    data(Buffer.from('b')); // still arriving while paused: written, no second wait
    congested = false;
    flushed!();
    data(Buffer.from('c'));
    end();
    assert.deepEqual(events, ['write a', 'pause', 'write b', 'resume', 'write c', 'end']);
    assert.deepEqual(tapped, ['a', 'b', 'c']);
  });
});
