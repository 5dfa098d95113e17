/**
 * The shim's HTTP(S) listener: each request is classified once — shim endpoints (health, metrics),
 * plain API traffic (http-proxy), streaming upgrades (the stream handler), other upgrades (relayed).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { DEFAULT_KEEPALIVE, type KeepaliveOptions } from '../bridge/keepalive.js';
import { ActiveSessions } from '../bridge/session-record.js';
import { apiStatus, encodeStatus } from '../k8s/status.js';
import type { Logger } from '../observe/logger.js';
import { syntheticRefusal } from '../upstream/dial.js';
import { classifyUpgrade } from './classify.js';
import { createPlainProxy } from './plain-proxy.js';
import {
  replyRefusal,
  StreamHandler,
  type StreamTarget,
  type UpgradeMetricsSink,
  type UpstreamMode,
} from './stream-handler.js';

/** A handler for the shim's own endpoints; answers true when it took the request. */
export type LocalEndpoint = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface ShimOptions {
  host: string;
  port: number;
  tls?: { cert: Buffer | string; key: Buffer | string };
  target: StreamTarget;
  mode: UpstreamMode;
  log: Logger;
  metrics?: UpgradeMetricsSink;
  /** Shim endpoints (health, metrics), tried before anything is proxied. */
  endpoints?: LocalEndpoint[];
  keepalive?: KeepaliveOptions;
  spdyPingMs?: number;
  spdyPingTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  choiceTtlMs?: number;
  /** Count port-forward connections by reading relayed SPDY frames (StreamHandlerConfig). */
  portForwardStats?: boolean;
}

export interface Shim {
  /** `http://127.0.0.1:PORT` (or https). */
  url: string;
  server: http.Server;
  /** Streaming sessions in flight. */
  sessions: ActiveSessions;
  close(): Promise<void>;
}

export async function startShim(opts: ShimOptions): Promise<Shim> {
  const { log } = opts;
  const sessions = new ActiveSessions();
  const streams = new StreamHandler({
    active: sessions,
    target: opts.target,
    mode: opts.mode,
    log,
    metrics: opts.metrics,
    keepalive: opts.keepalive ?? DEFAULT_KEEPALIVE,
    spdyPingMs: opts.spdyPingMs ?? 5000,
    spdyPingTimeoutMs: opts.spdyPingTimeoutMs ?? 30_000,
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 30_000,
    choiceTtlMs: opts.choiceTtlMs ?? 10 * 60_000,
    portForwardStats: opts.portForwardStats,
  });
  const plain = createPlainProxy(opts.target, log);
  const endpoints = opts.endpoints ?? [];

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    for (const endpoint of endpoints) if (endpoint(req, res)) return;
    plain(req, res);
  };
  const server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest)
    : http.createServer(onRequest);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err: Error) => log.debug({ err: err.message }, 'client socket error'));
    const sr = classifyUpgrade(req);
    const work = sr ? streams.handle(req, socket, head, sr) : streams.relayOther(req, socket, head);
    work.catch((err: Error) => {
      log.error({ err: err.message, url: req.url }, 'upgrade failed');
      replyRefusal(socket, syntheticRefusal(500, `kubeshim: ${err.message}`, 'InternalError'));
    });
  });
  server.on('clientError', (err: Error, socket: Duplex) => {
    log.debug({ err: err.message }, 'malformed request');
    if (!socket.writable) return;
    const body = encodeStatus(apiStatus(400, 'BadRequest', `malformed request: ${err.message}`));
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `${opts.tls ? 'https' : 'http'}://${host}:${addr.port}`;
  return {
    url,
    server,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
