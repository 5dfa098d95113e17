/**
 * `kubeshim doctor` against the emulated generations and against nginx hops: the table says which
 * protocol passes, the answer that shows where it broke, and the --upstream-protocol to use;
 * --idle tells a path that holds quiet sessions from one that cuts them; exit codes 0, 1, 2.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { type DoctorOptions, type DoctorReport, runDoctor } from '../../src/doctor/doctor.js';
import type { ProbeId } from '../../src/doctor/probes.js';
import { renderTable, wantsColour } from '../../src/doctor/report.js';
import { type Emulator, type Generation, startEmulator } from '../../src/emulator/index.js';
import { runProcess, shellQuote } from '../support/kubectl.js';
import { type ProxyProcess, REPO, runCli, startProxy } from '../support/processes.js';
import { startTestShim } from '../support/shim.js';
import { freePort } from '../support/wait.js';

/** No kubeconfig anywhere: --upstream alone, as in the bastion form. */
const ENV = { PATH: process.env.PATH, HOME: '/nonexistent' };

function doctor(upstream: string, extra: Partial<DoctorOptions> = {}): Promise<DoctorReport> {
  return runDoctor({ upstream, pod: 'demo', timeoutMs: 5000, ...extra }, ENV);
}

type Row = [verdict: string, answer: RegExp];

/** Each streaming probe's verdict and answer, and the recommendation. */
function assertTable(report: DoctorReport, rows: Partial<Record<ProbeId, Row>>, use: string | undefined) {
  for (const [id, [verdict, answer]] of Object.entries(rows) as [ProbeId, Row][]) {
    const p = report.probes.find((x) => x.id === id)!;
    assert.equal(p.verdict, verdict, `${id}: ${p.answer}`);
    assert.match(p.answer, answer, id);
    assert.ok(p.rttMs !== undefined && p.rttMs > 0 && p.rttMs < 5000, `${id} rtt ${p.rttMs}`);
  }
  assert.equal(report.recommendation.upstreamProtocol, use, report.recommendation.reason);
}

const EXEC_OK: Row = ['pass', /^101 v4\.channel\.k8s\.io; true: exit 0$/];
const WS_EXEC_OK: Row = ['pass', /^101 v5\.channel\.k8s\.io; true: exit 0$/];
const PF_OK: Row = ['pass', /^101 portforward\.k8s\.io; SPDY PING/];
const TUNNEL_OK: Row = ['pass', /^101 SPDY\/3\.1\+portforward\.k8s\.io; SPDY PING/];
const STRIPPED: Row = ['fail', /^400 Upgrade request required$/];
const XNET_403: Row = ['fail', /^403 with an empty body$/];
/** Where a hop strips SPDY upgrades: both SPDY probes fail there, both WebSocket probes pass. */
const SPDY_STRIPPED: Partial<Record<ProbeId, Row>> = {
  'exec-spdy': STRIPPED,
  'exec-websocket': WS_EXEC_OK,
  'portforward-websocket': TUNNEL_OK,
  'portforward-spdy': STRIPPED,
};

describe('doctor against the emulated generations, with a pod', () => {
  const emulators = new Map<Generation, Emulator>();
  before(async () => {
    for (const g of ['legacy', 'spdy', 'websocket', 'modern'] as const)
      emulators.set(g, await startEmulator({ generation: g }));
  });
  after(() => Promise.all([...emulators.values()].map((e) => e.close())));

  test('legacy (1.28): SPDY passes, v5 gets the CRI 403, the tunnel the kubelet 400 → spdy', async () => {
    const r = await doctor(emulators.get('legacy')!.url);
    assert.deepEqual(r.probes[0]!.verdict, 'pass');
    assert.match(r.probes[0]!.answer, /^200 v1\.28\.15$/);
    assertTable(
      r,
      {
        'exec-spdy': EXEC_OK,
        'exec-websocket': XNET_403,
        'portforward-websocket': ['fail', /^400 query parameter "port" is required$/],
        'portforward-spdy': PF_OK,
      },
      'spdy',
    );
    assert.match(r.probes.find((p) => p.id === 'portforward-websocket')!.why!, /#133913/);
    assert.ok(r.ok);
    // the emulator saw `true` run over SPDY, and nothing over WebSocket
    const runs = emulators.get('legacy')!.sessions.filter((s) => s.subresource === 'exec');
    assert.deepEqual(
      runs.map((s) => [s.transport, s.command]),
      [['spdy', ['true']]],
    );
  });

  test('spdy (a path that refuses WebSocket): both WebSocket probes get 403 → spdy', async () => {
    const r = await doctor(emulators.get('spdy')!.url);
    assertTable(
      r,
      {
        'exec-spdy': EXEC_OK,
        'exec-websocket': XNET_403,
        'portforward-websocket': XNET_403,
        'portforward-spdy': PF_OK,
      },
      'spdy',
    );
  });

  test('websocket (a hop strips SPDY upgrades): both SPDY probes get 400 Upgrade request required → websocket', async () => {
    const r = await doctor(emulators.get('websocket')!.url);
    assertTable(r, SPDY_STRIPPED, 'websocket');
    assert.match(
      r.probes.find((p) => p.id === 'exec-spdy')!.why!,
      /dropped the Upgrade and Connection headers/,
    );
  });

  test('modern (1.33): everything passes → auto', async () => {
    const r = await doctor(emulators.get('modern')!.url);
    assertTable(
      r,
      {
        'exec-spdy': EXEC_OK,
        'exec-websocket': WS_EXEC_OK,
        'portforward-websocket': TUNNEL_OK,
        'portforward-spdy': PF_OK,
      },
      'auto',
    );
  });

  test('without --pod: only "reached" (the pod lookup comes before the upgrade), and nothing runs', async () => {
    const emu = emulators.get('websocket')!;
    const before = emu.sessions.length;
    const r = await runDoctor({ upstream: emu.url, timeoutMs: 5000 }, ENV);
    for (const p of r.probes.slice(1)) {
      assert.equal(p.verdict, 'reached', p.id);
      assert.match(p.answer, /^404 pods "kubeshim-doctor-no-such-pod" not found$/);
    }
    assert.equal(r.recommendation.upstreamProtocol, 'auto');
    assert.match(r.recommendation.reason, /not proven without --pod/);
    assert.ok(r.ok);
    assert.equal(emu.sessions.length, before);
  });

  test('--idle on a direct path: every session is held and its end is reported', async () => {
    const r = await doctor(emulators.get('modern')!.url, { idleSeconds: 1 });
    assert.equal(r.idle?.results.length, 4);
    for (const i of r.idle!.results) {
      assert.ok(i.held, `${i.id}: ${i.how}`);
      assert.ok(i.afterMs >= 950, `${i.id} ${i.afterMs}`);
    }
    const sleeps = emulators.get('modern')!.sessions.filter((s) => s.command?.[0] === 'sh');
    assert.deepEqual(
      sleeps.map((s) => s.command),
      [
        ['sh', '-c', 'sleep 1'],
        ['sh', '-c', 'sleep 1'],
      ],
    );
  });
});

describe('doctor --idle in a pod whose sleep does not sleep', () => {
  let emu: Emulator;
  let bin: string;
  const path = process.env.PATH;
  before(async () => {
    emu = await startEmulator({ generation: 'modern' });
    // the pod's processes take the emulator's PATH: a `sleep` first on it that ends at once
    bin = mkdtempSync(join(tmpdir(), 'kubeshim-nosleep-'));
    writeFileSync(join(bin, 'sleep'), '#!/bin/sh\necho "sleep: not here" >&2\nexit 7\n', { mode: 0o755 });
    process.env.PATH = `${bin}:${path}`;
  });
  after(async () => {
    process.env.PATH = path;
    await emu?.close();
    rmSync(bin, { recursive: true, force: true });
  });

  test('the exec paths say what was measured: nothing, and why; no hop is blamed', async () => {
    const r = await doctor(emu.url, { idleSeconds: 2 });
    const exec = r.idle!.results.filter((i) => i.id.startsWith('exec'));
    assert.equal(exec.length, 2);
    for (const i of exec) {
      assert.equal(i.held, false);
      assert.equal(i.measured, false, i.how);
      assert.match(
        i.how,
        /^not measured: `sleep 2` in the pod ended by itself after \d+\.\d s \(exit 7\); the pod needs a sleep command$/,
      );
    }
    const text = renderTable(r);
    assert.match(text, /^ {2}exec +SPDY\/3\.1 v4\.channel\.k8s\.io +unknown +not measured/m);
    assert.doesNotMatch(text, /A hop cut quiet sessions/);
  });
});

describe('doctor through nginx', () => {
  let emu: Emulator;
  let wsOnly: ProxyProcess;
  let impatient: ProxyProcess;
  before(async () => {
    emu = await startEmulator({ generation: 'modern' });
    const upstream = emu.url.replace('http://', '');
    const example = (name: string) => readFileSync(join(REPO, 'examples/nginx', name), 'utf8');
    wsOnly = await startProxy('nginx', (port) =>
      example('websocket-only.conf')
        .replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`)
        .replaceAll('127.0.0.1:8001', upstream),
    );
    // the both-protocols example with a 1 s idle limit, as load balancers have (60 s–5 min)
    impatient = await startProxy('nginx', (port) =>
      example('kubeshim.conf')
        .replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`)
        .replaceAll('127.0.0.1:8001', upstream)
        .replace('proxy_read_timeout 1h', 'proxy_read_timeout 1s'),
    );
  });
  after(async () => {
    await wsOnly?.stop();
    await impatient?.stop();
    await emu?.close();
  });

  test('an nginx that strips SPDY upgrades: SPDY fails at the hop, WebSocket passes → websocket', async () => {
    const r = await doctor(wsOnly.url);
    assertTable(r, SPDY_STRIPPED, 'websocket');
  });

  test('--idle through a hop that cuts quiet connections after 1 s: every session is reported cut', async () => {
    const r = await doctor(impatient.url, { idleSeconds: 3 });
    assert.ok(r.probes.every((p) => p.verdict === 'pass'));
    for (const i of r.idle!.results) {
      assert.equal(i.held, false, `${i.id}: ${i.how}`);
      assert.ok(i.afterMs > 800 && i.afterMs < 2500, `${i.id} cut after ${i.afterMs} ms`);
      assert.match(i.how, /^cut after \d\.\d s: /);
    }
  });

  test('the command: the table with notes and exit 0; JSON and exit 1 when nothing passes; exit 2 for usage', async () => {
    const table = await runCli(['doctor', '--upstream', wsOnly.url, '--pod', 'demo'], ENV);
    assert.equal(table.code, 0, table.stderr);
    const text = table.stdout.toString();
    assert.match(text, /^ {2}PATH {10}PROTOCOL {2,}RESULT {2}RTT {2,}UPSTREAM-PROTOCOL {2}ANSWER$/m);
    assert.match(
      text,
      /^ {2}exec {10}SPDY\/3\.1 v4\.channel\.k8s\.io +FAIL +[\d.]+ ms +spdy +400 Upgrade request required$/m,
    );
    assert.match(
      text,
      /^ {2}exec {10}WebSocket v5\.channel\.k8s\.io +pass +[\d.]+ ms +websocket +101 v5\.channel\.k8s\.io; true: exit 0$/m,
    );
    assert.match(text, /dropped the Upgrade and Connection headers/);
    assert.match(text, /^Use --upstream-protocol websocket: /m);

    const nobody = await runCli(
      ['doctor', '--upstream', `http://127.0.0.1:${await freePort()}`, '--timeout', '2', '--output', 'json'],
      ENV,
    );
    assert.equal(nobody.code, 1);
    const report = JSON.parse(nobody.stdout.toString()) as DoctorReport;
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.probes.map((p) => [p.id, p.verdict]),
      [
        ['discovery', 'fail'],
        ['exec-spdy', 'fail'],
        ['exec-websocket', 'fail'],
        ['portforward-websocket', 'fail'],
        ['portforward-spdy', 'fail'],
      ],
    );
    for (const p of report.probes) assert.match(p.answer, /^nothing listens at 127\.0\.0\.1:\d+$/, p.id);
    assert.equal(report.findings.length, 1, 'identical failures: one finding');
    assert.equal(report.findings[0]!.probes.length, 5);
    assert.equal(report.recommendation.upstreamProtocol, undefined);

    const usage = await runCli(['doctor', '--upstream', emu.url, '--idle', '5'], ENV);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^kubeshim doctor: --idle needs --pod.*; see 'kubeshim doctor --help'\n$/);
  });
});

describe('doctor against a hop that mangles answers', () => {
  let server: http.Server;
  let url: string;
  const upgraded = new Set<Duplex>();
  before(async () => {
    server = http.createServer((_req, res) => {
      res.writeHead(502, { server: 'gateway/1.0', 'content-type': 'text/html' });
      res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
      if (req.headers.upgrade === 'websocket') {
        // a correct WebSocket 101, but without the subprotocol
        const accept = createHash('sha1')
          .update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
          .digest('base64');
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        );
      } else {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
      }
      upgraded.add(socket);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const s of upgraded) s.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('each answer names what is missing; nothing works, so no --upstream-protocol', async () => {
    const r = await doctor(url);
    const answers = Object.fromEntries(r.probes.map((p) => [p.id, `${p.verdict} ${p.answer}`]));
    assert.deepEqual(answers, {
      discovery: 'fail /version: 502 502 Bad Gateway from gateway/1.0',
      'exec-spdy': 'fail 101 without X-Stream-Protocol-Version',
      'exec-websocket': 'fail 101 without Sec-WebSocket-Protocol',
      'portforward-websocket': 'fail 101 without Sec-WebSocket-Protocol',
      'portforward-spdy': 'fail 101 without X-Stream-Protocol-Version',
    });
    assert.equal(r.ok, false);
    assert.equal(r.recommendation.upstreamProtocol, undefined);
  });

  test('a hop that accepts connections and says nothing: each probe reports the silence', async () => {
    const hole = net.createServer((socket) => socket.on('error', () => {}));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    try {
      const port = (hole.address() as AddressInfo).port;
      const r = await doctor(`http://127.0.0.1:${port}`, { timeoutMs: 300 });
      for (const p of r.probes) {
        assert.equal(p.answer, 'no answer within 300 ms', p.id);
        assert.ok(p.rttMs! >= 290, `${p.id} ${p.rttMs}`);
      }
      assert.equal(r.ok, false);
    } finally {
      hole.close();
    }
  });
});

describe('doctor for broken paths', () => {
  let emu: Emulator;
  let dir: string;
  before(async () => {
    emu = await startEmulator({ generation: 'modern' });
    dir = mkdtempSync(join(tmpdir(), 'kubeshim-doctor-'));
    execFileSync('certs/make-certs.sh', [join(dir, 'pki')], { stdio: 'ignore' });
  });
  after(async () => {
    await emu?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('nothing listening: one finding for every probe, one row in the table', async () => {
    const port = await freePort();
    const r = await runCli(['doctor', '--upstream', `http://127.0.0.1:${port}`, '--pod', 'demo'], ENV);
    assert.equal(r.code, 1);
    const text = r.stdout.toString();
    const said = text.split('\n').filter((l) => l.includes(`nothing listens at 127.0.0.1:${port}`));
    assert.equal(said.length, 1, text);
    assert.match(said[0]!, /^ {2}every probe +every protocol +FAIL +- +nothing listens at/);
    assert.match(text, /^ {2}every probe: the connection was refused: is the API server .* running/m);
    assert.doesNotMatch(text, /\x1b\[/, 'no colour when stdout is not a terminal');
  });

  test('a pod that does not exist: "pod X not found in namespace Y (use -n)", once', async () => {
    const r = await doctor(emu.url, { pod: 'nope', namespace: 'team-a' });
    assert.equal(r.probes[0]!.verdict, 'pass');
    for (const p of r.probes.slice(1)) assert.equal(p.answer, '404 pod "nope" not found', p.id);
    assert.deepEqual(
      r.findings.map((f) => [f.probes.length, f.why]),
      [[4, 'pod nope not found in namespace team-a (use -n)']],
    );
    const text = renderTable(r);
    assert.match(text, /^ {2}exec, port-forward +every protocol +FAIL +- +404 pod "nope" not found$/m);
    assert.match(
      text,
      /^ {2}exec and port-forward, every protocol: pod nope not found in namespace team-a \(use -n\)$/m,
    );
  });

  test('https:// against a plain-HTTP port: use http://', async () => {
    const https = emu.url.replace('http://', 'https://');
    const r = await doctor(https, { timeoutMs: 3000 });
    assert.equal(r.findings.length, 1);
    assert.equal(r.findings[0]!.probes.length, 5);
    assert.match(r.findings[0]!.answer, /^127\.0\.0\.1:\d+ answers in plain HTTP, not TLS$/);
    assert.equal(r.findings[0]!.why, `https:// was given for a plain-HTTP port: use ${emu.url}`);
  });

  test('http:// against a TLS port (Node hangs up, Go answers 400): use https://', async () => {
    const pki = join(dir, 'pki');
    const tlsServer = createHttpsServer(
      { cert: readFileSync(join(pki, 'server.crt')), key: readFileSync(join(pki, 'server.key')) },
      (_req, res) => res.end('{}'),
    );
    // what Go's net/http writes to plain HTTP on a TLS port
    const goLike = http.createServer((_req, res) => {
      res.writeHead(400);
      res.end('Client sent an HTTP request to an HTTPS server.\n');
    });
    await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => goLike.listen(0, '127.0.0.1', r));
    try {
      for (const server of [tlsServer, goLike]) {
        const port = (server.address() as AddressInfo).port;
        const r = await doctor(`http://127.0.0.1:${port}`, { timeoutMs: 3000 });
        const discovery = r.probes[0]!;
        assert.equal(discovery.answer, `127.0.0.1:${port} speaks TLS, not plain HTTP`);
        assert.equal(discovery.why, `http:// was given for a TLS port: use https://127.0.0.1:${port}`);
      }
    } finally {
      tlsServer.closeAllConnections();
      goLike.closeAllConnections();
      tlsServer.close();
      goLike.close();
    }
  });

  test('a kubeshim on the path is recognised by its Via header', async () => {
    const shim = await startTestShim(emu.url, 'auto');
    try {
      const r = await doctor(shim.url);
      assert.equal(r.via, '1.1 kubeshim');
      assert.ok(r.ok);
      assert.match(renderTable(r), /^ {2}via {7}1\.1 kubeshim: a kubeshim is on the path/m);
      const direct = await doctor(emu.url);
      assert.equal(direct.via, undefined, 'the emulator is no kubeshim');
    } finally {
      await shim.close();
    }
  });

  test('colour on a terminal, not with NO_COLOR; --output json for scripts', async () => {
    assert.equal(wantsColour({ isTTY: true }, {}), true);
    assert.equal(wantsColour({ isTTY: true }, { NO_COLOR: '1' }), false);
    assert.equal(wantsColour({ isTTY: false }, {}), false);
    // on a real terminal (script(1)), coloured; with NO_COLOR, plain
    const cmd = [
      process.execPath,
      '--import',
      'tsx',
      'src/cli.ts',
      'doctor',
      '--upstream',
      emu.url,
      '--pod',
      'demo',
    ]
      .map(shellQuote)
      .join(' ');
    const onTty = (env: NodeJS.ProcessEnv) =>
      runProcess('script', ['-qec', cmd, '/dev/null'], {
        env: { ...ENV, TERM: 'xterm', ...env },
        cwd: REPO,
        timeoutMs: 60_000,
      });
    const coloured = (await onTty({})).stdout.toString();
    assert.match(coloured, /\x1b\[32mpass\x1b\[0m/);
    const plain = (await onTty({ NO_COLOR: '1' })).stdout.toString();
    assert.match(plain, /exec +SPDY\/3\.1 v4\.channel\.k8s\.io +pass/);
    assert.doesNotMatch(plain, /\x1b\[\d+m/);
    const json = await runCli(['doctor', '--upstream', emu.url, '--pod', 'demo', '--output', 'json'], ENV);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout.toString()) as DoctorReport;
    assert.deepEqual(report.findings, []);
    assert.ok(report.probes.every((p) => p.verdict === 'pass'));
  });
});
