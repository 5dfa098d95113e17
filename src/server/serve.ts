/**
 * The shim as `serve` runs it: the upstream target from the kubeconfig (or --upstream), metrics,
 * health endpoints, who may use it, its limits and the listener, composed once for the command,
 * the demo and the tests.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { readFlagFile } from '../command-line.js';
import { createHealth } from '../observe/health.js';
import type { Logger } from '../observe/logger.js';
import { Metrics } from '../observe/metrics.js';
import { Recorder, type RecorderOptions } from '../record/recorder.js';
import { loadUpstreamTarget, type TargetOptions, type UpstreamTarget } from '../upstream/target.js';
import {
  AccessControl,
  acceptedHosts,
  checkListenerSecurity,
  DEFAULT_ACCEPT_HOSTS,
  DEFAULT_ACCEPT_PATHS,
  DEFAULT_REJECT_PATHS,
  parsePatterns,
} from './access.js';
import { DEFAULT_LIMITS, type Limits } from './limits.js';
import type { ListenAddress } from './listen-address.js';
import { type Shim, startShim } from './listener.js';
import { drain } from './shutdown.js';
import type { UpstreamMode } from './stream-handler.js';
import { checkListenerTls } from './tls-files.js';

export interface ServeConfig extends TargetOptions {
  listen: ListenAddress;
  mode: UpstreamMode;
  tlsCert?: string;
  tlsKey?: string;
  log: Logger;
  /** `--port-forward-stats`: per-connection port-forward figures. */
  portForwardStats?: boolean;
  /** `--client-ca`: clients must present a certificate signed by this CA (needs TLS). */
  clientCa?: string;
  /** `--token-file`: clients must present the bearer token in this file. */
  tokenFile?: string;
  /** `--insecure-listen-anywhere`: allow a non-loopback listener without TLS and client authentication. */
  insecureListenAnywhere?: boolean;
  /** `--accept-hosts`, `--accept-paths`, `--reject-paths` (defaults in access.ts). */
  acceptHosts?: RegExp[];
  acceptPaths?: RegExp[];
  rejectPaths?: RegExp[];
  limits?: Partial<Limits>;
  /** `--ping-interval`, `--ping-timeout`: keepalive toward SPDY and WebSocket peers. */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** `--record-dir`, `--record-stdin`, `--record-required`, `--record-max-bytes`, `--audit-log`. */
  recording?: Omit<RecorderOptions, 'log' | 'registry' | 'auth'>;
}

export interface Serving {
  shim: Shim;
  target: UpstreamTarget;
  metrics: Metrics;
  /** Stop at once. */
  close(): Promise<void>;
  /** Stop gracefully: no new sessions, open ones get `graceMs` to finish (shutdown.ts). */
  shutdown(graceMs: number, hurry?: Promise<unknown>): Promise<void>;
}

export async function startServing(cfg: ServeConfig, env: NodeJS.ProcessEnv = process.env): Promise<Serving> {
  if ((cfg.tlsCert === undefined) !== (cfg.tlsKey === undefined)) {
    throw new Error('--tls-cert and --tls-key go together');
  }
  if (cfg.clientCa !== undefined && cfg.tlsCert === undefined) {
    throw new Error('--client-ca needs a TLS listener (--tls-cert and --tls-key)');
  }
  checkListenerSecurity({
    host: cfg.listen.host,
    tls: cfg.tlsCert !== undefined,
    clientCa: cfg.clientCa !== undefined,
    token: cfg.tokenFile !== undefined,
    insecureListenAnywhere: cfg.insecureListenAnywhere === true,
  });
  // the listener's files, named by their flags when missing or unusable
  if (cfg.tlsCert !== undefined && cfg.tlsKey !== undefined)
    checkListenerTls(cfg.tlsCert, cfg.tlsKey, cfg.clientCa);
  const token = cfg.tokenFile === undefined ? undefined : readToken(cfg.tokenFile);
  if (token !== undefined && cfg.tlsCert === undefined)
    cfg.log.warn(
      '--token-file without TLS: kubectl sends bearer tokens only over https (add --tls-cert/--tls-key)',
    );
  const target = await loadUpstreamTarget(cfg, env);
  const tls =
    cfg.tlsCert && cfg.tlsKey
      ? {
          cert: await readFile(cfg.tlsCert),
          key: await readFile(cfg.tlsKey),
          clientCa: cfg.clientCa === undefined ? undefined : await readFile(cfg.clientCa),
        }
      : undefined;
  const access = new AccessControl({
    acceptHosts: acceptedHosts(
      cfg.acceptHosts ?? parsePatterns('--accept-hosts', DEFAULT_ACCEPT_HOSTS.join(',')),
      cfg.listen.host,
    ),
    acceptPaths: cfg.acceptPaths ?? parsePatterns('--accept-paths', DEFAULT_ACCEPT_PATHS.join(',')),
    rejectPaths: cfg.rejectPaths ?? parsePatterns('--reject-paths', DEFAULT_REJECT_PATHS.join(',')),
    token,
  });
  const limits = { ...DEFAULT_LIMITS, ...cfg.limits };
  const pingIntervalMs = cfg.pingIntervalMs ?? 5000;
  const pingTimeoutMs = cfg.pingTimeoutMs ?? 30_000;
  const metrics = new Metrics();
  const rec = cfg.recording;
  const recorder =
    rec?.recordDir !== undefined || rec?.auditLog !== undefined
      ? await Recorder.create({
          ...rec,
          log: cfg.log,
          registry: metrics.registry,
          // the token's file name names it: the token itself stays out of every record
          auth: { tokenName: cfg.tokenFile === undefined ? undefined : basename(cfg.tokenFile) },
        })
      : undefined;
  const health = createHealth(target, cfg.log);
  const shim = await startShim({
    host: cfg.listen.host,
    port: cfg.listen.port,
    tls,
    target,
    mode: cfg.mode,
    log: cfg.log,
    metrics,
    probes: [health.handle],
    endpoints: [metrics.handle],
    access,
    portForwardStats: cfg.portForwardStats,
    keepalive: { intervalMs: pingIntervalMs, timeoutMs: pingTimeoutMs },
    spdyPingMs: pingIntervalMs,
    spdyPingTimeoutMs: pingTimeoutMs,
    handshakeTimeoutMs: limits.handshakeTimeoutMs,
    maxSessions: limits.maxSessions,
    maxHeaderBytes: limits.maxHeaderBytes,
    idleTimeoutMs: limits.idleTimeoutMs,
    recorder,
  });
  return {
    shim,
    target,
    metrics,
    close: () => shim.close().then(() => recorder?.close()),
    shutdown: (graceMs, hurry) => drain(shim, graceMs, cfg.log, hurry).then(() => recorder?.close()),
  };
}

function readToken(file: string): string {
  const token = readFlagFile('--token-file', file).toString('utf8').trim();
  if (token === '') throw new Error(`--token-file ${file} is empty`);
  return token;
}
