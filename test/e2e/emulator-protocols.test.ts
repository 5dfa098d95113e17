/**
 * The emulator on the wire, checked with our own clients where kubectl cannot reach: the plain
 * API and its Status errors, the exact handshake answers (docs/protocols.md §2), every legacy
 * WebSocket protocol, v5 CLOSE, SPDY v1–v3 status text, resize, legacy and SPDY port-forward,
 * logs and watches that stream, pings, and processes killed when a client leaves.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { decodeMessage, encodeBinary } from '../../src/channel/codec.js';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { decodeStatus } from '../../src/k8s/status.js';
import { SpdySession } from '../../src/spdy/session.js';
import { connectSpdyExec, connectWsExec } from '../support/exec-clients.js';
import { makeKubeEnv, runKubectl } from '../support/kubectl.js';
import { readAll } from '../support/spdy-stream.js';
import { waitFor, withTimeout } from '../support/wait.js';

let emu: Emulator;
let base: string;
let wsBase: string;
const POD = '/api/v1/namespaces/default/pods/demo';

before(async () => {
  emu = await startEmulator({ generation: 'modern', logIntervalMs: 50, watchIntervalMs: 50 });
  base = emu.url;
  wsBase = base.replace(/^http/, 'ws');
});
after(() => emu?.close());

interface Raw {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
}

/** One request; an upgrade answered with 101 is reported as such and its socket destroyed. */
function request(method: string, path: string, headers: http.OutgoingHttpHeaders = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body }),
      );
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: '' });
    });
    req.on('error', reject);
    req.end();
  });
}

const spdyHeaders = (protocols: string[]) => ({
  connection: 'Upgrade',
  upgrade: 'SPDY/3.1',
  'x-stream-protocol-version': protocols,
});
const wsHeaders = (protocol?: string, extra: http.OutgoingHttpHeaders = {}) => ({
  connection: 'Upgrade',
  upgrade: 'websocket',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
  'sec-websocket-version': '13',
  ...(protocol === undefined ? {} : { 'sec-websocket-protocol': protocol }),
  ...extra,
});
const execPath = (command: string[], flags = 'stdin=true&stdout=true&stderr=true') =>
  `${POD}/exec?${command.map((c) => `command=${encodeURIComponent(c)}`).join('&')}&${flags}`;

describe('plain API', () => {
  test('discovery: /version, /api, /api/v1, /apis; OpenAPI is a fast 404', async () => {
    assert.equal(JSON.parse((await request('GET', '/version')).body).gitVersion, 'v1.33.1');
    const api = JSON.parse((await request('GET', '/api')).body);
    assert.deepEqual(api.versions, ['v1']);
    assert.equal(api.serverAddressByClientCIDRs[0].serverAddress, new URL(base).host);
    const v1 = JSON.parse((await request('GET', '/api/v1')).body);
    const names = v1.resources.map((r: { name: string }) => r.name);
    for (const n of ['pods', 'pods/exec', 'pods/attach', 'pods/portforward', 'pods/log', 'namespaces'])
      assert.ok(names.includes(n), n);
    assert.deepEqual(JSON.parse((await request('GET', '/apis')).body).groups, []);
    const started = Date.now();
    const openapi = await request('GET', '/openapi/v3');
    assert.equal(openapi.status, 404);
    assert.ok(Date.now() - started < 500);
    assert.equal(JSON.parse(openapi.body).reason, 'NotFound');
  });

  test('namespaces and pods: a Running pod demo with its containers and ports', async () => {
    const pod = JSON.parse((await request('GET', POD)).body);
    assert.equal(pod.status.phase, 'Running');
    assert.equal(pod.spec.containers[0].name, 'demo');
    assert.deepEqual(
      pod.spec.containers[0].ports.map((p: { containerPort: number }) => p.containerPort),
      [80, 8080, 9999],
    );
    const list = JSON.parse((await request('GET', '/api/v1/namespaces/default/pods')).body);
    assert.deepEqual(
      list.items.map((p: { metadata: { name: string } }) => p.metadata.name),
      ['demo'],
    );
    const ns = JSON.parse((await request('GET', '/api/v1/namespaces')).body);
    assert.ok(ns.items.some((n: { metadata: { name: string } }) => n.metadata.name === 'default'));
  });

  test('Status errors as the apiserver writes them', async () => {
    const missing = await request('GET', '/api/v1/namespaces/default/pods/nope');
    assert.equal(missing.status, 404);
    assert.deepEqual(JSON.parse(missing.body), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "nope" not found',
      reason: 'NotFound',
      details: { name: 'nope', kind: 'pods' },
      code: 404,
    });
    const plain = await request('POST', execPath(['date']));
    assert.equal(plain.status, 400);
    assert.equal(JSON.parse(plain.body).message, 'Upgrade request required');
    const noCommand = await request('POST', `${POD}/exec?stdout=true`, spdyHeaders(['v4.channel.k8s.io']));
    assert.equal(noCommand.status, 400);
    assert.equal(JSON.parse(noCommand.body).reason, 'BadRequest');
    const badContainer = await request(
      'POST',
      `${execPath(['date'])}&container=nope`,
      spdyHeaders(['v4.channel.k8s.io']),
    );
    assert.equal(JSON.parse(badContainer.body).message, 'container nope is not valid for pod demo');
    const execMissing = await request(
      'POST',
      '/api/v1/namespaces/default/pods/nope/exec?command=date&stdout=true',
      spdyHeaders(['v4.channel.k8s.io']),
    );
    assert.equal(execMissing.status, 404);
    assert.equal(JSON.parse(execMissing.body).message, 'pods "nope" not found');
  });

  test('kubectl prints the NotFound Status for a missing pod', async () => {
    const kube = await makeKubeEnv(base);
    try {
      for (const args of [
        ['get', 'pod', 'nope'],
        ['exec', 'nope', '--', 'date'],
      ]) {
        const r = await runKubectl('1.33', args, { env: kube.env, timeoutMs: 20_000 });
        assert.equal(r.code, 1);
        assert.match(r.stderr, /Error from server \(NotFound\): pods "nope" not found/);
      }
    } finally {
      await kube.cleanup();
    }
  });

  test('logs?follow=true streams lines as they are logged', async () => {
    const arrivals: number[] = [];
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        const req = http.get(`${base}${POD}/log?follow=true&tailLines=1`, (res) => {
          assert.equal(res.statusCode, 200);
          res.on('data', (d: Buffer) => {
            for (const _ of d.toString().match(/\n/g) ?? []) arrivals.push(Date.now());
            if (arrivals.length >= 4) {
              req.destroy();
              resolve();
            }
          });
        });
        req.on('error', reject);
      }),
      5000,
      'four log lines',
    );
    assert.ok(arrivals.at(-1)! - arrivals[0]! >= 80, 'lines arrive over time, not at once');
    const all = await request('GET', `${POD}/log`);
    assert.match(all.body, /container started\n/);
  });

  test('watch=true emits one JSON event per line', async () => {
    const events: { type: string; object: { metadata: { name: string } } }[] = [];
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        const req = http.get(`${base}/api/v1/namespaces/default/pods?watch=true`, (res) => {
          let partial = '';
          res.on('data', (d: Buffer) => {
            partial += d.toString();
            const lines = partial.split('\n');
            partial = lines.pop()!;
            for (const l of lines) events.push(JSON.parse(l));
            if (events.length >= 3) {
              req.destroy();
              resolve();
            }
          });
        });
        req.on('error', reject);
      }),
      5000,
      'three watch events',
    );
    assert.deepEqual(
      events.map((e) => [e.type, e.object.metadata.name]),
      [
        ['ADDED', 'demo'],
        ['MODIFIED', 'demo'],
        ['MODIFIED', 'demo'],
      ],
    );
  });
});

describe('handshakes (docs/protocols.md §2)', () => {
  test('SPDY: missing version 400, no overlap 403 with the accepted list, 101 echoes the choice', async () => {
    const none = await request('POST', execPath(['date']), { connection: 'Upgrade', upgrade: 'SPDY/3.1' });
    assert.equal(none.status, 400);
    assert.match(none.body, /unable to upgrade: X-Stream-Protocol-Version is required/);
    const wrong = await request('POST', execPath(['date']), spdyHeaders(['v9.channel.k8s.io']));
    assert.equal(wrong.status, 403);
    const accepted = [];
    for (let i = 0; i < wrong.rawHeaders.length; i += 2)
      if (wrong.rawHeaders[i]!.toLowerCase() === 'x-accepted-stream-protocol-versions')
        accepted.push(wrong.rawHeaders[i + 1]);
    assert.deepEqual(accepted, [
      'v4.channel.k8s.io',
      'v3.channel.k8s.io',
      'v2.channel.k8s.io',
      'channel.k8s.io',
    ]);
    assert.match(wrong.body, /unable to negotiate protocol: client supports \[v9.channel.k8s.io\]/);
    const ok = await request(
      'POST',
      execPath(['date']),
      spdyHeaders(['v5.channel.k8s.io, v4.channel.k8s.io']),
    );
    assert.equal(ok.status, 101);
    assert.equal(ok.headers['x-stream-protocol-version'], 'v4.channel.k8s.io');
    const pf = await request('POST', `${POD}/portforward`, spdyHeaders(['portforward.k8s.io']));
    assert.equal(pf.headers['x-stream-protocol-version'], 'portforward.k8s.io');
  });

  test('WebSocket (x/net): POST 405, version 400, unknown protocol 403 with an empty body, first line only', async () => {
    assert.equal((await request('POST', execPath(['date']), wsHeaders('v5.channel.k8s.io'))).status, 405);
    const version = await request(
      'GET',
      execPath(['date']),
      wsHeaders('v5.channel.k8s.io', { 'sec-websocket-version': '12' }),
    );
    assert.equal(version.status, 400);
    assert.equal(version.headers['sec-websocket-version'], '13');
    const unknown = await request('GET', execPath(['date']), wsHeaders('foo.k8s.io'));
    assert.equal(unknown.status, 403);
    assert.equal(unknown.body, '');
    // two header lines: only the first counts (x/net Header.Get, the apiserver's routing)
    const twoLines = await request('GET', execPath(['date']), {
      ...wsHeaders(),
      'sec-websocket-protocol': ['foo.k8s.io', 'v5.channel.k8s.io'],
    });
    assert.equal(twoLines.status, 403);
    const v5 = await request('GET', execPath(['date']), wsHeaders('v5.channel.k8s.io'));
    assert.equal(v5.status, 101);
    assert.equal(v5.headers['sec-websocket-protocol'], 'v5.channel.k8s.io');
  });

  test('tunnel: SPDY/3.1+portforward.k8s.io is answered as such; other tunnelled protocols get the CRI 403', async () => {
    const ok = await request('GET', `${POD}/portforward`, wsHeaders('SPDY/3.1+portforward.k8s.io'));
    assert.equal(ok.status, 101);
    assert.equal(ok.headers['sec-websocket-protocol'], 'SPDY/3.1+portforward.k8s.io');
    const other = await request('GET', `${POD}/portforward`, wsHeaders('SPDY/3.1+v9.portforward.k8s.io'));
    assert.equal(other.status, 403);
    const noPorts = await request('GET', `${POD}/portforward`, wsHeaders('v4.channel.k8s.io'));
    assert.equal(noPorts.status, 400);
    assert.equal(noPorts.body, 'query parameter "port" is required\n');
  });
});

describe('exec and attach on the wire', () => {
  const script = ['sh', '-c', 'echo hi; echo oops >&2; exit 3'];

  for (const [protocol, base64, json] of [
    ['v4.channel.k8s.io', false, true],
    ['v4.base64.channel.k8s.io', true, true],
    ['channel.k8s.io', false, false],
    ['base64.channel.k8s.io', true, false],
  ] as const) {
    test(`legacy WebSocket ${protocol}: marker, separate streams, status on channel 3, Close 1000`, async () => {
      const c = await connectWsExec(
        `${wsBase}${execPath(script, 'stdout=true&stderr=true')}`,
        [protocol],
        base64,
      );
      const r = await withTimeout(c.done, 10_000, 'session end');
      assert.equal(r.protocol, protocol);
      assert.equal(r.closeCode, 1000);
      assert.equal(r.channels.get(1)![0]!.length, 0, 'established marker first on stdout');
      assert.equal(c.text(1), 'hi\n');
      assert.equal(c.text(2), 'oops\n');
      const status = c.text(3);
      if (json) assert.deepEqual(decodeStatus(status), { kind: 'exit', code: 3 });
      else assert.match(status, /^command terminated with non-zero exit code: .*exit code 3$/);
    });
  }

  test('WebSocket without a subprotocol is served as channel.k8s.io', async () => {
    const c = await connectWsExec(`${wsBase}${execPath(['echo', 'x'], 'stdout=true')}`, []);
    const r = await withTimeout(c.done, 10_000, 'session end');
    assert.equal(r.protocol, '');
    assert.equal(c.text(1), 'x\n');
    assert.equal(c.text(3), '', 'nothing on success before v4');
  });

  test('v5: CLOSE ends stdin, data after it is dropped, Success', async () => {
    const c = await connectWsExec(`${wsBase}${execPath(['cat'])}`, ['v5.channel.k8s.io']);
    c.send(0, 'one\n');
    c.closeStdin();
    c.send(0, 'after close\n');
    const r = await withTimeout(c.done, 10_000, 'session end');
    assert.equal(r.closeCode, 1000);
    assert.equal(c.text(1), 'one\n');
    assert.deepEqual(decodeStatus(c.text(3)), { kind: 'success' });
  });

  test('v5: a malformed CLOSE ends the session as a protocol error and kills the process', async () => {
    const c = await connectWsExec(`${wsBase}${execPath(['sh', '-c', 'echo $$ > v5.pid; exec cat'])}`, [
      'v5.channel.k8s.io',
    ]);
    const pidFile = join(emu.cluster.pods[0]!.dir, 'v5.pid');
    const pid = await waitFor(
      'pid file',
      async () => Number(await readFile(pidFile, 'utf8').catch(() => '')) || false,
    );
    c.ws.send(Buffer.from([255, 0, 0]));
    const r = await withTimeout(c.done, 10_000, 'session end');
    assert.equal(r.closeCode, 1002);
    await waitFor('process killed', () => !alive(pid), 5000);
  });

  test('v5 with a terminal: the first resize is the size the process starts with, later ones apply', async () => {
    const c = await connectWsExec(
      `${wsBase}${execPath(['sh', '-c', 'stty -echo; stty size; read x; stty size'], 'stdin=true&stdout=true&tty=true')}`,
      ['v5.channel.k8s.io'],
    );
    c.ws.send(encodeBinary(4, Buffer.from('{"Width":100,"Height":30}\n')));
    // the second size goes once the first was seen, then a line lets the shell go on: channel
    // messages are applied in order, so the size is set before the line is read
    await waitFor('the first size', () => c.text(1).includes('30 100'));
    c.ws.send(encodeBinary(4, Buffer.from('{"width":101,"height":31}')));
    c.ws.send(encodeBinary(0, Buffer.from('go\n')));
    await withTimeout(c.done, 10_000, 'session end');
    assert.match(c.text(1), /30 100\r\n31 101\r\n/);
  });

  for (const [protocol, expectText] of [
    ['v3.channel.k8s.io', true],
    ['v2.channel.k8s.io', true],
    ['channel.k8s.io', false],
  ] as const) {
    test(`SPDY ${protocol}: ${expectText ? 'the failure as text' : 'no status (v1 resets the error stream)'}`, async () => {
      const c = await connectSpdyExec(
        `${base}${execPath(script, 'stdout=true&stderr=true')}`,
        [protocol],
        ['error', 'stdout', 'stderr'],
      );
      assert.equal(c.protocol, protocol);
      const [err, out, errOut] = await withTimeout(
        Promise.all([c.read('error'), c.read('stdout'), c.read('stderr')]),
        10_000,
        'streams end',
      );
      assert.equal(out.toString(), 'hi\n');
      assert.equal(errOut.toString(), 'oops\n');
      if (expectText)
        assert.match(err.toString(), /^command terminated with non-zero exit code: .*exit code 3$/);
      else assert.equal(err.length, 0);
    });
  }

  test('SPDY: PINGs are answered; a client that leaves gets its process killed', async () => {
    const c = await connectSpdyExec(
      `${base}${execPath(['sh', '-c', 'echo $$ > spdy.pid; exec sleep 100'], 'stdout=true')}`,
      ['v4.channel.k8s.io'],
      ['error', 'stdout'],
    );
    assert.ok((await withTimeout(c.session.ping(), 5000, 'pong')) >= 0);
    const pidFile = join(emu.cluster.pods[0]!.dir, 'spdy.pid');
    const pid = await waitFor(
      'pid file',
      async () => Number(await readFile(pidFile, 'utf8').catch(() => '')) || false,
    );
    c.socket.destroy();
    await waitFor('process killed', () => !alive(pid), 5000);
    const s = await emu.waitForSession((x) => x.command?.[2]?.includes('spdy.pid') === true);
    assert.equal(s.closeReason, 'client went away');
  });

  test('backpressure: a client that stops reading stops the process, nothing piles up', async () => {
    const total = 30 * 1024 * 1024;
    const c = await connectWsExec(
      `${wsBase}${execPath(['sh', '-c', `head -c ${total} /dev/zero; echo > bp.done`], 'stdout=true')}`,
      ['v5.channel.k8s.io'],
    );
    c.ws.pause();
    const before = process.memoryUsage().arrayBuffers;
    await new Promise((r) => setTimeout(r, 1000));
    const done = join(emu.cluster.pods[0]!.dir, 'bp.done');
    assert.equal(existsSync(done), false, 'the process is held back');
    assert.ok(process.memoryUsage().arrayBuffers - before < 16 * 1024 * 1024, 'no unbounded buffering');
    c.ws.resume();
    const r = await withTimeout(c.done, 20_000, 'session end');
    assert.equal(Buffer.concat(r.channels.get(1)!).length, total);
    assert.ok(existsSync(done));
  });

  test('WebSocket pings are answered', async () => {
    const c = await connectWsExec(`${wsBase}${execPath(['sleep', '1'], 'stdout=true')}`, [
      'v5.channel.k8s.io',
    ]);
    const pong = new Promise<Buffer>((resolve) => c.ws.once('pong', resolve));
    c.ws.ping(Buffer.from('k'));
    assert.equal((await withTimeout(pong, 5000, 'pong')).toString(), 'k');
    c.ws.terminate();
  });

  test('attach: what the client writes comes back from the main process, then Success', async () => {
    const c = await connectWsExec(`${wsBase}${POD}/attach?stdin=true&stdout=true&stderr=true`, [
      'v5.channel.k8s.io',
    ]);
    c.send(0, 'attached line\n');
    c.closeStdin();
    const r = await withTimeout(c.done, 10_000, 'attach end');
    assert.equal(r.closeCode, 1000);
    assert.equal(c.text(1), 'attached line\n');
    assert.deepEqual(decodeStatus(c.text(3)), { kind: 'success' });
    const log = await request('GET', `${POD}/log`);
    assert.match(log.body, /^attached line$/m, 'the main process output is the pod log');
  });

  test('kubectl attach -i (SPDY and WebSocket)', async () => {
    const kube = await makeKubeEnv(base);
    try {
      for (const version of ['1.27', '1.33'] as const) {
        const r = await runKubectl(version, ['attach', '-i', 'demo'], {
          env: kube.env,
          input: `via ${version}\n`,
          timeoutMs: 20_000,
        });
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.toString(), `via ${version}\n`);
      }
    } finally {
      await kube.cleanup();
    }
  });
});

describe('port-forward on the wire', () => {
  test('legacy WebSocket: port preambles, data on 2i, the CRI error text on 2i+1', async () => {
    const ws = new WebSocket(`${wsBase}${POD}/portforward?ports=8080&ports=9999`, ['v4.channel.k8s.io']);
    const got = new Map<number, Buffer[]>();
    ws.on('message', (data: Buffer, isBinary) => {
      const m = decodeMessage(data, isBinary, false)!;
      got.set(m.channel, [...(got.get(m.channel) ?? []), Buffer.from(m.payload)]);
      if (m.channel === 0 && Buffer.concat(got.get(0)!.slice(1)).toString() === 'legacy\n') ws.close();
    });
    ws.on('open', () => ws.send(encodeBinary(0, Buffer.from('legacy\n'))));
    await withTimeout(new Promise((r) => ws.once('close', r)), 10_000, 'echo');
    assert.deepEqual([...got.get(0)![0]!], [0x90, 0x1f]);
    assert.deepEqual([...got.get(1)![0]!], [0x90, 0x1f]);
    assert.deepEqual([...got.get(2)![0]!], [0x0f, 0x27]);
    assert.deepEqual([...got.get(3)![0]!], [0x0f, 0x27]);
    assert.match(
      got.get(3)![1]!.toString(),
      /^error forwarding port 9999 to pod [0-9a-f]{64}, uid : .*connection refused/,
    );
  });

  test('SPDY: bad streams reset, pairs by requestid, echo, error text for a closed port', async () => {
    const socket = await upgradeSocket(`${POD}/portforward`, spdyHeaders(['portforward.k8s.io']));
    const session = new SpdySession(socket.socket, { role: 'client', head: socket.head });
    try {
      await assert.rejects(session.openStream({ streamtype: 'data' }), /reset/);
      const open = async (port: number, requestid: string) => {
        const error = await session.openStream({ streamtype: 'error', port: String(port), requestid });
        error.end();
        const data = await session.openStream({ streamtype: 'data', port: String(port), requestid });
        return { error, data };
      };
      const echo = await open(8080, '0');
      echo.data.end('spdy echo\n');
      assert.equal((await readAll(echo.data)).toString(), 'spdy echo\n');
      assert.equal((await readAll(echo.error)).length, 0);
      const refused = await open(9999, '1');
      assert.match(
        (await readAll(refused.error)).toString(),
        /^error forwarding port 9999 to pod .*connection refused/,
      );
    } finally {
      session.destroy();
    }
  });
});

describe('close()', () => {
  test('kills running processes, ends sessions, removes the pod directories', async () => {
    const own = await startEmulator({ generation: 'legacy' });
    const c = await connectSpdyExec(
      `${own.url}${execPath(['sh', '-c', 'echo $$ > close.pid; exec sleep 100'], 'stdout=true')}`,
      ['v4.channel.k8s.io'],
      ['error', 'stdout'],
    );
    const dir = own.cluster.pods[0]!.dir;
    const pid = await waitFor(
      'pid file',
      async () => Number(await readFile(join(dir, 'close.pid'), 'utf8').catch(() => '')) || false,
    );
    await withTimeout(own.close(), 5000, 'close');
    await waitFor('process killed', () => !alive(pid), 5000);
    await withTimeout(c.read('stdout'), 5000, 'client sees the end');
    assert.equal(existsSync(dir), false);
    await waitFor('the session record', () => own.sessions.length === 1, 5000);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function upgradeSocket(
  path: string,
  headers: http.OutgoingHttpHeaders,
): Promise<{ socket: net.Socket; head: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method: 'POST', headers });
    req.on('upgrade', (_res, socket, head) => resolve({ socket, head }));
    req.on('response', (res) => reject(new Error(`refused: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}
