/**
 * The exec translators' mapping of statuses and closes, against scripted upstreams over real
 * sockets: success, exit codes, legacy protocols, an upstream that drops mid-stream, and a client
 * that disconnects.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import {
  CH_ERROR,
  CH_STDERR,
  CH_STDIN,
  CH_STDOUT,
  decodeMessage,
  encodeClose,
} from '../../src/channel/codec.js';
import { decodeStatus, encodeStatus, exitCodeStatus, SUCCESS_STATUS_JSON } from '../../src/k8s/status.js';
import { connectSpdyExec, connectWsExec } from '../support/exec-clients.js';
import { startSpdyExecUpstream, startWsExecUpstream } from '../support/scripted-upstream.js';
import { startTestShim } from '../support/shim.js';
import { waitFor, withTimeout } from '../support/wait.js';

const EXEC = '/api/v1/namespaces/default/pods/p/exec?command=cat&stdin=true&stdout=true&stderr=true';

describe('WebSocket client → SPDY upstream', async () => {
  // The upstream script is chosen per session by the command in the query.
  const upstream = await startSpdyExecUpstream(({ session, socket, streams, query }) => {
    const stdin = streams.get('stdin');
    const stdout = streams.get('stdout')!;
    const error = streams.get('error')!;
    const command = query.get('command');
    if (command === 'cat') {
      stdin?.on('data', (d: Buffer) => stdout.write(d));
      stdin?.on('end', () => {
        streams.get('stderr')?.write('to stderr');
        error.write(SUCCESS_STATUS_JSON);
        session.close();
      });
    } else if (command === 'exit3') {
      error.write(encodeStatus(exitCodeStatus(3, ['exit3'])));
      session.close();
    } else if (command === 'drop') {
      stdout.write('partial output');
      setTimeout(() => socket.destroy(), 50);
    } else if (command === 'silent') {
      stdout.write('output');
      setTimeout(() => session.close(), 50); // RST + GOAWAY, but no status
    }
    // 'hang': nothing; the client will go away
  });
  const shim = await startTestShim(upstream.url, 'spdy');
  after(async () => {
    await shim.close();
    await upstream.close();
  });
  const url = (cmd: string, extra = '') =>
    `${shim.url.replace('http', 'ws')}${EXEC.replace('command=cat', `command=${cmd}`)}${extra}`;

  test('v5: stdin, CLOSE as FIN, stdout, stderr, then the status and Close 1000', async () => {
    const c = await connectWsExec(url('cat'), ['v5.channel.k8s.io']);
    assert.equal(c.ws.protocol, 'v5.channel.k8s.io');
    c.send(CH_STDIN, 'hello\n');
    c.closeStdin();
    const r = await withTimeout(c.done, 5000, 'session end');
    assert.equal(r.closeCode, 1000);
    assert.equal(c.text(CH_STDOUT), 'hello\n');
    assert.equal(c.text(CH_STDERR), 'to stderr');
    assert.equal(c.text(CH_ERROR), SUCCESS_STATUS_JSON);
    // the established marker arrived as the first (empty) stdout message and was not data
    assert.equal(r.channels.get(CH_STDOUT)![0]!.length, 0);
    const line = await waitFor('session line', () =>
      shim.sessionLines().find((s) => s['client'] === 'websocket/v5.channel.k8s.io'),
    );
    assert.equal(line['upstream'], 'spdy/v4.channel.k8s.io');
    assert.equal(line['exitCode'], 0);
    assert.equal(line['bytesIn'], 6);
    assert.equal(line['bytesOut'], 6 + 9);
  });

  test('exit code 3 reaches the client as NonZeroExitCode', async () => {
    const c = await connectWsExec(url('exit3'), ['v5.channel.k8s.io']);
    await withTimeout(c.done, 5000, 'session end');
    assert.deepEqual(decodeStatus(c.text(CH_ERROR)), { kind: 'exit', code: 3 });
  });

  test('an upstream that drops mid-stream gives a Failure status, never success', async () => {
    const c = await connectWsExec(url('drop'), ['v5.channel.k8s.io']);
    const r = await withTimeout(c.done, 5000, 'session end');
    assert.equal(c.text(CH_STDOUT), 'partial output');
    const status = decodeStatus(c.text(CH_ERROR));
    assert.equal(status.kind, 'failure');
    assert.equal(r.closeCode, 1000);
  });

  test('an upstream that ends without a status is a failure (v4+ always writes one)', async () => {
    const c = await connectWsExec(url('silent'), ['v5.channel.k8s.io']);
    await withTimeout(c.done, 5000, 'session end');
    const status = decodeStatus(c.text(CH_ERROR));
    assert.equal(status.kind, 'failure');
    assert.match(status.kind === 'failure' ? status.message : '', /without a status/);
  });

  test('legacy channel.k8s.io: nothing on success, text on failure', async () => {
    const ok = await connectWsExec(url('cat'), ['channel.k8s.io']);
    ok.send(CH_STDIN, 'x');
    // v1 cannot half-close stdin: the client closes when it has what it wants
    await waitFor('echo', () => ok.text(CH_STDOUT) === 'x');
    ok.ws.close();
    const fail = await connectWsExec(url('exit3'), ['channel.k8s.io']);
    await withTimeout(fail.done, 5000, 'session end');
    assert.match(fail.text(CH_ERROR), /exit code 3/);
    assert.equal(decodeStatus(fail.text(CH_ERROR)).kind, 'invalid'); // plain text, not JSON
  });

  test('base64 protocol: text frames both ways', async () => {
    const c = await connectWsExec(url('exit3'), ['v4.base64.channel.k8s.io'], true);
    await withTimeout(c.done, 5000, 'session end');
    assert.equal(c.ws.protocol, 'v4.base64.channel.k8s.io');
    assert.deepEqual(decodeStatus(c.text(CH_ERROR)), { kind: 'exit', code: 3 });
  });

  test('a malformed CLOSE ends only that session, with a protocol error close', async () => {
    const c = await connectWsExec(url('hang'), ['v5.channel.k8s.io']);
    c.ws.send(Buffer.from([255, 9]));
    const r = await withTimeout(c.done, 5000, 'session end');
    assert.equal(r.closeCode, 1002);
    const again = await connectWsExec(url('exit3'), ['v5.channel.k8s.io']);
    await withTimeout(again.done, 5000, 'next session');
    assert.deepEqual(decodeStatus(again.text(CH_ERROR)), { kind: 'exit', code: 3 });
  });

  test('a session ended by the shim (shutdown) gives the client a Failure status with the reason', async () => {
    const c = await connectWsExec(url('hang'), ['v5.channel.k8s.io']);
    await waitFor('session registered', () => shim.sessions.size > 0);
    shim.sessions.abortAll('kubeshim is shutting down');
    await withTimeout(c.done, 5000, 'session end');
    const status = decodeStatus(c.text(CH_ERROR));
    assert.equal(status.kind, 'failure');
    assert.match(status.kind === 'failure' ? status.message : '', /shutting down/);
    assert.equal(await shim.sessions.whenIdle(1000), true);
  });

  test('a client that disconnects resets the upstream streams and closes its socket', async () => {
    const before = new Set(upstream.sockets);
    const c = await connectWsExec(url('hang'), ['v5.channel.k8s.io']);
    const upstreamSocket = await waitFor('upstream socket', () =>
      [...upstream.sockets].find((s) => !before.has(s)),
    );
    c.ws.terminate();
    await waitFor(
      'upstream socket closed',
      () => upstreamSocket.destroyed && !upstream.sockets.has(upstreamSocket),
      2000,
    );
  });
});

describe('SPDY client → WebSocket upstream', async () => {
  const upstream = await startWsExecUpstream(({ ws, query }) => {
    const command = query.get('command');
    const send = (ch: number, s: string | Buffer) =>
      ws.send(Buffer.concat([Buffer.from([ch]), Buffer.from(s)]));
    if (command === 'cat') {
      ws.on('message', (data: Buffer) => {
        const m = decodeMessage(data, true, false);
        if (!m) return;
        if (m.channel === CH_STDIN) send(CH_STDOUT, m.payload);
        if (m.channel === 255 && encodeClose(0).equals(data)) {
          send(CH_STDERR, 'eof seen');
          send(CH_ERROR, SUCCESS_STATUS_JSON);
          ws.close(1000);
        }
      });
    } else if (command === 'exit3') {
      send(CH_ERROR, encodeStatus(exitCodeStatus(3)));
      ws.close(1000);
    } else if (command === 'drop') {
      send(CH_STDOUT, 'partial output');
      setTimeout(() => ws.terminate(), 50);
    }
  });
  const shim = await startTestShim(upstream.url, 'websocket');
  after(async () => {
    await shim.close();
    await upstream.close();
  });
  const url = (cmd: string) => shim.url + EXEC.replace('command=cat', `command=${cmd}`);
  const TYPES = ['error', 'stdin', 'stdout', 'stderr'];

  test('v4: stdin FIN becomes CLOSE, output and JSON status come back', async () => {
    const c = await connectSpdyExec(url('cat'), ['v5.channel.k8s.io', 'v4.channel.k8s.io'], TYPES);
    assert.equal(c.protocol, 'v4.channel.k8s.io'); // v5 is never answered over SPDY
    c.streams.get('stdin')!.end('hello');
    assert.equal((await c.read('stdout')).toString(), 'hello');
    assert.equal((await c.read('stderr')).toString(), 'eof seen');
    assert.equal((await c.read('error')).toString(), SUCCESS_STATUS_JSON);
    const line = await waitFor('session line', () =>
      shim.sessionLines().find((s) => s['client'] === 'spdy/v4.channel.k8s.io'),
    );
    assert.equal(line['upstream'], 'websocket/v5.channel.k8s.io');
  });

  test('exit code 3 reaches a v4 client as JSON, a v2 client as text', async () => {
    const v4 = await connectSpdyExec(url('exit3'), ['v4.channel.k8s.io'], TYPES);
    assert.deepEqual(decodeStatus(await v4.read('error')), { kind: 'exit', code: 3 });
    const v2 = await connectSpdyExec(url('exit3'), ['v2.channel.k8s.io'], TYPES);
    assert.match((await v2.read('error')).toString(), /exit code 3/);
  });

  test('an upstream that drops mid-stream gives an InternalError status', async () => {
    const c = await connectSpdyExec(url('drop'), ['v4.channel.k8s.io'], TYPES);
    assert.equal((await c.read('stdout')).toString(), 'partial output');
    const status = decodeStatus(await c.read('error'));
    assert.equal(status.kind, 'failure');
  });

  test('a client that disconnects closes the upstream WebSocket', async () => {
    const c = await connectSpdyExec(url('hang'), ['v4.channel.k8s.io'], TYPES);
    const before = shim.sessionLines().length;
    c.socket.destroy();
    const line = await waitFor('session line', () => shim.sessionLines()[before], 2000);
    assert.match(String(line['closeReason']), /client/);
  });
});

describe('SPDY client → SPDY upstream (relayed byte for byte)', async () => {
  const upstream = await startSpdyExecUpstream(({ session, streams, query }) => {
    if (query.get('command') === 'silent') {
      streams.get('stdout')!.write('output');
      setTimeout(() => session.close(), 50); // RST + GOAWAY, but no status
    }
  });
  const shim = await startTestShim(upstream.url, 'spdy');
  after(async () => {
    await shim.close();
    await upstream.close();
  });

  test('an upstream that ends without a status: the guard tells the client, the session line says error', async () => {
    const url = shim.url + EXEC.replace('command=cat', 'command=silent');
    const c = await connectSpdyExec(url, ['v4.channel.k8s.io'], ['error', 'stdin', 'stdout', 'stderr']);
    assert.equal((await c.read('stdout')).toString(), 'output');
    const status = decodeStatus(await c.read('error'));
    assert.equal(status.kind, 'failure');
    assert.match(status.kind === 'failure' ? status.message : '', /without a status/);
    c.socket.destroy();
    const line = await waitFor('session line', () => shim.sessionLines()[0]);
    assert.equal(line['mode'], 'relay');
    assert.equal(line['outcome'], 'error');
    assert.match(String(line['statusGuard']), /Failure status/);
  });
});
