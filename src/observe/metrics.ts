/**
 * Prometheus metrics of one shim process (prom-client). Each Metrics has its own registry, never
 * prom-client's global one, so that tests and embedded shims can run several side by side.
 *
 * Exposed (all `kubeshim_`-prefixed, plus prom-client's default process_* and nodejs_* metrics):
 *   kubeshim_sessions_active{subresource,client,upstream}                 gauge
 *   kubeshim_sessions_total{subresource,client,upstream,outcome}          counter, at session end
 *   kubeshim_session_duration_seconds{subresource,client,upstream}        histogram, 0.1 s … 4 h
 *   kubeshim_session_bytes_total{subresource,client,upstream,direction}   counter, direction in|out
 *   kubeshim_upstream_upgrades_total{subresource,protocol,result}         counter, ok|refused|error
 *   kubeshim_fallbacks_total{subresource,reason}                          counter
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The protocol pair of a session: names as negotiated, e.g. `v5.channel.k8s.io`. */
export interface SessionLabels {
  subresource: string;
  client: string;
  upstream: string;
}

export type SessionOutcome = 'success' | 'exit-code' | 'failure' | 'error';

export interface SessionResult {
  durationMs: number;
  /** Payload bytes from the client toward the upstream. */
  bytesIn: number;
  /** Payload bytes from the upstream toward the client. */
  bytesOut: number;
  outcome: SessionOutcome;
}

/** Interactive sessions last from a keystroke to a working day. */
const DURATION_BUCKETS = [0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400];
const SESSION_LABELS = ['subresource', 'client', 'upstream'] as const;

export class Metrics {
  readonly registry = new Registry();
  private readonly active: Gauge<(typeof SESSION_LABELS)[number]>;
  private readonly sessions: Counter<(typeof SESSION_LABELS)[number] | 'outcome'>;
  private readonly duration: Histogram<(typeof SESSION_LABELS)[number]>;
  private readonly bytes: Counter<(typeof SESSION_LABELS)[number] | 'direction'>;
  private readonly upgrades: Counter<'subresource' | 'protocol' | 'result'>;
  private readonly fallbacks: Counter<'subresource' | 'reason'>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.active = new Gauge({
      name: 'kubeshim_sessions_active',
      help: 'Streaming sessions (exec, attach, port-forward) open now, by subresource and protocol pair.',
      labelNames: SESSION_LABELS,
      registers,
    });
    this.sessions = new Counter({
      name: 'kubeshim_sessions_total',
      help: 'Streaming sessions ended, by outcome: success, exit-code (non-zero exit), failure (a Failure status, or the client left before the end), error (a protocol error, or the shim or the upstream connection failed).',
      labelNames: [...SESSION_LABELS, 'outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'kubeshim_session_duration_seconds',
      help: 'Duration of ended streaming sessions in seconds.',
      labelNames: SESSION_LABELS,
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.bytes = new Counter({
      name: 'kubeshim_session_bytes_total',
      help: 'Payload bytes carried by ended streaming sessions; direction "in" is client to upstream, "out" upstream to client.',
      labelNames: [...SESSION_LABELS, 'direction'],
      registers,
    });
    this.upgrades = new Counter({
      name: 'kubeshim_upstream_upgrades_total',
      help: 'Upgrade requests sent to the upstream, by protocol tried and result: ok (101), refused (any other answer), error (no answer).',
      labelNames: ['subresource', 'protocol', 'result'],
      registers,
    });
    this.fallbacks = new Counter({
      name: 'kubeshim_fallbacks_total',
      help: 'Times the auto upstream protocol fell back to the other protocol, by reason.',
      labelNames: ['subresource', 'reason'],
      registers,
    });
  }

  sessionOpened(l: SessionLabels): void {
    this.active.inc(pair(l));
  }

  sessionClosed(l: SessionLabels, r: SessionResult): void {
    const labels = pair(l);
    this.active.dec(labels);
    this.sessions.inc({ ...labels, outcome: r.outcome });
    this.duration.observe(labels, r.durationMs / 1000);
    if (r.bytesIn > 0) this.bytes.inc({ ...labels, direction: 'in' }, r.bytesIn);
    if (r.bytesOut > 0) this.bytes.inc({ ...labels, direction: 'out' }, r.bytesOut);
  }

  upgrade(subresource: string, protocol: string, result: 'ok' | 'refused' | 'error'): void {
    this.upgrades.inc({ subresource, protocol, result });
  }

  fallback(subresource: string, reason: string): void {
    this.fallbacks.inc({ subresource, reason });
  }

  /** The Prometheus text exposition of everything above. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private source: () => Promise<{ contentType: string; body: string }> = () => this.render();

  /**
   * Answer /metrics from another source: a `serve --workers` worker asks its primary for the sum
   * over all workers (server/workers.ts).
   */
  renderWith(source: () => Promise<{ contentType: string; body: string }>): void {
    this.source = source;
  }

  /**
   * Answers `GET /metrics` (and HEAD) with render(); false for anything else, which the caller
   * proxies. Bound, so it can be handed over as it is (the listener's endpoint list). (Addition to
   * the brief.)
   */
  readonly handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || req.url?.split('?')[0] !== '/metrics')
      return false;
    this.source().then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`metrics failed: ${err.message}\n`);
      },
    );
    return true;
  };
}

/** Only the three label fields: callers may pass richer objects (a session's info). */
function pair(l: SessionLabels): SessionLabels {
  return { subresource: l.subresource, client: l.client, upstream: l.upstream };
}
