/**
 * Faults, each with a bound on how fast the shim notices: an upstream killed mid-session (real
 * kubectl, the emulator in a child process killed with SIGKILL), a client killed, an upstream that
 * accepts TCP and never answers, an upstream that stops reading, half-open connections found by
 * missed pings, the idle timeout and the session limit.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { after, describe, test } from 'node:test';
import WebSocket from 'ws';
import { CH_ERROR, CH_STDIN, CH_STDOUT } from '../../src/channel/codec.js';
import { type Generation, startEmulator } from '../../src/emulator/index.js';
import { decodeStatus, SUCCESS_STATUS_JSON } from '../../src/k8s/status.js';
import type { SpdySession } from '../../src/spdy/session.js';
import { connectSpdyExec, connectWsExec } from '../support/exec-clients.js';
import {
  type KubectlVersion,
  type KubeEnv,
  makeKubeEnv,
  runKubectl,
  startKubectl,
} from '../support/kubectl.js';
import { MiB, settledHeap } from '../support/memory.js';
import { REPO } from '../support/processes.js';
import { startSpdyExecUpstream, startWsExecUpstream } from '../support/scripted-upstream.js';
import { startTestShim, type TestShim } from '../support/shim.js';
import { waitFor, withTimeout } from '../support/wait.js';

const EXEC = '/api/v1/namespaces/default/pods/p/exec?stdin=true&stdout=true&stderr=true';
const V5 = 'v5.channel.k8s.io';
const V4 = 'v4.channel.k8s.io';
const SPDY_STREAMS = ['error', 'stdin', 'stdout', 'stderr'];

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const wsUrl = (shim: TestShim, query: string) => `${shim.url.replace(/^http/, 'ws')}${EXEC}${query}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A scripted SPDY upstream, closed at the end with its upgraded sockets. */
async function spdyUpstream(...args: Parameters<typeof startSpdyExecUpstream>) {
  const u = await startSpdyExecUpstream(...args);
  cleanups.push(() => u.close());
  return u;
}

/** A scripted WebSocket upstream, closed at the end with its connections. */
async function wsUpstream(script: Parameters<typeof startWsExecUpstream>[0]) {
  const u = await startWsExecUpstream(script);
  cleanups.push(() => u.close());
  return u;
}

async function shim(upstream: string, mode: 'auto' | 'spdy' | 'websocket', extra = {}): Promise<TestShim> {
  const s = await startTestShim(upstream, mode, extra);
  cleanups.push(() => s.close());
  return s;
}

async function kubeEnv(server: string): Promise<KubeEnv> {
  const k = await makeKubeEnv(server);
  cleanups.push(() => k.cleanup());
  return k;
}

/** The emulator in a process of its own, to be killed with SIGKILL. */
async function emulatorProcess(generation: Generation): Promise<{ url: string; child: ChildProcess }> {
  const script = `const { startEmulator } = await import(${JSON.stringify(`${REPO}/src/emulator/index.ts`)});
const emu = await startEmulator({ generation: ${JSON.stringify(generation)} });
process.stdout.write(emu.url + '\\n');`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const url = await waitFor('the emulator process URL', () => /^(http\S+)\n/.exec(out)?.[1], 20_000);
  return { url, child };
}

describe('an upstream killed mid-session (SIGKILL): kubectl gets a failure and exits non-zero within 1 s', () => {
  const cases: {
    name: string;
    version: KubectlVersion;
    generation: Generation;
    mode: 'auto' | 'websocket';
  }[] = [
    {
      name: 'kubectl 1.33, WebSocket v5 translated to SPDY',
      version: '1.33',
      generation: 'legacy',
      mode: 'auto',
    },
    { name: 'kubectl 1.28, SPDY relayed', version: '1.28', generation: 'legacy', mode: 'auto' },
    {
      name: 'kubectl 1.28, SPDY translated to WebSocket v5',
      version: '1.28',
      generation: 'modern',
      mode: 'websocket',
    },
    { name: 'kubectl 1.33, WebSocket v5 relayed', version: '1.33', generation: 'modern', mode: 'auto' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const emu = await emulatorProcess(c.generation);
      const s = await shim(emu.url, c.mode);
      const kube = await kubeEnv(s.url);
      const k = startKubectl(
        c.version,
        ['exec', 'demo', '--', 'sh', '-c', 'while echo tick; do sleep 0.1; done'],
        {
          env: kube.env,
        },
      );
      cleanups.push(() => k.stop());
      await waitFor('output through the shim', () => k.output().includes('tick'), 15_000);
      const exited = once(k.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      const killedAt = performance.now();
      emu.child.kill('SIGKILL');
      const [code] = await withTimeout(exited, 5000, 'kubectl to exit');
      const ms = performance.now() - killedAt;
      assert.notEqual(code, 0, `kubectl exited ${code}: ${k.output().slice(-300)}`);
      assert.ok(ms < 1000, `kubectl exited ${ms.toFixed(0)} ms after the upstream died`);
      const line = await waitFor('session line', () => s.sessionLines()[0]);
      assert.match(String(line['closeReason']), /upstream/);
    });
  }
});

describe('a client killed mid-session: the upstream session ends within 1 s', () => {
  for (const version of ['1.33', '1.28'] as const) {
    test(`kubectl ${version} (${version === '1.33' ? 'translated' : 'relayed'}) killed with SIGKILL`, async () => {
      const sessions: { session: SpdySession; socket: Duplex }[] = [];
      const upstream = await spdyUpstream(({ session, socket, streams }) => {
        sessions.push({ session, socket });
        streams.get('stdout')!.write('started\n');
      });
      // the emulator answers kubectl's GET of the pod; the scripted upstream takes the upgrade
      const emu = await startEmulator({ generation: 'legacy' });
      cleanups.push(() => emu.close());
      const front = await splitUpstream(emu.port, upstream.url);
      const s = await shim(front, 'spdy');
      const kube = await kubeEnv(s.url);
      const k = startKubectl(version, ['exec', 'demo', '--', 'sleep', '60'], { env: kube.env });
      cleanups.push(() => k.stop());
      await waitFor('the session to start', () => k.output().includes('started'), 15_000);
      const { session, socket } = sessions[0]!;
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      const killedAt = performance.now();
      k.child.kill('SIGKILL');
      await withTimeout(closed, 2000, 'the upstream socket to close');
      const ms = performance.now() - killedAt;
      assert.ok(ms < 1000, `upstream closed ${ms.toFixed(0)} ms after the client died`);
      assert.ok(session.closed);
    });
  }
});

/**
 * An upstream in front of `apiPort` that sends plain requests there and upgrades to `upgrades`
 * (or, with `upgrades` undefined, accepts them and never answers).
 */
async function splitUpstream(apiPort: number, upgrades?: string): Promise<string> {
  const held: Duplex[] = [];
  const server = http.createServer((req, res) => {
    const up = http.request({
      host: '127.0.0.1',
      port: apiPort,
      path: req.url,
      method: req.method,
      headers: req.headers,
    });
    up.on('response', (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    if (upgrades === undefined) {
      held.push(socket); // accepted, never answered
      return;
    }
    const target = new URL(upgrades);
    const up = net.connect(Number(target.port), target.hostname, () => {
      let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        text += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(`${text}\r\n`);
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('close', () => up.destroy());
    up.on('close', () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const h of held) h.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

describe('an upstream that accepts the upgrade connection and never answers', () => {
  test('kubectl (both protocols) fails after the handshake timeout with a clear error', async () => {
    const emu = await startEmulator({ generation: 'legacy' });
    cleanups.push(() => emu.close());
    const front = await splitUpstream(emu.port);
    const s = await shim(front, 'auto', { handshakeTimeoutMs: 700 });
    const kube = await kubeEnv(s.url);
    for (const version of ['1.28', '1.33'] as const) {
      const started = performance.now();
      const r = await runKubectl(version, ['exec', 'demo', '--', 'true'], {
        env: kube.env,
        timeoutMs: 15_000,
      });
      const ms = performance.now() - started;
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /did not answer the .* upgrade within 700 ms/);
      // 1.33 tries WebSocket, gets the 502, falls back to SPDY: two timeouts
      assert.ok(
        ms < (version === '1.33' ? 3500 : 2500),
        `kubectl ${version} gave up after ${ms.toFixed(0)} ms`,
      );
    }
  });

  test('a raw TCP upstream that never speaks: our clients get a 502 Status saying so', async () => {
    const silent = net.createServer(() => {});
    const sockets: net.Socket[] = [];
    silent.on('connection', (c) => sockets.push(c));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const c of sockets) c.destroy();
      silent.close();
    });
    const s = await shim(`http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, 'spdy', {
      handshakeTimeoutMs: 500,
    });
    const started = performance.now();
    await assert.rejects(connectWsExec(wsUrl(s, '&command=x'), [V5]), /handshake refused: 502/);
    assert.ok(performance.now() - started < 1500);
    const logged = s.logs().find((l) => l['msg'] === 'upstream dial failed');
    assert.match(String(logged?.['err']), /did not answer the SPDY\/3\.1 upgrade within 500 ms/);
    // plain API requests get the same bound on the upstream's answer, and a Status saying why
    const plainStart = performance.now();
    const res = await fetch(`${s.url}/api/v1/namespaces/default/pods`);
    assert.equal(res.status, 502);
    assert.match(((await res.json()) as { message: string }).message, /no answer within 500 ms/);
    assert.ok(performance.now() - plainStart < 1500);
  });
});

describe('an upstream that stops reading', () => {
  test('WebSocket client → SPDY upstream: stdin is held back at the client, the shim holds a bounded amount', async () => {
    const upstream = await spdyUpstream(({ socket }) => socket.pause());
    const s = await shim(upstream.url, 'spdy');
    const c = await connectWsExec(wsUrl(s, '&command=stall'), [V5]);
    const accepted = await floodUntilHeld(
      (chunk) => c.send(CH_STDIN, chunk),
      () => c.ws.bufferedAmount,
    );
    assert.ok(accepted < 64 * MiB, `${(accepted / MiB).toFixed(1)} MiB accepted before the client was held`);
    c.ws.terminate();
  });

  test('SPDY client → WebSocket upstream: the same, the other way round', async () => {
    const upstream = await wsUpstream(({ ws }) => ws.pause());
    const s = await shim(upstream.url, 'websocket');
    const c = await connectSpdyExec(`${s.url}${EXEC}&command=stall`, [V4], SPDY_STREAMS);
    const stdin = c.streams.get('stdin')!;
    const accepted = await floodUntilHeld(
      (chunk) => stdin.write(chunk),
      () => stdin.writableLength,
    );
    assert.ok(accepted < 64 * MiB, `${(accepted / MiB).toFixed(1)} MiB accepted before the client was held`);
    c.socket.destroy();
  });
});

/**
 * Write 64 KiB chunks while the client's own buffer stays under 1 MiB, until the client has been
 * held back for a second; the shim's heap may not grow while the writer keeps trying. Returns the
 * bytes that got past the client.
 */
async function floodUntilHeld(write: (chunk: Buffer) => void, buffered: () => number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const before = await settledHeap();
  let written = 0;
  let heldSince = performance.now();
  let heapWhenHeld: number | undefined;
  while (performance.now() - heldSince < 1000) {
    if (written > 512 * MiB) throw new Error('the client was never held back');
    if (buffered() > MiB) {
      heapWhenHeld ??= await settledHeap();
      await sleep(20);
    } else {
      write(chunk);
      written += chunk.length;
      heldSince = performance.now();
      heapWhenHeld = undefined;
    }
  }
  const after = await settledHeap();
  assert.ok(after - before < 24 * MiB, `heap grew ${((after - before) / MiB).toFixed(1)} MiB`);
  assert.ok(after - (heapWhenHeld ?? after) < 4 * MiB, 'flat while held');
  return written - buffered();
}

describe('half-open connections, found by missed pings (short timeouts)', () => {
  const pings = { spdyPingMs: 100, spdyPingTimeoutMs: 500, keepalive: { intervalMs: 100, timeoutMs: 500 } };

  test('a SPDY upstream that stops answering: the WebSocket client gets a Failure status within 1 s', async () => {
    const upstream = await spdyUpstream(({ socket, streams }) => {
      streams.get('stdout')!.write('alive\n');
      setTimeout(() => socket.pause(), 50); // no more reading, so no more PING echoes
    });
    const s = await shim(upstream.url, 'spdy', pings);
    const c = await connectWsExec(wsUrl(s, '&command=x'), [V5]);
    await waitFor('output', () => c.text(CH_STDOUT) === 'alive\n');
    const started = performance.now();
    await withTimeout(c.done, 2000, 'session end');
    assert.ok(performance.now() - started < 1000);
    const status = decodeStatus(c.text(CH_ERROR));
    assert.equal(status.kind, 'failure');
    assert.match(status.kind === 'failure' ? status.message : '', /did not answer PING/);
  });

  test('a WebSocket upstream that stops answering: the SPDY client gets a Failure status within 1 s', async () => {
    const upstream = await wsUpstream(({ ws }) => {
      ws.send(Buffer.from('\x01alive\n'));
      setTimeout(() => ws.pause(), 50); // pings stay unread: no pongs
    });
    const s = await shim(upstream.url, 'websocket', pings);
    const c = await connectSpdyExec(`${s.url}${EXEC}&command=x`, [V4], SPDY_STREAMS);
    const started = performance.now();
    const error = await withTimeout(c.read('error'), 2000, 'the status');
    assert.ok(performance.now() - started < 1000);
    const status = decodeStatus(error.toString());
    assert.equal(status.kind, 'failure');
    assert.match(status.kind === 'failure' ? status.message : '', /no pong/);
  });

  test('a WebSocket client that stops answering: the upstream session ends within 1 s', async () => {
    const closed: Promise<void>[] = [];
    const upstream = await spdyUpstream(({ socket }) => {
      closed.push(new Promise((r) => socket.once('close', () => r())));
    });
    const s = await shim(upstream.url, 'spdy', pings);
    const c = await connectWsExec(wsUrl(s, '&command=x'), [V5]);
    await waitFor('the upstream session', () => closed.length > 0);
    const started = performance.now();
    c.ws.pause(); // the client's pongs stop
    await withTimeout(closed[0]!, 2000, 'upstream close');
    assert.ok(performance.now() - started < 1000);
    c.ws.terminate();
  });
});

describe('the idle timeout (--idle-timeout)', () => {
  test('ends a session without data either way, with a Failure status saying so; a busy one stays', async () => {
    const upstream = await spdyUpstream(({ streams }) => {
      const stdout = streams.get('stdout')!;
      streams.get('stdin')?.on('data', (d: Buffer) => stdout.write(d));
    });
    const s = await shim(upstream.url, 'spdy', { idleTimeoutMs: 400 });
    const idle = await connectWsExec(wsUrl(s, '&command=x'), [V5]);
    const busy = await connectWsExec(wsUrl(s, '&command=x'), [V5]);
    const timer = setInterval(() => busy.send(CH_STDIN, '.'), 100);
    cleanups.push(() => clearInterval(timer));
    const started = performance.now();
    await withTimeout(idle.done, 2000, 'the idle session to end');
    const ms = performance.now() - started;
    assert.ok(ms >= 350 && ms < 1000, `ended after ${ms.toFixed(0)} ms`);
    const status = decodeStatus(idle.text(CH_ERROR));
    assert.match(status.kind === 'failure' ? status.message : '', /no data in either direction for 400 ms/);
    await sleep(600);
    assert.equal(busy.ws.readyState, WebSocket.OPEN, 'the busy session is still open');
    clearInterval(timer);
    busy.ws.close();
  });

  test('a relayed SPDY session gets its Failure status through the status guard', async () => {
    const upstream = await spdyUpstream(() => {}, V4);
    const s = await shim(upstream.url, 'spdy', { idleTimeoutMs: 300 });
    const c = await connectSpdyExec(`${s.url}${EXEC}&command=x`, [V4], SPDY_STREAMS);
    const error = await withTimeout(c.read('error'), 2000, 'the status');
    const status = decodeStatus(error.toString());
    const message = status.kind === 'failure' ? status.message : '';
    assert.match(
      message,
      /kubeshim ended the session: no data in either direction for 300 ms \(--idle-timeout\)$/,
    );
    assert.doesNotMatch(message, /upstream connection failed/);
  });

  test('a relayed WebSocket session gets its Failure status and a Close between frames', async () => {
    const upstream = await wsUpstream(() => {});
    const s = await shim(upstream.url, 'websocket', { idleTimeoutMs: 300 });
    const c = await connectWsExec(wsUrl(s, '&command=x'), [V5]);
    await withTimeout(c.done, 2000, 'the idle session to end');
    const status = decodeStatus(c.text(CH_ERROR));
    const message = status.kind === 'failure' ? status.message : '';
    assert.match(
      message,
      /kubeshim ended the session: no data in either direction for 300 ms \(--idle-timeout\)$/,
    );
    const line = await waitFor('the session line', () => s.sessionLines()[0]);
    assert.equal(line['mode'], 'relay');
  });

  test('a relayed WebSocket session: pings and empty messages are not data, stdin is', async () => {
    const upstream = await wsUpstream(() => {});
    const s = await shim(upstream.url, 'websocket', { idleTimeoutMs: 400 });
    const idle = await connectWsExec(wsUrl(s, '&command=x'), [V5]);
    const busy = await connectWsExec(wsUrl(s, '&command=x'), [V5]);
    // what kubectl 1.30+ sends every 5 s, and what a client might send to look busy
    const timer = setInterval(() => {
      idle.ws.ping();
      idle.send(CH_STDIN, '');
      busy.send(CH_STDIN, '.');
    }, 100);
    cleanups.push(() => clearInterval(timer));
    await withTimeout(idle.done, 3000, 'the pinging session to end');
    const status = decodeStatus(idle.text(CH_ERROR));
    assert.match(status.kind === 'failure' ? status.message : '', /no data in either direction for 400 ms/);
    await sleep(600);
    assert.equal(busy.ws.readyState, WebSocket.OPEN, 'the session with stdin is still open');
    clearInterval(timer);
    busy.ws.close();
  });
});

describe('the session limit (--max-sessions)', () => {
  test('over the limit: 503 before any upgrade, for kubectl too; a place frees up when a session ends', async () => {
    const upstream = await spdyUpstream(({ streams, session }) => {
      streams.get('stdin')?.resume();
      streams.get('stdin')?.on('end', () => {
        streams.get('error')!.write(SUCCESS_STATUS_JSON);
        session.close();
      });
    });
    const emu = await startEmulator({ generation: 'legacy' });
    cleanups.push(() => emu.close());
    const front = await splitUpstream(emu.port, upstream.url);
    const s = await shim(front, 'spdy', { maxSessions: 2 });
    const held = [
      await connectWsExec(wsUrl(s, '&command=x'), [V5]),
      await connectWsExec(wsUrl(s, '&command=x'), [V5]),
    ];
    await assert.rejects(connectWsExec(wsUrl(s, '&command=x'), [V5]), /handshake refused: 503/);
    const kube = await kubeEnv(s.url);
    const r = await runKubectl('1.28', ['exec', 'demo', '--', 'true'], { env: kube.env, timeoutMs: 15_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /at its limit of 2 sessions/);
    held[0]!.closeStdin();
    await withTimeout(held[0]!.done, 2000, 'a session to end');
    await waitFor('a free place', () => s.sessions.size < 2);
    const again = await connectWsExec(wsUrl(s, '&command=x'), [V5]);
    again.closeStdin();
    await withTimeout(again.done, 2000, 'the new session');
    held[1]!.ws.terminate();
  });
});
