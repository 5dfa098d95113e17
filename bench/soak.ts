/**
 * Soak: `npm run soak [-- --minutes 10] [-- --sessions 200] [-- --fault-every 3] [-- --record]
 * [-- --node-flags=--max-semi-space-size=8]`. Not part of `npm test`. With `--record` the shim
 * records every exec and attach session and writes an audit log (into a temporary directory, removed
 * at the end; its size is reported). `--node-flags` (space-separated) go to the shim's node only;
 * glibc's MALLOC_* variables from the environment reach the shim too, to compare them.
 *
 * `kubeshim serve` (auto) runs as a process of its own, built as users run it (`node dist/cli.js`:
 * compiled by tsc into a directory of the soak's own, no tsx), in front of a scripted upstream, also a
 * process of its own (bench/soak-upstream.ts), with two pods: `spdy-only` refuses WebSocket upgrades and `ws-only` refuses
 * SPDY ones, so that every path of the translation table is taken (and auto falls back often).
 * `--sessions` clients run at once, each one session after another of a random kind — WebSocket v5
 * and SPDY exec, tunnelled and SPDY port-forward — sending 16–256 KiB of random bytes that must
 * come back sha256-equal. Every few seconds a fault is injected: the upstream killed (SIGKILL)
 * and restarted, a client's connection destroyed, the upstream stalled for 2 s, hostile
 * connections (garbage, mutated kubectl sessions). A failure while a fault is on is booked to
 * that fault; any other is unexpected.
 *
 * Report: sessions completed, bytes verified, failures by kind, the shim's peak RSS, its open file
 * descriptors and sessions at the end against the start. Exit code 1 on unexpected failures or
 * leftovers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeMessage, encodeClose, encodeMessage } from '../src/channel/codec.js';
import { TunnelStream } from '../src/channel/tunnel.js';
import { PORTFORWARD, RC_V4, RC_V5, TUNNEL_PORTFORWARD } from '../src/k8s/protocols.js';
import { decodeStatus } from '../src/k8s/status.js';
import { SpdySession, type SpdyStream } from '../src/spdy/session.js';
import { dialUpgrade, dialWebSocket } from '../src/upstream/dial.js';
import { recordedSession, spdyBytes } from '../test/fixtures/sessions.js';
import { compileInto } from './lib/build.js';
import { mallocEnv, rssBytes } from './lib/proc.js';

const REPO = resolve(import.meta.dirname, '..');
const NAMESPACE = 'soak';
const MiB = 1024 * 1024;

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    sessions: { type: 'string', default: '200' },
    'fault-every': { type: 'string', default: '3' },
    record: { type: 'boolean', default: false },
    'node-flags': { type: 'string', default: '' },
  },
});

// ---- the driver --------------------------------------------------------------------------------------

type Kind = 'ws-exec' | 'spdy-exec' | 'tunnel-pf' | 'spdy-pf';
const KINDS: { kind: Kind; pod: 'spdy-only' | 'ws-only' }[] = [
  { kind: 'ws-exec', pod: 'spdy-only' }, // WebSocket v5 → SPDY, translated
  { kind: 'ws-exec', pod: 'ws-only' }, // relayed
  { kind: 'spdy-exec', pod: 'spdy-only' }, // relayed, status guard
  { kind: 'spdy-exec', pod: 'ws-only' }, // SPDY → WebSocket v5, translated
  { kind: 'tunnel-pf', pod: 'spdy-only' }, // tunnel unwrapped
  { kind: 'tunnel-pf', pod: 'ws-only' }, // relayed
  { kind: 'spdy-pf', pod: 'spdy-only' }, // relayed
  { kind: 'spdy-pf', pod: 'ws-only' }, // wrapped into the tunnel
];

interface InFlight {
  kill(): void;
  killed: boolean;
}

interface Fault {
  kind: string;
  start: number;
  end: number;
}

class Soak {
  completed = 0;
  bytesVerified = 0;
  readonly failures = new Map<string, number>();
  readonly byPath = new Map<string, number>();
  readonly faults: Fault[] = [];
  readonly inFlight = new Set<InFlight>();
  hostile = 0;
  hostileUnclosed = 0;
  private readonly agent = new http.Agent({ keepAlive: false });

  constructor(readonly shimUrl: string) {}

  private get target() {
    return { url: new URL(this.shimUrl), agent: this.agent };
  }

  fail(kind: string): void {
    this.failures.set(kind, (this.failures.get(kind) ?? 0) + 1);
  }

  /** Which fault a failure at `at` (of a session started at `started`) belongs to, if any. */
  blame(started: number, at: number): string | undefined {
    const graceMs = 2000;
    return this.faults.find((f) => started <= f.end + graceMs && at >= f.start && at <= f.end + graceMs)
      ?.kind;
  }

  async session(which: (typeof KINDS)[number]): Promise<void> {
    const payload = randomBytes(randomInt(16 * 1024, 256 * 1024));
    const flight: InFlight = { kill: () => {}, killed: false };
    this.inFlight.add(flight);
    const started = performance.now();
    try {
      const echoed = await withDeadline(this.run(which, payload, flight), 30_000);
      if (
        createHash('sha256').update(echoed).digest('hex') !==
        createHash('sha256').update(payload).digest('hex')
      )
        throw new Error(`echo differs (${echoed.length} of ${payload.length} bytes)`);
      this.completed++;
      this.bytesVerified += payload.length;
      const path = `${which.kind}→${which.pod}`;
      this.byPath.set(path, (this.byPath.get(path) ?? 0) + 1);
    } catch (err) {
      const message = (err as Error).message.replace(/\d+/g, 'N').slice(0, 100);
      const fault = flight.killed ? 'client-reset' : this.blame(started, performance.now());
      this.fail(fault ? `fault ${fault}` : `unexpected ${which.kind}→${which.pod}: ${message}`);
      await sleep(100); // a client that failed does not hammer straight back
    } finally {
      this.inFlight.delete(flight);
    }
  }

  private path(pod: string, sub: string, query = ''): string {
    return `/api/v1/namespaces/${NAMESPACE}/pods/${pod}/${sub}${query}`;
  }

  private run(which: (typeof KINDS)[number], payload: Buffer, flight: InFlight): Promise<Buffer> {
    switch (which.kind) {
      case 'ws-exec':
        return this.wsExec(which.pod, payload, flight);
      case 'spdy-exec':
        return this.spdyExec(which.pod, payload, flight);
      case 'tunnel-pf':
        return this.tunnelPortForward(which.pod, payload, flight);
      case 'spdy-pf':
        return this.spdyPortForward(which.pod, payload, flight);
    }
  }

  private async wsExec(pod: string, payload: Buffer, flight: InFlight): Promise<Buffer> {
    const r = await dialWebSocket(
      this.target,
      this.path(pod, 'exec', '?command=cat&stdin=true&stdout=true&stderr=true'),
      [RC_V5],
      {},
      { handshakeTimeoutMs: 10_000 },
    );
    if (!r.ok) throw new Error(`refused ${r.refusal.statusCode}`);
    const ws = r.ws;
    flight.kill = () => ws.terminate();
    const out: Buffer[] = [];
    let status = '';
    const closed = new Promise<number>((res) => ws.once('close', (code) => res(code)));
    ws.on('error', () => {});
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const msg = decodeMessage(data, isBinary, false);
      if (msg?.channel === 1 && msg.payload.length) out.push(Buffer.from(msg.payload));
      if (msg?.channel === 3) status += msg.payload.toString();
    });
    ws.resume();
    for (let off = 0; off < payload.length; off += 16 * 1024) {
      ws.send(encodeMessage(0, payload.subarray(off, off + 16 * 1024), false));
      while (ws.bufferedAmount > 256 * 1024 && ws.readyState === ws.OPEN) await sleep(2);
    }
    ws.send(encodeClose(0));
    await closed;
    if (decodeStatus(status).kind !== 'success') throw new Error(`status ${status || 'none'}`);
    return Buffer.concat(out);
  }

  private async spdyExec(pod: string, payload: Buffer, flight: InFlight): Promise<Buffer> {
    const session = await this.spdyUpgrade(pod, 'exec?command=cat&stdin=true&stdout=true&stderr=true', RC_V4);
    flight.kill = () => session.destroy('killed');
    const open = (t: string) => session.openStream({ streamtype: t });
    const error = await open('error');
    const stdin = await open('stdin');
    const stdout = await open('stdout');
    const stderr = await open('stderr');
    stderr.resume();
    const [out, status] = await Promise.all([readAll(stdout), readAll(error), writeAll(stdin, payload)]);
    session.close();
    if (decodeStatus(status.toString()).kind !== 'success')
      throw new Error(`status ${status.toString() || 'none'}`);
    return out;
  }

  private async spdyUpgrade(pod: string, sub: string, protocol: string): Promise<SpdySession> {
    const r = await dialUpgrade(
      this.target,
      'POST',
      this.path(pod, sub.split('?')[0]!, sub.includes('?') ? `?${sub.split('?')[1]}` : ''),
      { connection: 'Upgrade', upgrade: 'SPDY/3.1', 'x-stream-protocol-version': protocol },
      { handshakeTimeoutMs: 10_000 },
    );
    if (!r.ok) throw new Error(`refused ${r.refusal.statusCode}`);
    r.socket.on('error', () => {});
    return new SpdySession(r.socket, { role: 'client', head: r.head });
  }

  private async tunnelPortForward(pod: string, payload: Buffer, flight: InFlight): Promise<Buffer> {
    const r = await dialWebSocket(
      this.target,
      this.path(pod, 'portforward'),
      [TUNNEL_PORTFORWARD],
      {},
      { handshakeTimeoutMs: 10_000 },
    );
    if (!r.ok) throw new Error(`refused ${r.refusal.statusCode}`);
    r.ws.on('error', () => {});
    const session = new SpdySession(new TunnelStream(r.ws), { role: 'client' });
    flight.kill = () => r.ws.terminate();
    return this.forward(session, payload);
  }

  private async spdyPortForward(pod: string, payload: Buffer, flight: InFlight): Promise<Buffer> {
    const session = await this.spdyUpgrade(pod, 'portforward', PORTFORWARD);
    flight.kill = () => session.destroy('killed');
    return this.forward(session, payload);
  }

  /** One forwarded connection the kubectl way: error stream (half-closed), then the data stream. */
  private async forward(session: SpdySession, payload: Buffer): Promise<Buffer> {
    const headers = { port: '8080', requestid: '0' };
    const error = await session.openStream({ streamtype: 'error', ...headers });
    error.end();
    error.resume();
    const data = await session.openStream({ streamtype: 'data', ...headers });
    const [echoed] = await Promise.all([readAll(data), writeAll(data, payload)]);
    session.close();
    return echoed;
  }

  /** A hostile connection: a SPDY upgrade followed by a mutated kubectl session or garbage. */
  async hostileConnection(): Promise<void> {
    this.hostile++;
    const recorded = recordedSession('spdy-exec');
    let body = Buffer.from(spdyBytes(recorded, 'client'));
    for (let i = 0; i < 4; i++) body[randomInt(body.length)] = randomInt(256);
    if (Math.random() < 0.3) body = randomBytes(2048);
    const pod = Math.random() < 0.5 ? 'spdy-only' : 'ws-only';
    const head =
      `POST ${this.path(pod, 'exec', '?command=cat&stdin=true&stdout=true&stderr=true')} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      'Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n';
    const url = new URL(this.shimUrl);
    const socket = net.connect(Number(url.port), url.hostname);
    socket.on('error', () => {});
    socket.resume();
    const closed = once(socket, 'close');
    await once(socket, 'connect');
    socket.end(Buffer.concat([Buffer.from(head), body]));
    const done = await Promise.race([closed.then(() => true), sleep(5000).then(() => false)]);
    if (!done) this.hostileUnclosed++;
    socket.destroy();
  }

  close(): void {
    this.agent.destroy();
  }
}

async function runDriver(): Promise<number> {
  const minutes = Number(flags.minutes);
  const concurrency = Number(flags.sessions);
  const faultEveryMs = Number(flags['fault-every']) * 1000;
  const built = buildShim();
  const upstreamPort = await freePort();
  const upstream = new UpstreamProcess(upstreamPort);
  await upstream.start();
  const recordRoot = flags.record ? mkdtempSync(join(tmpdir(), 'kubeshim-soak-rec-')) : undefined;
  const recording = recordRoot
    ? ['--record-dir', join(recordRoot, 'casts'), '--audit-log', join(recordRoot, 'audit.log')]
    : [];
  const shim = spawn(
    process.execPath,
    [
      '--expose-gc',
      ...flags['node-flags'].split(' ').filter((f) => f !== ''),
      '--import',
      join(REPO, 'bench/lib/gc-on-signal.mjs'),
      join(built, 'cli.js'),
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--upstream',
      `http://127.0.0.1:${upstreamPort}`,
      '--log-level',
      'info',
      '--max-sessions',
      String(concurrency * 5),
      ...recording,
    ],
    {
      cwd: REPO,
      // glibc's malloc settings (MALLOC_ARENA_MAX, MALLOC_TRIM_THRESHOLD_) reach the shim, to compare them
      env: { PATH: process.env.PATH, HOME: '/nonexistent', ...mallocEnv() },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let shimOut = '';
  /** Warning and error lines of the shim, by message (reasons shortened). */
  const warnings = new Map<string, number>();
  let shimUrl: string | undefined;
  shim.stdout!.on('data', (d: Buffer) => {
    shimOut += d.toString();
    const lines = shimOut.split('\n');
    shimOut = lines.pop()!;
    for (const l of lines) {
      if (!l.includes('"level":40') && !l.includes('"level":50')) continue;
      const line = JSON.parse(l) as Record<string, unknown>;
      const why = String(line['closeReason'] ?? line['err'] ?? '')
        .replace(/\d+/g, 'N')
        .slice(0, 80);
      const key = `${line['msg']}${why ? `: ${why}` : ''}`;
      warnings.set(key, (warnings.get(key) ?? 0) + 1);
    }
    for (const l of lines) if (l.includes('"msg":"listening"')) shimUrl ??= JSON.parse(l).url;
  });
  try {
    await waitUntil(() => shimUrl !== undefined, 20_000, 'kubeshim to listen');
    return await drive(shim, shimUrl!, upstream, warnings, concurrency, minutes, faultEveryMs);
  } finally {
    shim.kill('SIGKILL');
    await upstream.stop();
    rmSync(built, { recursive: true, force: true });
    if (recordRoot) {
      const casts = readdirSync(join(recordRoot, 'casts'));
      const bytes = casts.reduce((n, f) => n + statSync(join(recordRoot, 'casts', f)).size, 0);
      const audit = readFileSync(join(recordRoot, 'audit.log'), 'utf8').split('\n').length - 1;
      process.stdout.write(
        `recording: ${casts.length} recordings, ${(bytes / MiB).toFixed(1)} MiB, ${audit} audit lines\n`,
      );
      rmSync(recordRoot, { recursive: true, force: true });
    }
  }
}

async function drive(
  shim: ChildProcess,
  shimUrl: string,
  upstream: UpstreamProcess,
  warnings: Map<string, number>,
  concurrency: number,
  minutes: number,
  faultEveryMs: number,
): Promise<number> {
  const soak = new Soak(shimUrl);
  const pid = shim.pid!;

  // warm-up, then the baseline
  await Promise.all(KINDS.map((k) => soak.session(k)));
  await sleep(500);
  const fdsAtStart = openFds(pid);
  const memoryAtStart = await processMemory(shim, shimUrl);
  const rssAtStart = rssBytes(pid);
  let peakRss = rssAtStart;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssBytes(pid));
  }, 1000);
  // where the memory goes, at the sample of highest RSS
  const breakdownAtStart = await memoryBreakdown(pid, shimUrl);
  let breakdownAtPeak = breakdownAtStart;
  let breakdownLatest = breakdownAtStart;
  const breakdownSampler = setInterval(() => {
    memoryBreakdown(pid, shimUrl).then(
      (b) => {
        breakdownLatest = b;
        if (b.rss > breakdownAtPeak.rss) breakdownAtPeak = b;
      },
      () => {},
    );
  }, 5000);

  const deadline = performance.now() + minutes * 60_000;
  const started = performance.now();
  const progress = setInterval(() => {
    const s = Math.round((performance.now() - started) / 1000);
    // where the memory is, as the breakdown sampler saw it last (at most 5 s ago)
    const b = breakdownLatest;
    process.stderr.write(
      `[${s}s] completed ${soak.completed}, in flight ${soak.inFlight.size}, failures ${sum(soak.failures)}, rss ${(rssBytes(pid) / MiB).toFixed(0)} MiB (main arena ${b.mainArena}, thread arenas ${b.threadArenas} in ${b.threadArenaCount}, other anonymous ${b.otherAnonymous}, V8 heap ${b.v8['nodejs_heap_size_total_bytes']})\n`,
    );
  }, 30_000);

  // faults
  const faultKinds = ['upstream-kill', 'client-reset', 'upstream-stall', 'hostile'] as const;
  let faultIndex = 0;
  const faultCounts = new Map<string, number>();
  const faulting = (async () => {
    while (performance.now() < deadline - faultEveryMs) {
      await sleep(faultEveryMs);
      const kind = faultKinds[faultIndex++ % faultKinds.length]!;
      faultCounts.set(kind, (faultCounts.get(kind) ?? 0) + 1);
      const fault: Fault = { kind, start: performance.now(), end: Number.POSITIVE_INFINITY };
      if (kind !== 'client-reset' && kind !== 'hostile') soak.faults.push(fault);
      switch (kind) {
        case 'upstream-kill':
          await upstream.restart();
          break;
        case 'client-reset': {
          const victims = [...soak.inFlight].sort(() => Math.random() - 0.5).slice(0, 3);
          for (const v of victims) {
            v.killed = true;
            v.kill();
          }
          break;
        }
        case 'upstream-stall':
          upstream.child?.kill('SIGUSR1');
          await sleep(2000);
          break;
        case 'hostile':
          await Promise.all(Array.from({ length: 10 }, () => soak.hostileConnection()));
          break;
      }
      fault.end = performance.now();
    }
  })();

  // the clients
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) await soak.session(KINDS[randomInt(KINDS.length)]!);
    }),
  );
  await faulting;
  clearInterval(progress);
  const wallSeconds = (performance.now() - started) / 1000;

  // leftovers once everything is quiet
  await sleep(3000);
  clearInterval(sampler);
  clearInterval(breakdownSampler);
  const fdsAtEnd = openFds(pid);
  const breakdownAtEnd = await memoryBreakdown(pid, shimUrl);
  const rssAtEnd = rssBytes(pid);
  const hwm = vmHwm(pid);
  const activeAtEnd = await activeSessions(shimUrl);
  const memoryAtEnd = await processMemory(shim, shimUrl);
  soak.close();
  const stopped = once(shim, 'exit');
  shim.kill('SIGTERM');
  const exitCode = await Promise.race([
    stopped.then(([code]) => code as number | null),
    sleep(15_000).then(() => 'none'),
  ]);

  const unexpected = [...soak.failures]
    .filter(([k]) => k.startsWith('unexpected'))
    .reduce((n, [, v]) => n + v, 0);
  const report = {
    minutes,
    concurrency,
    shimNode: process.version,
    shimNodeFlags: flags['node-flags'],
    shimMallocEnv: mallocEnv(),
    wallSeconds: Math.round(wallSeconds),
    sessionsCompleted: soak.completed,
    sessionsPerSecond: Math.round(soak.completed / wallSeconds),
    bytesVerified: soak.bytesVerified,
    completedByPath: Object.fromEntries([...soak.byPath].sort()),
    faultsInjected: Object.fromEntries(faultCounts),
    failuresByKind: Object.fromEntries([...soak.failures].sort((a, b) => b[1] - a[1])),
    unexpectedFailures: unexpected,
    hostileConnections: soak.hostile,
    hostileConnectionsLeftOpen: soak.hostileUnclosed,
    shimWarnings: Object.fromEntries([...warnings].sort((a, b) => b[1] - a[1]).slice(0, 12)),
    shimMemoryMiB: { atStart: memoryAtStart, atEnd: memoryAtEnd },
    shimExitOnSigterm: exitCode,
    shimRssMiB: {
      atStart: +(rssAtStart / MiB).toFixed(1),
      peakSampled: +(peakRss / MiB).toFixed(1),
      peakVmHWM: +(hwm / MiB).toFixed(1),
      atEnd: +(rssAtEnd / MiB).toFixed(1),
    },
    shimMemoryBreakdownMiB: { atStart: breakdownAtStart, atPeak: breakdownAtPeak, atEnd: breakdownAtEnd },
    shimOpenFds: { atStart: fdsAtStart, atEnd: fdsAtEnd },
    shimActiveSessionsAtEnd: activeAtEnd,
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  const clean = unexpected === 0 && fdsAtEnd <= fdsAtStart && activeAtEnd === 0 && soak.hostileUnclosed === 0;
  return clean ? 0 : 1;
}

/** The upstream process: started, SIGKILLed and restarted on the same port. */
class UpstreamProcess {
  child: ChildProcess | undefined;
  constructor(private readonly port: number) {}

  /** Start it (again), retrying a start that fails: a fault of the soak must not end the soak. */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.startOnce();
        return;
      } catch (err) {
        this.child?.kill('SIGKILL');
        if (attempt === 3) throw err;
      }
    }
  }

  private async startOnce(): Promise<void> {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'bench/soak-upstream.ts'), String(this.port)],
      {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    this.child = child;
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitUntil(() => out.includes('ready'), 20_000, 'the upstream to listen');
  }

  async restart(): Promise<void> {
    const old = this.child!;
    // one that died by itself is started again too (it has exited already: nothing to wait for)
    if (old.exitCode === null && old.signalCode === null) {
      const exited = once(old, 'exit');
      old.kill('SIGKILL');
      await exited;
    }
    await this.start();
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGKILL');
    await exited;
  }
}

// ---- helpers -----------------------------------------------------------------------------------------

function readAll(stream: SpdyStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.once('end', () => resolve(Buffer.concat(parts)));
    stream.once('error', reject);
  });
}

async function writeAll(stream: SpdyStream, payload: Buffer): Promise<void> {
  for (let off = 0; off < payload.length; off += 16 * 1024) {
    if (!stream.write(payload.subarray(off, off + 16 * 1024)))
      await Promise.race([once(stream, 'drain'), once(stream, 'close')]);
  }
  stream.end();
}

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

async function waitUntil(probe: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!probe()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * src/ compiled as `npm run build` does, into a directory of the soak's own under .tmp/ (inside the
 * repository, so that the built modules find node_modules); removed at the end.
 */
function buildShim(): string {
  mkdirSync(join(REPO, '.tmp'), { recursive: true });
  const out = mkdtempSync(join(REPO, '.tmp', 'soak-dist-'));
  compileInto('tsconfig.build.json', out);
  return out;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function vmHwm(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * The shim's /metrics, on a connection closed after it: a kept-alive one would be one more open
 * descriptor in the shim when the soak counts them (it was the "+1 descriptor" of every soak).
 */
async function metricsText(base: string): Promise<string> {
  return (await fetch(`${base}/metrics`, { headers: { connection: 'close' } })).text();
}

/** A metric from the shim's /metrics, summed over its labels. */
async function metric(base: string, name: string): Promise<number> {
  const text = await metricsText(base);
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

const activeSessions = (base: string) => metric(base, 'kubeshim_sessions_active');

/** The shim's V8 heap in use and its memory outside the heap (Buffers), after a full collection, in MiB. */
async function processMemory(
  shim: ChildProcess,
  base: string,
): Promise<{ heapUsed: number; external: number }> {
  shim.kill('SIGUSR2'); // bench/lib/gc-on-signal.mjs
  await sleep(500);
  const mib = async (name: string) => +((await metric(base, name)) / MiB).toFixed(1);
  return {
    heapUsed: await mib('nodejs_heap_size_used_bytes'),
    external: await mib('nodejs_external_memory_bytes'),
  };
}

/** A metric from the shim's /metrics, by its label (e.g. `space`), in MiB. */
async function metricsMiB(base: string, names: string[]): Promise<Record<string, number>> {
  const text = await metricsText(base);
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{space="(\w+)"\})? (\S+)$/.exec(line);
    if (!m || !names.includes(m[1]!)) continue;
    const value = +(Number(m[3]) / MiB).toFixed(1);
    if (value !== 0) out[m[2] ? `${m[1]}.${m[2]}` : m[1]!] = value;
  }
  return out;
}

/**
 * The shim's resident memory by kind, from /proc/PID/smaps, in MiB: files (the node binary, its
 * libraries), glibc's main arena (`[heap]`), its thread arenas (64 MiB-aligned anonymous
 * reservations of 64 MiB, the unused part PROT_NONE), and other anonymous memory (the V8 heap,
 * malloc's mmapped chunks, thread stacks); beside it, what V8 and prom-client say of the heap.
 */
async function memoryBreakdown(pid: number, base: string) {
  const ARENA = 64 * MiB;
  const kb = { files: 0, mainArena: 0, threadArenas: 0, otherAnonymous: 0 };
  let arenas = 0;
  let arenaEnd = -1;
  let kind: keyof typeof kb = 'otherAnonymous';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const start = Number.parseInt(head[1]!, 16);
      const end = Number.parseInt(head[2]!, 16);
      const path = head[4]!;
      if (path.startsWith('/')) kind = 'files';
      else if (path === '[heap]') kind = 'mainArena';
      else if (path === '' && start % ARENA === 0 && end - start <= ARENA && head[3]!.startsWith('rw')) {
        kind = 'threadArenas'; // the part in use; its PROT_NONE rest follows up to start + 64 MiB
        arenaEnd = start + ARENA;
        arenas++;
      } else if (path === '' && start < arenaEnd && end <= arenaEnd) kind = 'threadArenas';
      else kind = 'otherAnonymous';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) kb[kind] += Number(rss[1]);
  }
  const mib = (n: number) => +(n / 1024).toFixed(1);
  return {
    rss: +(rssBytes(pid) / MiB).toFixed(1),
    files: mib(kb.files),
    mainArena: mib(kb.mainArena),
    threadArenas: mib(kb.threadArenas),
    threadArenaCount: arenas,
    otherAnonymous: mib(kb.otherAnonymous),
    v8: await metricsMiB(base, [
      'nodejs_heap_size_used_bytes',
      'nodejs_heap_size_total_bytes',
      'nodejs_heap_space_size_total_bytes',
      'nodejs_external_memory_bytes',
    ]),
  };
}

runDriver().then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`soak: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  },
);
