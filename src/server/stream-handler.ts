/**
 * Streaming upgrades (exec, attach, port-forward): the translation table of docs/design.md. For each
 * request it plans the upstream attempts — the client's own protocol relayed byte for byte, or the
 * other protocol translated — and runs them in order until one is accepted. Nothing reaches the
 * client before an attempt succeeded, so a client never sees a failed first try; if every attempt is
 * refused, the client gets the refusal of its own protocol verbatim (so kubectl falls back exactly
 * as it would without us, docs/protocols.md §2.3).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { type KeepaliveOptions, keepWebSocketAlive } from '../bridge/keepalive.js';
import { bridgeLegacyPortForward, legacyPorts, validPorts } from '../bridge/legacy-portforward.js';
import { PortForwardObserver, type RelayFraming } from '../bridge/portforward-observer.js';
import { type RelayHooks, relay } from '../bridge/relay.js';
import { RelayedExec, wsExecRelayHooks } from '../bridge/relayed-exec.js';
import { type ActiveSessions, type SessionMetricsSink, SessionRecord } from '../bridge/session-record.js';
import { SpdyStatusGuard } from '../bridge/spdy-status-guard.js';
import { bridgeSpdyToWsExec } from '../bridge/spdy-to-ws-exec.js';
import { bridgeWsToSpdyExec } from '../bridge/ws-to-spdy-exec.js';
import { TunnelStream } from '../channel/tunnel.js';
import { acceptWebSocket, createWebSocketServer } from '../channel/ws-accept.js';
import {
  HEADER_STREAM_PROTOCOL,
  headerHasToken,
  negotiate,
  PORTFORWARD,
  RC_V1,
  RC_V4,
  RC_V4_BASE64,
  RC_V5,
  type RemoteCommandVersion,
  remoteCommandVersion,
  SPDY_REMOTECOMMAND_SERVER,
  TUNNEL_PORTFORWARD,
  TUNNEL_PREFIX,
  UPGRADE_SPDY,
  WS_LEGACY_PORTFORWARD,
  WS_LEGACY_REMOTECOMMAND,
} from '../k8s/protocols.js';
import type { Logger } from '../observe/logger.js';
import type { Recorder, SessionTrail } from '../record/recorder.js';
import { SpdySession } from '../spdy/session.js';
import { ProtocolChoices, type UpstreamProtocol } from '../upstream/choice.js';
import { type AuthHeaders, CREDENTIALS_UNAVAILABLE } from '../upstream/credentials.js';
import {
  type DialTarget,
  dialUpgrade,
  dialWebSocket,
  type Refusal,
  syntheticRefusal,
  type UpgradeResult,
  type WebSocketResult,
} from '../upstream/dial.js';
import { type CredentialPolicy, relayedHeaders, translatedHeaders } from '../upstream/headers.js';
import { execStreams, type StreamRequest } from './classify.js';
import { type RequestTarget, requestTarget } from './request-target.js';
import { VIA, VIA_LINE } from './via.js';

export type UpstreamMode = 'auto' | UpstreamProtocol;

/** What the handler needs of the upstream target (src/upstream/target.ts). */
export interface StreamTarget extends DialTarget {
  authHeaders(): Promise<AuthHeaders>;
  readonly injectsCredentials: boolean;
  /** Drop cached credentials after a 401, as client-go does (the next request fetches fresh ones). */
  invalidateCredentials?(): void;
}

export interface UpgradeMetricsSink extends SessionMetricsSink {
  upgrade(subresource: string, protocol: string, result: 'ok' | 'refused' | 'error'): void;
  fallback(subresource: string, reason: string): void;
}

export interface StreamHandlerConfig {
  target: StreamTarget;
  mode: UpstreamMode;
  log: Logger;
  metrics?: UpgradeMetricsSink;
  /** WebSocket pings toward WebSocket peers, and the dead-peer limit. */
  keepalive: KeepaliveOptions;
  /** SPDY PING period toward SPDY peers (0: off), and how long an unanswered PING may stay out. */
  spdyPingMs: number;
  spdyPingTimeoutMs: number;
  handshakeTimeoutMs: number;
  /** How long auto remembers that the other protocol worked. */
  choiceTtlMs: number;
  /** Where sessions in flight are registered (shutdown, limits). */
  active?: ActiveSessions;
  /** Count forwarded connections of relayed port-forwards by reading their SPDY frames (off: a pure byte relay). */
  portForwardStats?: boolean;
  /** Largest SPDY control frame and inflated header block accepted from a peer (default: the core's). */
  spdyMaxHeaderBytes?: number;
  /** Session recordings and the audit log (`--record-dir`, `--audit-log`). */
  recorder?: Recorder;
}

/** WebSocket remotecommand protocols we can translate, in no particular order (the client's order wins). */
const WS_TRANSLATABLE = [RC_V5, ...WS_LEGACY_REMOTECOMMAND];
/** What we offer a SPDY upstream when translating (the CRI picks v4, §2.1). */
const SPDY_UPSTREAM_OFFER = SPDY_REMOTECOMMAND_SERVER;
/** Where WebSocket message sizes stop (x/net's limit, §3.3). */
const MAX_WS_PAYLOAD = 32 * 1024 * 1024;

interface Attempt {
  upstream: UpstreamProtocol;
  /** Resolves undefined once the session is established (and running), or with the refusal. */
  run(): Promise<Refusal | undefined>;
}

export class StreamHandler {
  private readonly choices: ProtocolChoices;
  private readonly wss: WebSocketServer;

  constructor(private readonly cfg: StreamHandlerConfig) {
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
    const policy = await this.credentialPolicy();
    const ctx: Ctx = {
      req,
      socket,
      head,
      sr,
      policy,
      log: log.child({ subresource: sr.subresource, pod: sr.pod }),
      trail,
    };
    const attempts = this.plan(ctx);
    const refusals = new Map<UpstreamProtocol, Refusal>();
    for (let i = 0; i < attempts.length; i++) {
      const attempt = attempts[i]!;
      let refusal: Refusal | undefined;
      try {
        if (clientLeft(socket)) throw new ClientGone();
        refusal = await attempt.run();
      } catch (err) {
        metrics?.upgrade(sr.subresource, attempt.upstream, 'error');
        if (err instanceof ClientGone) {
          ctx.log.info({ upstream: attempt.upstream }, err.message);
          return;
        }
        const message = `kubeshim could not reach the upstream for ${sr.subresource}: ${(err as Error).message}`;
        ctx.log.warn({ err: (err as Error).message, upstream: attempt.upstream }, 'upstream dial failed');
        trail?.rejected(502, message);
        replyRefusal(socket, syntheticRefusal(502, message));
        return;
      }
      if (refusal === undefined) {
        metrics?.upgrade(sr.subresource, attempt.upstream, 'ok');
        if (i > 0 && this.cfg.mode === 'auto') this.choices.remember(this.choiceKey(sr), attempt.upstream);
        return;
      }
      metrics?.upgrade(sr.subresource, attempt.upstream, 'refused');
      if (refusal.statusCode === 401 && this.cfg.target.injectsCredentials)
        this.cfg.target.invalidateCredentials?.();
      refusals.set(attempt.upstream, refusal);
      const next = attempts[i + 1];
      if (next) {
        const reason = `upstream refused ${attempt.upstream} with ${refusal.statusCode}`;
        metrics?.fallback(sr.subresource, `${attempt.upstream}-refused-${refusal.statusCode}`);
        ctx.log.info(
          { from: attempt.upstream, to: next.upstream, reason },
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

  private choiceKey(sr: StreamRequest): string {
    return ProtocolChoices.key(
      this.cfg.target.url.href,
      sr.subresource,
      `${sr.client.kind}:${sr.client.offered.join(',')}`,
    );
  }

  /** The attempts for this request, in order (docs/design.md's table and `auto`). */
  private plan(ctx: Ctx): Attempt[] {
    const { sr } = ctx;
    const own: Attempt = { upstream: sr.client.kind, run: () => this.passThrough(ctx) };
    const other = this.translation(ctx);
    const mode = this.cfg.mode;
    if (mode !== 'auto') return mode === sr.client.kind ? [own] : other ? [other] : [own];
    if (!other) return [own];
    return this.choices.get(this.choiceKey(sr)) === other.upstream ? [other, own] : [own, other];
  }

  /** The translating attempt for this request, if one exists. */
  private translation(ctx: Ctx): Attempt | undefined {
    const { sr } = ctx;
    if (sr.subresource === 'portforward') {
      if (sr.client.kind === 'spdy') return { upstream: 'websocket', run: () => this.spdyToTunnel(ctx) };
      if (tunnelProtocols(sr.client.offered).length > 0)
        return { upstream: 'spdy', run: () => this.tunnelToSpdy(ctx) };
      return { upstream: 'spdy', run: () => this.legacyPortForward(ctx) };
    }
    if (sr.client.kind === 'spdy') return { upstream: 'websocket', run: () => this.spdyToWsExec(ctx) };
    return { upstream: 'spdy', run: () => this.wsToSpdyExec(ctx) };
  }

  // ---- the attempts ----------------------------------------------------------------------------

  /** Same protocol both sides: relay the request, then the bytes. */
  private async passThrough(ctx: Ctx): Promise<Refusal | undefined> {
    const { req, socket, head, sr } = ctx;
    const r = await this.relayHandshake(req, socket, sr.target, ctx.policy);
    if (!r.ok) return r.refusal;
    const negotiated =
      sr.client.kind === 'spdy'
        ? headerValue(r.response.headers[HEADER_STREAM_PROTOCOL])
        : headerValue(r.response.headers['sec-websocket-protocol']);
    const name = `${sr.client.kind}/${negotiated || '-'}`;
    const record = this.record(ctx, name, name, 'relay');
    let hooks: RelayHooks;
    let exec: RelayedExec | undefined;
    if (sr.subresource === 'portforward') {
      hooks = this.forwardHooks(ctx, record, relayedFraming(sr, negotiated));
    } else {
      // read the channels passing by: the session's status (its true outcome) and its recording
      const version = remoteCommandVersion(negotiated) ?? remoteCommandVersion(RC_V1)!;
      if (sr.client.kind === 'spdy') {
        const guard = new SpdyStatusGuard(version, socket, ctx.log, record);
        exec = guard.exec;
        hooks = {
          onClientData: (c) => guard.onClientData(c),
          onUpstreamData: (c) => guard.onUpstreamData(c),
          onUpstreamEnd: (e) => guard.onUpstreamEnd(e),
        };
      } else {
        exec = new RelayedExec(version, record);
        hooks = wsExecRelayHooks(exec, version, socket, ctx.log);
      }
    }
    void relay(
      { client: socket, upstream: r.socket, clientHead: head, upstreamHead: r.head },
      record,
      hooks,
    ).then((reason) => {
      exec?.settle();
      record.finish(reason);
    });
    return undefined;
  }

  /** Any other upgrade (a WebSocket watch, logs over WebSocket …): relayed as it is. */
  async relayOther(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const trail = await this.cfg.recorder?.open(req, undefined);
    const policy = await this.credentialPolicy();
    const target = requestTarget(req);
    let r: UpgradeResult;
    try {
      r = await this.relayHandshake(req, socket, target, policy);
    } catch (err) {
      if (!(err instanceof ClientGone)) throw err;
      this.cfg.log.info({ path: target.path }, err.message);
      return;
    }
    if (!r.ok) {
      trail?.rejected(r.refusal.statusCode, 'the upstream refused the upgrade');
      replyRefusal(socket, r.refusal);
      return;
    }
    const protocol = headerValue(req.headers.upgrade) || 'upgrade';
    const record = new SessionRecord(
      { subresource: 'other', client: protocol, upstream: protocol, mode: 'relay', namespace: '', pod: '' },
      this.cfg.log,
      undefined,
      this.cfg.active,
    );
    record.note('path', target.path);
    trail?.attach(record);
    void relay({ client: socket, upstream: r.socket, clientHead: head, upstreamHead: r.head }, record).then(
      (reason) => record.finish(reason),
    );
  }

  /** Send the client's request on as it came; on 101 give the client the upstream's response head. */
  private async relayHandshake(
    req: IncomingMessage,
    socket: Duplex,
    path: RequestTarget,
    policy: CredentialPolicy,
  ): Promise<UpgradeResult> {
    const r = stillWanted(
      socket,
      await dialUpgrade(
        this.cfg.target,
        req.method ?? 'GET',
        path,
        relayedHeaders(req, policy),
        this.dialOpts(),
      ),
    );
    if (r.ok) {
      socket.write(
        responseHead(r.response.statusCode ?? 101, r.response.statusMessage ?? '', r.response.rawHeaders),
      );
    }
    return r;
  }

  /** WebSocket exec/attach client → SPDY upstream (§8.1). */
  private async wsToSpdyExec(ctx: Ctx): Promise<Refusal | undefined> {
    const { req, sr } = ctx;
    const clientVersion = this.websocketVersion(sr);
    if (clientVersion === undefined) return refusalNoProtocol();
    const malformed = malformedWebSocketRequest(req);
    if (malformed) return malformed;
    const r = stillWanted(ctx.socket, await this.dialSpdy(ctx, SPDY_UPSTREAM_OFFER));
    if (!r.ok) return r.refusal;
    if (!headerHasToken(r.response.headers.upgrade, 'spdy/3.1')) {
      r.socket.destroy();
      return syntheticRefusal(502, 'the upstream answered 101 without Upgrade: SPDY/3.1');
    }
    // without the header client-go assumes v1 (§2.1); so do we
    const upstreamVersion =
      remoteCommandVersion(headerValue(r.response.headers[HEADER_STREAM_PROTOCOL])) ??
      remoteCommandVersion(RC_V1)!;
    const ws = await this.acceptWebSocket(ctx, clientVersion.name, () => r.socket.destroy());
    const upstream = this.spdySession(r.socket, 'client', r.head);
    const record = this.record(
      ctx,
      `websocket/${clientVersion.name}`,
      `spdy/${upstreamVersion.name}`,
      'translate',
    );
    void bridgeWsToSpdyExec({
      client: ws,
      clientVersion,
      upstream,
      upstreamVersion,
      streams: execStreams(sr.query),
      record,
      log: ctx.log,
      keepalive: this.cfg.keepalive,
    });
    return undefined;
  }

  /** SPDY exec/attach client → WebSocket upstream: v5, else the legacy v4 path (§8.2). */
  private async spdyToWsExec(ctx: Ctx): Promise<Refusal | undefined> {
    const { sr, socket, head } = ctx;
    const offered = negotiate(sr.client.offered, SPDY_REMOTECOMMAND_SERVER);
    if (offered === undefined) return refusalNoSpdyProtocol(sr.client.offered);
    const clientVersion = remoteCommandVersion(offered)!;
    const headers = this.translatedHeaders(ctx);
    let dialed = stillWanted(
      socket,
      await dialWebSocket(this.cfg.target, sr.target, [RC_V5], headers, this.dialOpts()),
    );
    if (!dialed.ok && (dialed.refusal.statusCode === 400 || dialed.refusal.statusCode === 403)) {
      ctx.log.warn(
        { status: dialed.refusal.statusCode },
        `upstream refused ${RC_V5}; trying ${RC_V4}, over which stdin EOF cannot cross (piped stdin and cp to a pod will hang)`,
      );
      const legacy = stillWanted(
        socket,
        await dialWebSocket(this.cfg.target, sr.target, [RC_V4], headers, this.dialOpts()),
      );
      if (legacy.ok) dialed = legacy;
    }
    if (!dialed.ok) return dialed.refusal;
    const upstreamVersion = remoteCommandVersion(dialed.protocol) ?? remoteCommandVersion(RC_V4)!;
    socket.write(spdyUpgradeResponse(clientVersion.name));
    const client = this.spdySession(socket, 'server', head);
    const record = this.record(
      ctx,
      `spdy/${clientVersion.name}`,
      `websocket/${upstreamVersion.name}`,
      'translate',
    );
    void bridgeSpdyToWsExec({
      client,
      clientVersion,
      upstream: dialed.ws,
      upstreamVersion,
      streams: execStreams(sr.query),
      record,
      log: ctx.log,
      keepalive: this.cfg.keepalive,
      streamWaitMs: 30_000,
    });
    return undefined;
  }

  /** Tunnelled port-forward client → SPDY upstream: unwrap the SPDY bytes (§4.3, §8.3). */
  private async tunnelToSpdy(ctx: Ctx): Promise<Refusal | undefined> {
    const { req, sr } = ctx;
    const malformed = malformedWebSocketRequest(req);
    if (malformed) return malformed;
    const r = stillWanted(ctx.socket, await this.dialSpdy(ctx, tunnelProtocols(sr.client.offered)));
    if (!r.ok) return r.refusal;
    const protocol = headerValue(r.response.headers[HEADER_STREAM_PROTOCOL]);
    if (!headerHasToken(r.response.headers.upgrade, 'spdy/3.1') || !protocol) {
      r.socket.destroy();
      return syntheticRefusal(500, 'unable to upgrade: missing upgrade headers in response');
    }
    const ws = await this.acceptWebSocket(ctx, TUNNEL_PREFIX + protocol, () => r.socket.destroy());
    const record = this.record(ctx, `websocket/${TUNNEL_PREFIX}${protocol}`, `spdy/${protocol}`, 'translate');
    const stopKeepalive = keepWebSocketAlive(ws, this.cfg.keepalive, (why) => {
      record.note('keepalive', why);
      ws.terminate();
    });
    const hooks = this.forwardHooks(ctx, record, 'spdy');
    void relay(
      { client: new TunnelStream(ws), upstream: r.socket, upstreamHead: r.head },
      record,
      hooks,
    ).then((reason) => {
      stopKeepalive();
      record.finish(reason);
    });
    return undefined;
  }

  /** SPDY port-forward client → tunnelled WebSocket upstream: wrap the SPDY bytes (§8.3). */
  private async spdyToTunnel(ctx: Ctx): Promise<Refusal | undefined> {
    const { sr, socket, head } = ctx;
    const offered = sr.client.offered.map((p) => TUNNEL_PREFIX + p);
    const dialed = stillWanted(
      socket,
      await dialWebSocket(this.cfg.target, sr.target, offered, this.translatedHeaders(ctx), this.dialOpts()),
    );
    if (!dialed.ok) return dialed.refusal;
    const protocol = dialed.protocol.slice(TUNNEL_PREFIX.length);
    socket.write(spdyUpgradeResponse(protocol));
    const record = this.record(ctx, `spdy/${protocol}`, `websocket/${dialed.protocol}`, 'translate');
    const ws = dialed.ws;
    const stopKeepalive = keepWebSocketAlive(ws, this.cfg.keepalive, (why) => {
      record.note('keepalive', why);
      ws.terminate();
    });
    const hooks = this.forwardHooks(ctx, record, 'spdy');
    void relay({ client: socket, clientHead: head, upstream: new TunnelStream(ws) }, record, hooks).then(
      (reason) => {
        stopKeepalive();
        record.finish(reason);
      },
    );
    return undefined;
  }

  /**
   * Legacy WebSocket port-forward client (`ports=`, §4.2) → a SPDY port-forward session, over a raw
   * SPDY upgrade or, where the path refuses SPDY, over the WebSocket tunnel.
   */
  private async legacyPortForward(ctx: Ctx): Promise<Refusal | undefined> {
    const { req, sr } = ctx;
    const offered = sr.client.offered;
    const protocol = offered.length === 0 ? '' : negotiate(offered, WS_LEGACY_PORTFORWARD);
    if (protocol === undefined) return refusalNoProtocol();
    const ports = legacyPorts(sr.query);
    if (!validPorts(ports)) return syntheticRefusal(400, 'query parameter "port" is required', 'BadRequest');
    const malformed = malformedWebSocketRequest(req);
    if (malformed) return malformed;
    let upstream: SpdySession;
    let upstreamName: string;
    const r = stillWanted(ctx.socket, await this.dialSpdy(ctx, [PORTFORWARD]));
    if (r.ok) {
      upstream = this.spdySession(r.socket, 'client', r.head);
      upstreamName = `spdy/${PORTFORWARD}`;
    } else {
      const t = stillWanted(
        ctx.socket,
        await dialWebSocket(
          this.cfg.target,
          sr.target,
          [TUNNEL_PORTFORWARD],
          this.translatedHeaders(ctx),
          this.dialOpts(),
        ),
      );
      if (!t.ok) return r.refusal;
      upstream = this.spdySession(new TunnelStream(t.ws), 'client', Buffer.alloc(0));
      upstreamName = `websocket/${TUNNEL_PORTFORWARD}`;
    }
    const ws = await this.acceptWebSocket(ctx, protocol, () => upstream.destroy());
    const record = this.record(ctx, `websocket/${protocol || '-'}`, upstreamName, 'translate');
    void bridgeLegacyPortForward({
      client: ws,
      base64: protocol === RC_V4_BASE64,
      ports,
      upstream,
      record,
      log: ctx.log,
      keepalive: this.cfg.keepalive,
    });
    return undefined;
  }

  // ---- helpers -----------------------------------------------------------------------------------

  /**
   * A relayed port-forward's figures: with `portForwardStats`, an observer reads the SPDY session the
   * relay carries and counts connections; else (or for a legacy channel relay, `framing` undefined)
   * the session line says they were not counted.
   */
  private forwardHooks(ctx: Ctx, record: SessionRecord, framing: RelayFraming | undefined): RelayHooks {
    // the audit log wants the figures per port too
    const wanted = this.cfg.portForwardStats || this.cfg.recorder?.audits === true;
    if (wanted && framing) return new PortForwardObserver(record, ctx.log, framing).hooks;
    record.note('portForwardStats', wanted ? 'unavailable' : 'off');
    return {};
  }

  private async credentialPolicy(): Promise<CredentialPolicy> {
    let auth: AuthHeaders;
    try {
      auth = await this.cfg.target.authHeaders();
    } catch (err) {
      this.cfg.log.warn({ err: (err as Error).message }, 'could not get upstream credentials');
      throw new Error(CREDENTIALS_UNAVAILABLE);
    }
    return { injectsCredentials: this.cfg.target.injectsCredentials, auth };
  }

  /** The upstream SPDY upgrade for a rebuilt request offering `protocols` (§2.1). */
  private dialSpdy(ctx: Ctx, protocols: string[]) {
    const headers = {
      ...this.translatedHeaders(ctx),
      connection: 'Upgrade',
      upgrade: UPGRADE_SPDY,
      [HEADER_STREAM_PROTOCOL]: protocols,
    };
    return dialUpgrade(this.cfg.target, 'POST', ctx.sr.target, headers, this.dialOpts());
  }

  private dialOpts() {
    return { handshakeTimeoutMs: this.cfg.handshakeTimeoutMs, maxPayload: MAX_WS_PAYLOAD };
  }

  /** Identity headers for a rebuilt request; a browser's bearer subprotocol becomes Authorization (§1.3). */
  private translatedHeaders(ctx: Ctx) {
    const headers = translatedHeaders(ctx.req, ctx.policy);
    const { client } = ctx.sr;
    if (client.kind === 'websocket' && client.bearerToken && !ctx.policy.injectsCredentials) {
      headers['authorization'] = `Bearer ${client.bearerToken}`;
    }
    return headers;
  }

  /** The client's first offered WebSocket protocol we can translate; no offer at all means legacy v1 (§2.2). */
  private websocketVersion(sr: StreamRequest): RemoteCommandVersion | undefined {
    if (sr.client.offered.length === 0) return remoteCommandVersion(RC_V1);
    const name = negotiate(sr.client.offered, WS_TRANSLATABLE);
    return name === undefined ? undefined : remoteCommandVersion(name);
  }

  /** Accept the client's WebSocket; if the client left meanwhile, close the upstream side (`drop`) too. */
  private async acceptWebSocket(ctx: Ctx, protocol: string, drop: () => void): Promise<WebSocket> {
    try {
      return await acceptWebSocket(
        this.wss,
        ctx.req,
        ctx.socket,
        ctx.head,
        ctx.sr.client.offered.length > 0 ? protocol : '',
      );
    } catch {
      drop();
      throw new ClientGone();
    }
  }

  private spdySession(socket: Duplex, role: 'client' | 'server', head: Buffer): SpdySession {
    return new SpdySession(socket, {
      role,
      head,
      pingIntervalMs: this.cfg.spdyPingMs,
      pingTimeoutMs: this.cfg.spdyPingTimeoutMs,
      maxControlFrameSize: this.cfg.spdyMaxHeaderBytes,
      maxHeaderBytes: this.cfg.spdyMaxHeaderBytes,
    });
  }

  private record(ctx: Ctx, client: string, upstream: string, mode: 'translate' | 'relay'): SessionRecord {
    const { sr } = ctx;
    const record = new SessionRecord(
      { subresource: sr.subresource, client, upstream, mode, namespace: sr.namespace, pod: sr.pod },
      this.cfg.log,
      this.cfg.metrics,
      this.cfg.active,
    );
    ctx.trail?.attach(record);
    return record;
  }
}

/** The client left while the shim waited on the upstream: nothing is left open for it. */
class ClientGone extends Error {
  constructor() {
    super('client left before the session began');
  }
}

/** True once the client's connection can no longer carry a session (a reset, or it was closed). */
function clientLeft(socket: Duplex): boolean {
  return socket.destroyed || !socket.writable;
}

/**
 * A dial's result, if the client is still there to use it; else whatever the dial opened upstream
 * is closed at once and the attempt stops (a reset during the upstream's answer holds nothing).
 */
function stillWanted<R extends UpgradeResult | WebSocketResult>(socket: Duplex, r: R): R {
  if (!clientLeft(socket)) return r;
  if (r.ok) {
    if ('ws' in r) r.ws.terminate();
    else r.socket.destroy();
  }
  throw new ClientGone();
}

interface Ctx {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  sr: StreamRequest;
  policy: CredentialPolicy;
  log: Logger;
  trail: SessionTrail | undefined;
}

/** SPDY protocols carried by tunnel subprotocols: `SPDY/3.1+x.k8s.io` → `x.k8s.io` (§4.3). */
export function tunnelProtocols(offered: string[]): string[] {
  return offered
    .filter((p) => p.startsWith(TUNNEL_PREFIX) && p.endsWith('.k8s.io'))
    .map((p) => p.slice(TUNNEL_PREFIX.length));
}

/** What a pass-through port-forward relay carries: SPDY, a tunnel's frames, or (legacy) channels. */
function relayedFraming(sr: StreamRequest, negotiated: string): RelayFraming | undefined {
  if (sr.client.kind === 'spdy') return 'spdy';
  return negotiated.startsWith(TUNNEL_PREFIX) ? 'websocket' : undefined;
}

function headerValue(v: string | string[] | undefined): string {
  return (Array.isArray(v) ? v[0] : v)?.trim() ?? '';
}

/** ws would answer these itself with a 400 and no callback; we check first so nothing dangles. */
function malformedWebSocketRequest(req: IncomingMessage): Refusal | undefined {
  const refuse = (why: string) => syntheticRefusal(400, why, 'BadRequest');
  if (req.method !== 'GET') return refuse('WebSocket upgrades must use GET');
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key))
    return refuse('missing or invalid Sec-WebSocket-Key');
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return refuse('unsupported Sec-WebSocket-Version');
  return undefined;
}

/** What x/net answers when no subprotocol matches: 403, empty body (§2.2). */
function refusalNoProtocol(): Refusal {
  return { statusCode: 403, statusMessage: 'Forbidden', rawHeaders: [], body: Buffer.alloc(0) };
}

/** What the CRI answers when no SPDY protocol matches (§2.1). */
function refusalNoSpdyProtocol(offered: string[]): Refusal {
  const rawHeaders: string[] = ['Content-Type', 'text/plain; charset=utf-8'];
  for (const p of SPDY_REMOTECOMMAND_SERVER) rawHeaders.push('X-Accepted-Stream-Protocol-Versions', p);
  const body = Buffer.from(
    `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${SPDY_REMOTECOMMAND_SERVER.join(' ')}]`,
  );
  return { statusCode: 403, statusMessage: 'Forbidden', rawHeaders, body };
}

function spdyUpgradeResponse(protocol: string): string {
  return `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${UPGRADE_SPDY}\r\nX-Stream-Protocol-Version: ${protocol}\r\n${VIA_LINE}\r\n`;
}

function responseHead(status: number, message: string, rawHeaders: string[]): string {
  let head = `HTTP/1.1 ${status} ${message}\r\n`;
  for (let i = 0; i < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return `${head}${VIA_LINE}\r\n`;
}

/** Replay a refusal on the raw client socket, then close it (what the apiserver's relay does, §5.3). */
export function replyRefusal(socket: Duplex, refusal: Refusal): void {
  if (socket.destroyed) return;
  const skip = new Set(['connection', 'transfer-encoding', 'content-length', 'keep-alive', 'upgrade']);
  const raw: string[] = [];
  for (let i = 0; i < refusal.rawHeaders.length; i += 2) {
    if (!skip.has(refusal.rawHeaders[i]!.toLowerCase()))
      raw.push(refusal.rawHeaders[i]!, refusal.rawHeaders[i + 1]!);
  }
  raw.push('Content-Length', String(refusal.body.length), 'Connection', 'close');
  socket.end(
    Buffer.concat([Buffer.from(responseHead(refusal.statusCode, refusal.statusMessage, raw)), refusal.body]),
  );
}
