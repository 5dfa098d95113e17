/**
 * The shim's HTTP(S) listener: each request is checked once for who may use the shim (access.ts),
 * then classified — shim endpoints (health, metrics), plain API traffic (http-proxy), streaming
 * upgrades (router.ts, within the session limit), other upgrades (relayed). Whatever a
 * request does wrong is answered on its own connection; nothing a client sends can stop the
 * listener serving the others.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { DEFAULT_KEEPALIVE, type KeepaliveOptions } from '../bridge/keepalive.js';
import { ActiveSessions } from '../bridge/session-record.js';
import { parseRequestTarget } from '../k8s/canonical-target.js';
import { apiStatus, encodeStatus } from '../k8s/status.js';
import type { Logger } from '../observe/logger.js';
import type { Recorder } from '../record/recorder.js';
import type { UpstreamMode } from '../upstream/choice.js';
import { syntheticRefusal } from '../upstream/dial.js';
import type { CredentialedUpstream } from '../upstream/target.js';
import {
  AccessControl,
  acceptedHosts,
  DEFAULT_ACCEPT_HOSTS,
  DEFAULT_ACCEPT_PATHS,
  DEFAULT_REJECT_PATHS,
  type Denial,
  parsePatterns,
} from './access.js';
import { classifyUpgrade } from './classify.js';
import { malformedRequestAnswer, replyRefusal } from './http-answers.js';
import { DEFAULT_LIMITS, SessionGate, watchIdleSessions } from './limits.js';
import { createPlainProxy } from './plain-proxy.js';
import { requestTarget, setRequestTarget } from './request-target.js';
import { StreamRouter, type UpgradeMetricsSink } from './router.js';
import { VIA } from './via.js';

/** A handler for the shim's own endpoints; answers true when it took the request. */
export type LocalEndpoint = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface ShimOptions {
  host: string;
  port: number;
  tls?: {
    cert: Buffer | string;
    key: Buffer | string;
    /** CA of client certificates: clients must present a certificate it signed (mTLS, `--client-ca`). */
    clientCa?: Buffer | string;
  };
  target: CredentialedUpstream;
  mode: UpstreamMode;
  log: Logger;
  metrics?: UpgradeMetricsSink;
  /** Probe endpoints (health), answered before the access checks: probes bring no credentials. */
  probes?: LocalEndpoint[];
  /** Shim endpoints (metrics), tried after the access checks, before anything is proxied. */
  endpoints?: LocalEndpoint[];
  /** Who may use the shim; default: the default hosts plus the listen host, any path, no token. */
  access?: AccessControl;
  keepalive?: KeepaliveOptions;
  spdyPingMs?: number;
  spdyPingTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  choiceTtlMs?: number;
  /** Count port-forward connections by reading relayed SPDY frames (RouterConfig). */
  portForwardStats?: boolean;
  /** Limits (limits.ts); defaults in DEFAULT_LIMITS. */
  maxSessions?: number;
  maxHeaderBytes?: number;
  idleTimeoutMs?: number;
  /** Session recordings and the audit log (src/record). */
  recorder?: Recorder;
}

export interface Shim {
  /** `http://127.0.0.1:PORT` (or https). */
  url: string;
  server: http.Server;
  /** Streaming sessions in flight. */
  sessions: ActiveSessions;
  /** Places of --max-sessions taken now (sessions in flight plus handshakes in progress). */
  placesTaken(): number;
  /** Refuse new sessions from now on (503), the first step of a graceful stop (shutdown.ts). */
  stopAccepting(): void;
  /** Stop at once: the listener and its connections (sessions are ended by their sockets closing). */
  close(): Promise<void>;
}

export async function startShim(opts: ShimOptions): Promise<Shim> {
  const { log } = opts;
  const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? DEFAULT_LIMITS.handshakeTimeoutMs;
  const maxHeaderBytes = opts.maxHeaderBytes ?? DEFAULT_LIMITS.maxHeaderBytes;
  const sessions = new ActiveSessions();
  const gate = new SessionGate(sessions, opts.maxSessions ?? DEFAULT_LIMITS.maxSessions);
  const access =
    opts.access ??
    new AccessControl({
      acceptHosts: acceptedHosts(parsePatterns('hosts', DEFAULT_ACCEPT_HOSTS.join(',')), opts.host),
      acceptPaths: parsePatterns('paths', DEFAULT_ACCEPT_PATHS.join(',')),
      rejectPaths: parsePatterns('paths', DEFAULT_REJECT_PATHS.join(',')),
    });
  let accepting = true;
  const router = new StreamRouter({
    active: sessions,
    target: opts.target,
    mode: opts.mode,
    log,
    metrics: opts.metrics,
    keepalive: opts.keepalive ?? DEFAULT_KEEPALIVE,
    spdyPingMs: opts.spdyPingMs ?? 5000,
    spdyPingTimeoutMs: opts.spdyPingTimeoutMs ?? 30_000,
    handshakeTimeoutMs,
    choiceTtlMs: opts.choiceTtlMs ?? 10 * 60_000,
    portForwardStats: opts.portForwardStats,
    spdyMaxHeaderBytes: maxHeaderBytes,
    recorder: opts.recorder,
  });
  const plain = createPlainProxy(opts.target, log, handshakeTimeoutMs);
  const probes = opts.probes ?? [];
  const endpoints = opts.endpoints ?? [];

  const denied = (req: IncomingMessage, d: Denial, path: string | undefined) => {
    log.warn(
      { remote: req.socket.remoteAddress, method: req.method, path, status: d.status },
      `request denied: ${d.message}`,
    );
    opts.recorder?.auditDenied(req, d.status);
  };

  /** Parse the request's target once (a 400 for anything but a plain path, before any check or dial). */
  const canonicalise = (req: IncomingMessage): Denial | undefined => {
    const parsed = parseRequestTarget(req.url);
    if (parsed.ok) {
      setRequestTarget(req, parsed.target);
      return undefined;
    }
    const d: Denial = { status: 400, reason: 'BadRequest', message: `kubeshim: ${parsed.reason}` };
    denied(req, d, undefined);
    return d;
  };

  /** Who may use the shim: a client certificate signed by --client-ca when one is set, then access.ts. */
  const admit = (req: IncomingMessage): Denial | undefined => {
    const { path } = requestTarget(req);
    const d =
      opts.tls?.clientCa !== undefined && !(req.socket as TLSSocket).authorized
        ? {
            status: 401 as const,
            reason: 'Unauthorized' as const,
            message: 'kubeshim: a client certificate signed by the --client-ca authority is required',
          }
        : access.check(req, path);
    if (d) denied(req, d, path);
    return d;
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('Via', VIA); // a proxied answer replaces it with the upstream's Via plus ours
    let denial = canonicalise(req);
    if (!denial) {
      for (const probe of probes) if (probe(req, res)) return;
      denial = admit(req);
    }
    if (denial) {
      const body = encodeStatus(apiStatus(denial.status, denial.reason, denial.message));
      res.writeHead(denial.status, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
      return;
    }
    for (const endpoint of endpoints) if (endpoint(req, res)) return;
    opts.recorder?.auditRequest(req, res);
    plain(req, res);
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const denial = canonicalise(req) ?? admit(req);
    if (denial) {
      replyRefusal(socket, syntheticRefusal(denial.status, denial.message, denial.reason));
      return;
    }
    // refused before anything is upgraded: kubectl prints the Status message
    if (!accepting) {
      replyRefusal(socket, syntheticRefusal(503, 'kubeshim is shutting down'));
      return;
    }
    const release = gate.tryEnter();
    if (release === undefined) {
      log.warn({ limit: gate.limit, remote: req.socket.remoteAddress }, 'session refused: at --max-sessions');
      replyRefusal(socket, syntheticRefusal(503, `kubeshim is at its limit of ${gate.limit} sessions`));
      return;
    }
    const sr = classifyUpgrade(req, requestTarget(req));
    const work = sr ? router.handle(req, socket, head, sr) : router.relayOther(req, socket, head);
    work
      .catch((err: Error) => {
        log.error({ err: err.message, url: req.url }, 'upgrade failed');
        replyRefusal(socket, syntheticRefusal(500, `kubeshim: ${err.message}`, 'InternalError'));
      })
      .finally(release);
  };

  const serverOptions: http.ServerOptions = {
    maxHeaderSize: maxHeaderBytes,
    headersTimeout: handshakeTimeoutMs,
    requestTimeout: Math.max(300_000, handshakeTimeoutMs),
    // how often the head timeout is enforced (Node's default, 30 s, would stretch a short one)
    connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(handshakeTimeoutMs / 4))),
  };
  const server = opts.tls
    ? https.createServer(
        {
          ...serverOptions,
          cert: opts.tls.cert,
          key: opts.tls.key,
          handshakeTimeout: handshakeTimeoutMs,
          // The certificate is asked for and verified by TLS, but a connection without a valid one
          // is let through the handshake: admit() refuses it for everything but the probe paths,
          // which container probes reach without a certificate.
          ...(opts.tls.clientCa !== undefined
            ? { ca: opts.tls.clientCa, requestCert: true, rejectUnauthorized: false }
            : {}),
        },
        onRequest,
      )
    : http.createServer(serverOptions, onRequest);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err: Error) => log.debug({ err: err.message }, 'client socket error'));
    try {
      onUpgrade(req, socket, head);
    } catch (err) {
      log.error({ err: (err as Error).message, url: req.url }, 'upgrade failed');
      replyRefusal(socket, syntheticRefusal(500, `kubeshim: ${(err as Error).message}`, 'InternalError'));
    }
  });
  /** A Status answer, then the connection is destroyed whether or not the client reads it. */
  const answerAndDestroy = (socket: Duplex, status: number, reason: string, message: string) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const body = encodeStatus(apiStatus(status, reason, message));
    // ending alone waits on the client, and a client that never reads would keep the descriptor
    const bound = setTimeout(() => socket.destroy(), handshakeTimeoutMs);
    bound.unref();
    socket.end(malformedRequestAnswer(status, http.STATUS_CODES[status], body), () => {
      clearTimeout(bound);
      socket.destroy();
    });
  };
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const [status, reason] = CLIENT_ERRORS[err.code ?? ''] ?? [400, 'BadRequest'];
    log.info({ err: err.message, code: err.code, status }, 'malformed request');
    if (err.code === 'ECONNRESET') socket.destroy();
    else answerAndDestroy(socket, status, reason, `malformed request: ${err.message}`);
  });
  // without a listener Node drops a CONNECT without a word
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    log.info({ method: 'CONNECT', url: req.url }, 'refused: not a forward proxy');
    socket.on('error', () => {});
    answerAndDestroy(
      socket,
      405,
      'MethodNotAllowed',
      'kubeshim is not a forward proxy: CONNECT is not served; send requests for the API server to kubeshim as to the API server itself',
    );
  });
  server.on('tlsClientError', (err: Error, socket: Duplex) => {
    log.info({ err: err.message }, 'TLS handshake failed');
    socket.destroy();
  });
  // A connection must bring its first request head within the handshake timeout. Node bounds a
  // head once its first byte came (headersTimeout, answered 408 above) but not a connection that
  // stays silent, before or after TLS: those are destroyed here.
  // Keyed by the peer's address and port, the same for the raw socket and the TLS one on top of it.
  const awaitingHead = new Map<string, NodeJS.Timeout>();
  const peer = (socket: Socket) => `${socket.remoteAddress}:${socket.remotePort}`;
  server.on('connection', (socket: Socket) => {
    const key = peer(socket);
    const timer = setTimeout(() => {
      awaitingHead.delete(key);
      // a plain head under way is the parser's to time out (408); a silent connection is ours
      if (opts.tls || socket.bytesRead === 0) socket.destroy();
    }, handshakeTimeoutMs);
    timer.unref();
    awaitingHead.set(key, timer);
    socket.once('close', () => {
      clearTimeout(timer);
      if (awaitingHead.get(key) === timer) awaitingHead.delete(key);
    });
  });
  const headArrived = (req: IncomingMessage) => {
    const key = peer(req.socket);
    clearTimeout(awaitingHead.get(key));
    awaitingHead.delete(key);
  };
  server.prependListener('request', headArrived);
  server.prependListener('upgrade', headArrived);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // e.g. EMFILE on accept: logged, the listener goes on (an unhandled 'error' would end the process)
  server.on('error', (err: Error) => log.error({ err: err.message }, 'listener error'));
  const stopIdle = watchIdleSessions(sessions, opts.idleTimeoutMs ?? DEFAULT_LIMITS.idleTimeoutMs, log);
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `${opts.tls ? 'https' : 'http'}://${host}:${addr.port}`;
  return {
    url,
    server,
    sessions,
    placesTaken: () => gate.taken,
    stopAccepting: () => {
      accepting = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        stopIdle();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Answers to requests the HTTP parser refused (the rest get 400). */
const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'RequestHeaderFieldsTooLarge'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Timeout'],
};
