/**
 * What an attempt works with: the request, the settings every attempt shares, and the steps the
 * attempts have in common (dial, accept the client's WebSocket, open a SPDY session, start the
 * session record). A client that leaves while an attempt waits ends the attempt with ClientGone.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { type KeepaliveOptions, keepWebSocketAlive } from '../../bridge/keepalive.js';
import { PortForwardObserver, type RelayFraming } from '../../bridge/portforward-observer.js';
import type { RelayHooks } from '../../bridge/relay.js';
import { type ActiveSessions, type SessionMetricsSink, SessionRecord } from '../../bridge/session-record.js';
import { acceptWebSocket } from '../../channel/ws-accept.js';
import { HEADER_STREAM_PROTOCOL, UPGRADE_SPDY } from '../../k8s/protocols.js';
import type { StreamRequest } from '../../k8s/stream-request.js';
import type { Logger } from '../../observe/logger.js';
import type { Recorder, SessionTrail } from '../../record/recorder.js';
import { SpdySession } from '../../spdy/session.js';
import {
  type DialOptions,
  dialUpgrade,
  dialWebSocket,
  type UpgradeResult,
  type WebSocketResult,
} from '../../upstream/dial.js';
import { type CredentialPolicy, translatedHeaders } from '../../upstream/headers.js';
import type { CredentialedUpstream } from '../../upstream/target.js';

/** Settings every attempt shares (the router's configuration without its own). */
export interface SessionSettings {
  target: CredentialedUpstream;
  log: Logger;
  metrics?: SessionMetricsSink;
  /** WebSocket pings toward WebSocket peers, and the dead-peer limit. */
  keepalive: KeepaliveOptions;
  /** SPDY PING period toward SPDY peers (0: off), and how long an unanswered PING may stay out. */
  spdyPingMs: number;
  spdyPingTimeoutMs: number;
  handshakeTimeoutMs: number;
  /** Where sessions in flight are registered (shutdown, limits). */
  active?: ActiveSessions;
  /** Count forwarded connections of relayed port-forwards by reading their SPDY frames (off: a pure byte relay). */
  portForwardStats?: boolean;
  /** Largest SPDY control frame and inflated header block accepted from a peer (default: the core's). */
  spdyMaxHeaderBytes?: number;
  /** Session recordings and the audit log (`--record-dir`, `--audit-log`). */
  recorder?: Recorder;
}

/** Where WebSocket message sizes stop (x/net's limit, §3.3). */
const MAX_WS_PAYLOAD = 32 * 1024 * 1024;

function dialOptions(settings: SessionSettings, signal: AbortSignal): DialOptions {
  return { handshakeTimeoutMs: settings.handshakeTimeoutMs, maxPayload: MAX_WS_PAYLOAD, signal };
}

/** What the audit log says of a client that left before its session began (nginx's "client closed request"). */
export const CLIENT_CLOSED = 499;

/** The client left while the shim waited on the upstream: nothing is left open for it. */
export class ClientGone extends Error {
  constructor() {
    super('client left before the session began');
  }
}

/** True once the client's connection can no longer carry a session (a reset, or it was closed). */
export function clientLeft(socket: Duplex): boolean {
  return socket.destroyed || !socket.writable;
}

/**
 * Dial the upstream for the client on `socket`, with the settings' options. A client that leaves
 * while the upstream has not answered yet abandons the dial at once (its slot and sockets are not
 * held until the handshake timeout); one that leaves as the answer comes has whatever the dial
 * opened closed. Either way the attempt stops with ClientGone. Leaving is a reset or a close, and
 * for a WebSocket client (`webSocket`) its end too: it may send nothing before the 101 (RFC 6455
 * §4.1), so one that ended its side can never finish the protocol. A SPDY client may send its
 * frames and end its side before the 101 comes, and still read the session's output.
 */
export async function dialFor<R extends UpgradeResult | WebSocketResult>(
  settings: SessionSettings,
  socket: Duplex,
  webSocket: boolean,
  dial: (opts: DialOptions) => Promise<R>,
): Promise<R> {
  const abandon = new AbortController();
  const left = () => abandon.abort();
  const gone = () => clientLeft(socket) || (webSocket && socket.readableEnded);
  // the request's reading goes on under the upgrade: a client's FIN or reset shows up here
  socket.once('close', left);
  if (webSocket) socket.once('end', left);
  let r: R;
  try {
    r = await dial(dialOptions(settings, abandon.signal));
  } catch (err) {
    throw abandon.signal.aborted || gone() ? new ClientGone() : err;
  } finally {
    socket.off('end', left).off('close', left);
  }
  if (!gone()) return r;
  if (r.ok) {
    if ('ws' in r) r.ws.terminate();
    else r.socket.destroy();
  }
  throw new ClientGone();
}

/** The first value of a header, trimmed ('' when absent). */
export function headerValue(v: string | string[] | undefined): string {
  return (Array.isArray(v) ? v[0] : v)?.trim() ?? '';
}

export class AttemptContext {
  constructor(
    readonly settings: SessionSettings,
    /** Accepts the client's WebSocket (one per router, with our Via header). */
    private readonly wss: WebSocketServer,
    readonly req: IncomingMessage,
    readonly socket: Duplex,
    readonly head: Buffer,
    readonly sr: StreamRequest,
    readonly policy: CredentialPolicy,
    readonly log: Logger,
    readonly trail: SessionTrail | undefined,
  ) {}

  /** Identity headers for a rebuilt request (headers.ts). */
  translatedHeaders() {
    const { client } = this.sr;
    return translatedHeaders(
      this.req,
      this.policy,
      client.kind === 'websocket' ? client.bearerToken : undefined,
    );
  }

  /** The upstream SPDY upgrade for a rebuilt request offering `protocols` (§2.1). */
  async dialSpdy(protocols: string[]): Promise<UpgradeResult> {
    const headers = {
      ...this.translatedHeaders(),
      connection: 'Upgrade',
      upgrade: UPGRADE_SPDY,
      [HEADER_STREAM_PROTOCOL]: protocols,
    };
    return dialFor(this.settings, this.socket, this.sr.client.kind === 'websocket', (opts) =>
      dialUpgrade(this.settings.target, 'POST', this.sr.target, headers, opts),
    );
  }

  /** The upstream WebSocket for a rebuilt request offering `protocols`. */
  async dialWebSocket(protocols: string[]): Promise<WebSocketResult> {
    return dialFor(this.settings, this.socket, this.sr.client.kind === 'websocket', (opts) =>
      dialWebSocket(this.settings.target, this.sr.target, protocols, this.translatedHeaders(), opts),
    );
  }

  /** Accept the client's WebSocket; if the client left meanwhile, close the upstream side (`drop`) too. */
  async acceptWebSocket(protocol: string, drop: () => void): Promise<WebSocket> {
    try {
      return await acceptWebSocket(
        this.wss,
        this.req,
        this.socket,
        this.head,
        this.sr.client.offered.length > 0 ? protocol : '',
      );
    } catch {
      drop();
      throw new ClientGone();
    }
  }

  spdySession(socket: Duplex, role: 'client' | 'server', head: Buffer): SpdySession {
    const s = this.settings;
    return new SpdySession(socket, {
      role,
      head,
      pingIntervalMs: s.spdyPingMs,
      pingTimeoutMs: s.spdyPingTimeoutMs,
      maxControlFrameSize: s.spdyMaxHeaderBytes,
      maxHeaderBytes: s.spdyMaxHeaderBytes,
      log: s.log,
    });
  }

  /** The session's record (its closing line, metrics, registration), attached to the recording. */
  record(client: string, upstream: string, mode: 'translate' | 'relay'): SessionRecord {
    const { sr, settings } = this;
    const record = new SessionRecord(
      { subresource: sr.subresource, client, upstream, mode, namespace: sr.namespace, pod: sr.pod },
      settings.log,
      settings.metrics,
      settings.active,
    );
    this.trail?.attach(record);
    return record;
  }

  /** Pings on a WebSocket the shim holds; a dead peer is noted on the record and cut. Returns the stop. */
  keepAlive(ws: WebSocket, record: SessionRecord): () => void {
    return keepWebSocketAlive(ws, this.settings.keepalive, (why) => {
      record.note('keepalive', why);
      ws.terminate();
    });
  }

  /**
   * A relayed port-forward's figures: with `portForwardStats`, an observer reads the SPDY session the
   * relay carries and counts connections; else (or for a legacy channel relay, `framing` undefined)
   * the session line says they were not counted.
   */
  forwardHooks(record: SessionRecord, framing: RelayFraming | undefined): RelayHooks {
    // the audit log wants the figures per port too
    const wanted = this.settings.portForwardStats || this.settings.recorder?.audits === true;
    if (wanted && framing) return new PortForwardObserver(record, this.log, framing).hooks;
    record.note('portForwardStats', wanted ? 'unavailable' : 'off');
    return {};
  }
}
