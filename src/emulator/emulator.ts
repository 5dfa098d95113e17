/**
 * The emulated cluster: an HTTP(S) server that answers like a kube-apiserver in front of a kubelet
 * and a CRI streaming server, for everything kubectl does around exec, attach, cp, port-forward
 * and logs. Programmatic API for tests, benchmarks and `kubeshim demo`:
 *
 *   const emu = await startEmulator({ generation: 'legacy' });
 *   … kubectl against emu.url …; emu.sessions / emu.on('session', …) tell which protocol was used
 *   await emu.close();
 */
import { timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { internalErrorStatus } from '../k8s/status.js';
import { type Logger, silentLogger } from '../observe/logger.js';
import { answerStatus, responseAnswer, socketAnswer } from './answer.js';
import { handleApiRequest } from './api.js';
import { unauthorized } from './api-errors.js';
import { Cluster } from './cluster.js';
import { type Generation, generationTraits } from './generation.js';
import { DEMO_POD, Pod, type PodDefinition } from './pod.js';
import { parseRoute } from './routes.js';
import { type FinishedSession, type RefusalRecord, SessionTracker } from './sessions.js';
import { handleUpgrade } from './upgrade.js';
import { createWebSocketServer } from './ws-handshake.js';

export interface EmulatorTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
  /** CA for client certificates. */
  ca?: string | Buffer;
  /** Ask for a client certificate; requests without a valid one (signed by `ca`) get 401. */
  requestClientCert?: boolean;
}

export interface EmulatorOptions {
  /** Default `modern`. */
  generation?: Generation;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Default: silent. */
  logger?: Logger;
  /** Serve HTTPS. */
  tls?: EmulatorTlsOptions;
  /**
   * Require `Authorization: Bearer <token>` on every request (else 401). With a client certificate
   * requested as well, either one authenticates, as in the apiserver's union of authenticators.
   */
  auth?: { token?: string };
  /** Default: the demo pod (`demo` in `default`, ports 80 http, 8080 echo, 9999 nothing). */
  pods?: PodDefinition[];
  /** Pod log heartbeat interval; default 1000 ms. */
  logIntervalMs?: number;
  /** Interval of MODIFIED events on pod watches; default 1000 ms. */
  watchIntervalMs?: number;
}

export interface EmulatorEvents {
  /** A streaming session ended. */
  session: [record: FinishedSession];
  /** An upgrade was refused. */
  refused: [record: RefusalRecord];
}

export interface Emulator extends EventEmitter<EmulatorEvents> {
  /** Base URL for kubeconfigs: `http(s)://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  readonly generation: Generation;
  readonly cluster: Cluster;
  /** Finished streaming sessions, oldest first (the last 1000). */
  readonly sessions: readonly FinishedSession[];
  /** Refused upgrades, oldest first (the last 1000): the first half of each protocol fallback. */
  readonly refusals: readonly RefusalRecord[];
  /** A finished session matching `predicate` (one already recorded, or the next one). */
  waitForSession(
    predicate: (record: FinishedSession) => boolean,
    timeoutMs?: number,
  ): Promise<FinishedSession>;
  /** Stop everything: sessions, their processes, pods, listeners; remove the pods' directories. */
  close(): Promise<void>;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const generation = options.generation ?? 'modern';
  const traits = generationTraits(generation);
  const host = options.host ?? '127.0.0.1';
  const log = (options.logger ?? silentLogger()).child({ component: 'emulator', generation });
  const baseDir = await mkdtemp(join(tmpdir(), 'kubeshim-emulator-'));
  const pods: Pod[] = [];
  try {
    for (const def of options.pods ?? [DEMO_POD]) {
      pods.push(await Pod.start(def, { baseDir, logIntervalMs: options.logIntervalMs ?? 1000, logger: log }));
    }
  } catch (err) {
    await Promise.all(pods.map((p) => p.stop()));
    await rm(baseDir, { recursive: true, force: true });
    throw err;
  }
  const cluster = new Cluster(pods);
  const tracker = new SessionTracker(log);
  const wss = createWebSocketServer();
  const authenticate = authenticator(options);

  const server = options.tls
    ? https.createServer({
        cert: options.tls.cert,
        key: options.tls.key,
        ca: options.tls.ca,
        requestCert: options.tls.requestClientCert === true,
        rejectUnauthorized: false,
      })
    : http.createServer();
  let address = '';
  const apiContext = {
    cluster,
    traits,
    serverAddress: () => address,
    watchIntervalMs: options.watchIntervalMs ?? 1000,
  };
  const upgradeContext = { cluster, traits, tracker, log, wss };
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('request', (req, res) => {
    try {
      if (!authenticate(req)) return answerStatus(responseAnswer(res), unauthorized());
      log.debug({ method: req.method, url: req.url }, 'request');
      handleApiRequest(apiContext, parseRoute(pathOf(req)), req, res);
    } catch (err) {
      log.error({ err, url: req.url }, 'request failed');
      if (!res.headersSent) answerStatus(responseAnswer(res), internalErrorStatus(String(err)));
      else res.destroy();
    }
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    try {
      if (!authenticate(req)) return answerStatus(socketAnswer(socket), unauthorized());
      log.debug({ method: req.method, url: req.url, upgrade: req.headers.upgrade }, 'upgrade request');
      handleUpgrade(upgradeContext, parseRoute(pathOf(req)), req, socket, head);
    } catch (err) {
      log.error({ err, url: req.url }, 'upgrade failed');
      socket.destroy();
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const url = `${options.tls ? 'https' : 'http'}://${address}`;
  log.info({ url, description: traits.description }, 'emulator listening');

  let closing: Promise<void> | undefined;
  const emulator: Emulator = Object.assign(new EventEmitter<EmulatorEvents>(), {
    url,
    port,
    generation,
    cluster,
    sessions: tracker.records,
    refusals: tracker.refusals,
    waitForSession: (predicate: (record: FinishedSession) => boolean, timeoutMs = 10_000) =>
      waitForSession(tracker, predicate, timeoutMs),
    close() {
      closing ??= (async () => {
        server.close();
        tracker.abortAll();
        for (const s of sockets) s.destroy();
        wss.close();
        await Promise.all(pods.map((p) => p.stop()));
        await rm(baseDir, { recursive: true, force: true });
        log.info('emulator stopped');
      })();
      return closing;
    },
  });
  tracker.on('session', (record) => emulator.emit('session', record));
  tracker.on('refused', (record) => emulator.emit('refused', record));
  return emulator;
}

function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://emulator').pathname;
}

function waitForSession(
  tracker: SessionTracker,
  predicate: (record: FinishedSession) => boolean,
  timeoutMs: number,
): Promise<FinishedSession> {
  const found = tracker.records.find(predicate);
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const onSession = (record: FinishedSession) => {
      if (!predicate(record)) return;
      clearTimeout(timer);
      tracker.off('session', onSession);
      resolve(record);
    };
    const timer = setTimeout(() => {
      tracker.off('session', onSession);
      reject(new Error(`no matching emulator session within ${timeoutMs} ms`));
    }, timeoutMs);
    tracker.on('session', onSession);
  });
}

/** Bearer token and/or client certificate, as configured; without either, everyone is let in. */
function authenticator(options: EmulatorOptions): (req: IncomingMessage) => boolean {
  const token = options.auth?.token;
  const wantCert = options.tls?.requestClientCert === true;
  if (!token && !wantCert) return () => true;
  const expected = token ? Buffer.from(`Bearer ${token}`) : undefined;
  return (req) => {
    if (wantCert && (req.socket as TLSSocket).authorized === true) return true;
    if (expected) {
      const got = Buffer.from(req.headers.authorization ?? '');
      return got.length === expected.length && timingSafeEqual(got, expected);
    }
    return false;
  };
}
