/**
 * Streaming upgrades, routed as a cluster of the chosen generation routes them (docs/protocols.md §5.1,
 * §10.2). After the apiserver's own checks (pod, container, options), a request reaches one of:
 * - the CRI streaming server (byte-relayed by apiserver and kubelet): SPDY, and the legacy
 *   WebSocket protocols;
 * - the apiserver's StreamTranslator: WebSocket whose first protocol line offers v5 (1.30+);
 * - the apiserver's TunnelingHandler: port-forward WebSocket offering `SPDY/3.1+…k8s.io` (1.31+);
 * or is refused the way that generation refuses it. Every refusal is recorded.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import { TunnelStream } from '../channel/tunnel.js';
import { wsSocket } from '../channel/ws-internals.js';
import {
  HEADER_STREAM_PROTOCOL,
  negotiate,
  PORTFORWARD,
  RC_V1,
  RC_V4_BASE64,
  RC_V5,
  type RemoteCommandVersion,
  remoteCommandVersion,
  SPDY_REMOTECOMMAND_SERVER,
  splitProtocolHeader,
  TUNNEL_PREFIX,
  WS_LEGACY_PORTFORWARD,
  WS_LEGACY_REMOTECOMMAND,
} from '../k8s/protocols.js';
import type { Subresource } from '../k8s/stream-request.js';
import type { Logger } from '../observe/logger.js';
import { acceptSpdy, negotiateSpdy, noCommonProtocol } from '../remotecommand/spdy-handshake.js';
import { SpdySession } from '../spdy/session.js';
import { type Answer, answerStatus, socketAnswer, xnetRefusal } from './answer.js';
import { methodNotAllowed, pathNotFound, upgradeRequired } from './api-errors.js';
import type { Cluster } from './cluster.js';
import type { GenerationTraits } from './generation.js';
import { type CommandTarget, isStatus, type PortForwardTarget, resolvePodTarget } from './pod-target.js';
import type { CommandRequest } from './remotecommand.js';
import type { Route } from './routes.js';
import type { SessionStart, SessionTracker } from './sessions.js';
import { serveSpdyCommand } from './spdy-command.js';
import { servePortForward } from './spdy-portforward.js';
import { serveWsCommand } from './ws-command.js';
import {
  acceptWebSocket,
  firstProtocolLine,
  isExactWebSocketUpgrade,
  xnetAccepts,
  xnetSelect,
} from './ws-handshake.js';
import { parsePorts, serveWsPortForward } from './ws-portforward.js';

export interface UpgradeContext {
  cluster: Cluster;
  traits: GenerationTraits;
  tracker: SessionTracker;
  log: Logger;
  wss: WebSocketServer;
}

/** One upgrade request, with what every handler needs of it. */
interface Upgrade {
  ctx: UpgradeContext;
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  answer: Answer;
  websocket: boolean;
  /** WebSocket: the first protocol line; SPDY: every X-Stream-Protocol-Version value. */
  offered: string[];
  userAgent: string | undefined;
}

export function handleUpgrade(
  ctx: UpgradeContext,
  route: Route,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  const answer = socketAnswer(socket);
  if (route.kind !== 'podSubresource' || route.subresource === 'log') {
    answerStatus(answer, pathNotFound()); // watch or logs over WebSocket are not emulated
    return;
  }
  if (req.method !== 'GET' && req.method !== 'POST') {
    answerStatus(answer, methodNotAllowed());
    return;
  }
  const query = new URL(req.url ?? '/', 'http://emulator').searchParams;
  const target = resolvePodTarget(ctx.cluster, route.namespace, route.name, route.subresource, query);
  if (isStatus(target)) {
    answerStatus(answer, target);
    return;
  }
  const websocket = isExactWebSocketUpgrade(req);
  const up: Upgrade = {
    ctx,
    req,
    socket,
    head,
    answer,
    websocket,
    offered: websocket ? firstProtocolLine(req) : splitProtocolHeader(req.headers[HEADER_STREAM_PROTOCOL]),
    userAgent: req.headers['user-agent'],
  };
  if (!websocket && !ctx.traits.spdy) {
    // a hop stripped Upgrade: the apiserver sees a plain POST (§1.1)
    refuse(up, target.subresource, 400, 'Upgrade request required (SPDY stripped on the way)');
    answerStatus(answer, upgradeRequired());
    return;
  }
  if (websocket && ctx.traits.websocket === 'refused') {
    refuse(up, target.subresource, 403, 'WebSocket not carried by this path');
    xnetRefusal(socket, 403);
    return;
  }
  if (target.subresource === 'portforward') portForward(up, target);
  else remoteCommand(up, target);
}

function refuse(up: Upgrade, subresource: Subresource, code: number, reason: string): void {
  up.ctx.tracker.refused({
    subresource,
    transport: up.websocket ? 'websocket' : 'spdy',
    offered: up.offered,
    code,
    reason,
    userAgent: up.userAgent,
  });
}

function sessionInfo(
  up: Upgrade,
  target: CommandTarget | PortForwardTarget,
  protocol: string,
  servedBy: SessionStart['servedBy'],
): SessionStart {
  const info: SessionStart = {
    subresource: target.subresource,
    protocol,
    transport: up.websocket ? 'websocket' : 'spdy',
    servedBy,
    namespace: target.pod.namespace,
    pod: target.pod.name,
    userAgent: up.userAgent,
  };
  if (target.subresource !== 'portforward') {
    info.container = target.container.name;
    if (target.subresource === 'exec') info.command = target.command;
    info.tty = target.wants.tty;
  }
  return info;
}

// ---- exec / attach -------------------------------------------------------------------------------

function remoteCommand(up: Upgrade, target: CommandTarget): void {
  const { ctx, socket, head } = up;
  const { wants } = target;
  if (!wants.stdin && !wants.stdout && !wants.stderr) {
    refuse(up, target.subresource, 400, 'no stream requested');
    up.answer.text(400, 'you must specify at least one of stdin, stdout, stderr');
    return;
  }
  const request: CommandRequest = {
    subresource: target.subresource,
    pod: target.pod,
    container: target.container,
    command: target.command,
    // attach reaches a main process without a terminal: kubectl itself turns tty off for it
    tty: target.subresource === 'exec' && wants.tty,
  };
  if (!up.websocket) {
    const n = negotiateSpdy(up.req, SPDY_REMOTECOMMAND_SERVER);
    if (!n.ok) {
      refuse(up, target.subresource, n.code, n.message);
      up.answer.text(n.code, n.message, n.headers);
      return;
    }
    acceptSpdy(socket, n.protocol);
    const session = ctx.tracker.begin(sessionInfo(up, target, n.protocol, 'cri'), socket);
    serveSpdyCommand(socket, head, remoteCommandVersion(n.protocol)!, request, wants, session, ctx.log);
    return;
  }
  const translated = ctx.traits.websocket === 'translated' && up.offered.includes(RC_V5);
  const allowed = translated ? [RC_V5] : ['', ...WS_LEGACY_REMOTECOMMAND];
  if (!xnetAccepts(up.req, socket)) {
    refuse(up, target.subresource, 400, 'not a valid WebSocket handshake for x/net');
    return;
  }
  const protocol = xnetSelect(up.offered, allowed);
  if (protocol === undefined) {
    refuse(up, target.subresource, 403, `no offered protocol among [${allowed.join(' ')}]`);
    xnetRefusal(socket, 403);
    return;
  }
  const version: RemoteCommandVersion = remoteCommandVersion(protocol || RC_V1)!;
  acceptWebSocket(ctx.wss, up.req, socket, head, protocol).then((ws) => {
    const session = ctx.tracker.begin(
      sessionInfo(up, target, protocol, translated ? 'translator' : 'cri'),
      socket,
    );
    serveWsCommand(ws, version, request, wants, session, ctx.log);
  });
}

// ---- port-forward --------------------------------------------------------------------------------

function portForward(up: Upgrade, target: PortForwardTarget): void {
  const { ctx, socket, head } = up;
  if (!up.websocket) {
    const n = negotiateSpdy(up.req, [PORTFORWARD]);
    if (!n.ok) {
      refuse(up, 'portforward', n.code, n.message);
      up.answer.text(n.code, n.message, n.headers);
      return;
    }
    acceptSpdy(socket, n.protocol);
    const session = ctx.tracker.begin(sessionInfo(up, target, n.protocol, 'cri'), socket);
    servePortForward(new SpdySession(socket, { role: 'server', head }), target.pod, session, ctx.log);
    return;
  }
  const tunnelled = up.offered
    .filter((p) => p.startsWith(TUNNEL_PREFIX) && p.endsWith('.k8s.io'))
    .map((p) => p.slice(TUNNEL_PREFIX.length));
  if (ctx.traits.websocket === 'translated' && tunnelled.length > 0) {
    tunnel(up, target, tunnelled);
    return;
  }
  // relayed to the kubelet, which wants ports for a WebSocket port-forward (§4.2, §9 #133913)
  const ports = parsePorts(target.ports);
  if (typeof ports === 'string') {
    refuse(up, 'portforward', 400, ports);
    up.answer.text(400, ports);
    return;
  }
  if (!xnetAccepts(up.req, socket)) {
    refuse(up, 'portforward', 400, 'not a valid WebSocket handshake for x/net');
    return;
  }
  const allowed = ['', ...WS_LEGACY_PORTFORWARD];
  const protocol = xnetSelect(up.offered, allowed);
  if (protocol === undefined) {
    refuse(up, 'portforward', 403, `no offered protocol among [${allowed.join(' ')}]`);
    xnetRefusal(socket, 403);
    return;
  }
  acceptWebSocket(ctx.wss, up.req, socket, head, protocol).then((ws) => {
    const session = ctx.tracker.begin(sessionInfo(up, target, protocol, 'cri'), socket);
    serveWsPortForward(ws, ports, protocol === RC_V4_BASE64, target.pod, session);
  });
}

/**
 * The apiserver's TunnelingHandler (§4.3): the stripped protocols go upstream as a SPDY handshake;
 * its refusal is replayed verbatim; its 101 becomes the WebSocket 101 with `SPDY/3.1+<protocol>`,
 * and the SPDY session then runs end to end inside the WebSocket.
 */
function tunnel(up: Upgrade, target: PortForwardTarget, spdyProtocols: string[]): void {
  const { ctx, socket, head } = up;
  const protocol = negotiate(spdyProtocols, [PORTFORWARD]);
  if (protocol === undefined) {
    const refusal = noCommonProtocol(spdyProtocols, [PORTFORWARD]);
    refuse(up, 'portforward', refusal.code, refusal.message);
    up.answer.text(refusal.code, refusal.message, refusal.headers);
    return;
  }
  const wsProtocol = TUNNEL_PREFIX + protocol;
  acceptWebSocket(ctx.wss, up.req, socket, head, wsProtocol).then((ws) => {
    const session = ctx.tracker.begin(sessionInfo(up, target, wsProtocol, 'tunnel'), wsSocket(ws));
    const spdy = new SpdySession(new TunnelStream(ws), { role: 'server' });
    servePortForward(spdy, target.pod, session, ctx.log);
  });
}
