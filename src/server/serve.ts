/**
 * The shim as `serve` runs it: the upstream target from the kubeconfig (or --upstream), metrics,
 * health endpoints and the listener, composed once for the command, the demo and the tests.
 */
import { readFile } from 'node:fs/promises';
import { createHealth } from '../observe/health.js';
import type { Logger } from '../observe/logger.js';
import { Metrics } from '../observe/metrics.js';
import { loadUpstreamTarget, type TargetOptions, type UpstreamTarget } from '../upstream/target.js';
import type { ListenAddress } from './listen-address.js';
import { type Shim, startShim } from './listener.js';
import type { UpstreamMode } from './stream-handler.js';

export interface ServeConfig extends TargetOptions {
  listen: ListenAddress;
  mode: UpstreamMode;
  tlsCert?: string;
  tlsKey?: string;
  log: Logger;
  /** `--port-forward-stats`: per-connection port-forward figures. */
  portForwardStats?: boolean;
}

export interface Serving {
  shim: Shim;
  target: UpstreamTarget;
  metrics: Metrics;
  close(): Promise<void>;
}

export async function startServing(cfg: ServeConfig, env: NodeJS.ProcessEnv = process.env): Promise<Serving> {
  if ((cfg.tlsCert === undefined) !== (cfg.tlsKey === undefined)) {
    throw new Error('--tls-cert and --tls-key go together');
  }
  const target = await loadUpstreamTarget(cfg, env);
  const tls =
    cfg.tlsCert && cfg.tlsKey
      ? { cert: await readFile(cfg.tlsCert), key: await readFile(cfg.tlsKey) }
      : undefined;
  const metrics = new Metrics();
  const health = createHealth(target, cfg.log);
  const shim = await startShim({
    host: cfg.listen.host,
    port: cfg.listen.port,
    tls,
    target,
    mode: cfg.mode,
    log: cfg.log,
    metrics,
    endpoints: [health.handle, metrics.handle],
    portForwardStats: cfg.portForwardStats,
  });
  return { shim, target, metrics, close: () => shim.close() };
}
