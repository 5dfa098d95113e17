/**
 * Streaming upgrades (exec, attach, port-forward): the translation table of docs/design.md. For each
 * request the router plans the upstream attempts (attempts/) — the client's own protocol relayed
 * byte for byte, or the other protocol translated — and runs them in order until one is accepted.
 * Nothing reaches the client before an attempt succeeded, so a client never sees a failed first try;
 * if every attempt is refused, the client gets the refusal of its own protocol verbatim (so kubectl
 * falls back exactly as it would without us, docs/protocols.md §2.3).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import type { SessionMetricsSink } from '../bridge/session-record.js';
import { createWebSocketServer } from '../channel/ws-accept.js';
import type { StreamRequest } from '../k8s/stream-request.js';
import { ProtocolChoices, type UpstreamMode, type UpstreamProtocol } from '../upstream/choice.js';
import { type Refusal, syntheticRefusal } from '../upstream/dial.js';
import { credentialPolicy, noteUpstreamStatus } from '../upstream/headers.js';
import type { Attempt } from './attempts/attempt.js';
import {
  AttemptContext,
  CLIENT_CLOSED,
  ClientGone,
  clientLeft,
  type SessionSettings,
} from './attempts/context.js';
import { legacyPortForward } from './attempts/legacy-port-forward.js';
import { passThrough } from './attempts/pass-through.js';
import { spdyToTunnel } from './attempts/spdy-to-tunnel.js';
import { spdyToWsExec } from './attempts/spdy-to-ws-exec.js';
import { tunnelToSpdy } from './attempts/tunnel-to-spdy.js';
import { wsToSpdyExec } from './attempts/ws-to-spdy-exec.js';
import { replyRefusal } from './http-answers.js';
import { relayOtherUpgrade } from './other-upgrade.js';
import { VIA } from './via.js';

export interface UpgradeMetricsSink extends SessionMetricsSink {
  upgrade(subresource: string, protocol: string, result: 'ok' | 'refused' | 'error'): void;
  fallback(subresource: string, reason: string): void;
}

export interface RouterConfig extends SessionSettings {
  mode: UpstreamMode;
  metrics?: UpgradeMetricsSink;
  /** How long auto remembers that the other protocol worked. */
  choiceTtlMs: number;
}

/**
 * Every attempt. For any request, one that applies speaks the client's own protocol upstream
 * (pass-through serves every request) and at most one speaks the other.
 */
const ATTEMPTS: Attempt[] = [
  passThrough,
  wsToSpdyExec,
  spdyToWsExec,
  tunnelToSpdy,
  spdyToTunnel,
  legacyPortForward,
];

export class StreamRouter {
  private readonly choices: ProtocolChoices;
  private readonly wss: WebSocketServer;

  constructor(private readonly cfg: RouterConfig) {
    this.choices = new ProtocolChoices(cfg.choiceTtlMs);
    this.wss = createWebSocketServer([`Via: ${VIA}`]);
  }

  async handle(req: IncomingMessage, socket: Duplex, head: Buffer, sr: StreamRequest): Promise<void> {
    const { log, metrics } = this.cfg;
    const trail = await this.cfg.recorder?.open(req, sr);
    if (trail?.refusal !== undefined) {
      trail.rejected(503, trail.refusal);
      replyRefusal(socket, syntheticRefusal(503, trail.refusal));
      return;
    }
    const policy = await credentialPolicy(this.cfg.target, log);
    const childLog = log.child({ subresource: sr.subresource, pod: sr.pod });
    const ctx = new AttemptContext(this.cfg, this.wss, req, socket, head, sr, policy, childLog, trail);
    const attempts = this.plan(sr);
    const refusals = new Map<UpstreamProtocol, Refusal>();
    for (let i = 0; i < attempts.length; i++) {
      const attempt = attempts[i]!;
      const upstream = attempt.upstream(sr);
      let refusal: Refusal | undefined;
      try {
        if (clientLeft(socket)) throw new ClientGone();
        refusal = await attempt.run(ctx);
      } catch (err) {
        metrics?.upgrade(sr.subresource, upstream, 'error');
        if (err instanceof ClientGone) {
          ctx.log.info({ upstream }, err.message);
          socket.destroy(); // a client that only ended its side would hold it half-open
          trail?.rejected(CLIENT_CLOSED, err.message);
          return;
        }
        const message = `kubeshim could not reach the upstream for ${sr.subresource}: ${(err as Error).message}`;
        ctx.log.warn(
          { err: (err as Error).message, upstream, attempt: attempt.name },
          'upstream dial failed',
        );
        trail?.rejected(502, message);
        replyRefusal(socket, syntheticRefusal(502, message));
        return;
      }
      if (refusal === undefined) {
        metrics?.upgrade(sr.subresource, upstream, 'ok');
        if (i > 0 && this.cfg.mode === 'auto') this.choices.remember(this.choiceKey(sr), upstream);
        return;
      }
      metrics?.upgrade(sr.subresource, upstream, 'refused');
      noteUpstreamStatus(this.cfg.target, refusal.statusCode);
      refusals.set(upstream, refusal);
      const next = attempts[i + 1];
      if (next) {
        const reason = `upstream refused ${upstream} with ${refusal.statusCode}`;
        metrics?.fallback(sr.subresource, `${upstream}-refused-${refusal.statusCode}`);
        ctx.log.info(
          { from: upstream, to: next.upstream(sr), attempt: next.name, reason },
          'auto: trying the other protocol',
        );
        this.choices.forget(this.choiceKey(sr));
      }
    }
    // every attempt refused: answer with what the client's own protocol got, if it was tried
    const refusal = refusals.get(sr.client.kind) ?? refusals.values().next().value!;
    trail?.rejected(refusal.statusCode, 'the upstream refused the upgrade');
    replyRefusal(socket, refusal);
  }

  /** Any other upgrade (a WebSocket watch, logs over WebSocket …): relayed as it is. */
  relayOther(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    return relayOtherUpgrade(this.cfg, req, socket, head);
  }

  private choiceKey(sr: StreamRequest): string {
    return ProtocolChoices.key(
      this.cfg.target.url.href,
      sr.subresource,
      `${sr.client.kind}:${sr.client.offered.join(',')}`,
    );
  }

  /** The attempts for this request, in order (docs/design.md's table and `auto`). */
  private plan(sr: StreamRequest): Attempt[] {
    const fitting = ATTEMPTS.filter((a) => a.applies(sr));
    const own = fitting.find((a) => a.upstream(sr) === sr.client.kind)!;
    const other = fitting.find((a) => a.upstream(sr) !== sr.client.kind);
    const mode = this.cfg.mode;
    if (mode !== 'auto') return mode === sr.client.kind ? [own] : other ? [other] : [own];
    if (!other) return [own];
    return this.choices.get(this.choiceKey(sr)) === other.upstream(sr) ? [other, own] : [own, other];
  }
}
