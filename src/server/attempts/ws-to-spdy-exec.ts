/** WebSocket exec/attach client → SPDY upstream (docs/protocols.md §8.1). */
import { bridgeWsToSpdyExec } from '../../bridge/ws-to-spdy-exec.js';
import {
  HEADER_STREAM_PROTOCOL,
  headerHasToken,
  negotiate,
  RC_V1,
  RC_V5,
  type RemoteCommandVersion,
  remoteCommandVersion,
  SPDY_REMOTECOMMAND_SERVER,
  WS_LEGACY_REMOTECOMMAND,
} from '../../k8s/protocols.js';
import { execStreams, type StreamRequest } from '../../k8s/stream-request.js';
import { syntheticRefusal } from '../../upstream/dial.js';
import { malformedWebSocketRequest, refusalNoProtocol } from '../http-answers.js';
import type { Attempt } from './attempt.js';
import { headerValue } from './context.js';

/** WebSocket remotecommand protocols we can translate, in no particular order (the client's order wins). */
const WS_TRANSLATABLE = [RC_V5, ...WS_LEGACY_REMOTECOMMAND];
/** What we offer a SPDY upstream when translating (the CRI picks v4, §2.1). */
const SPDY_UPSTREAM_OFFER = SPDY_REMOTECOMMAND_SERVER;

export const wsToSpdyExec: Attempt = {
  name: 'websocket exec → spdy',
  applies: (sr) => sr.subresource !== 'portforward' && sr.client.kind === 'websocket',
  upstream: () => 'spdy',
  async run(ctx) {
    const { req, sr } = ctx;
    const clientVersion = websocketVersion(sr);
    if (clientVersion === undefined) return refusalNoProtocol();
    const malformed = malformedWebSocketRequest(req);
    if (malformed) return malformed;
    const r = await ctx.dialSpdy(SPDY_UPSTREAM_OFFER);
    if (!r.ok) return r.refusal;
    if (!headerHasToken(r.response.headers.upgrade, 'spdy/3.1')) {
      r.socket.destroy();
      return syntheticRefusal(502, 'the upstream answered 101 without Upgrade: SPDY/3.1');
    }
    // without the header client-go assumes v1 (§2.1); so do we
    const upstreamVersion =
      remoteCommandVersion(headerValue(r.response.headers[HEADER_STREAM_PROTOCOL])) ??
      remoteCommandVersion(RC_V1)!;
    const ws = await ctx.acceptWebSocket(clientVersion.name, () => r.socket.destroy());
    const upstream = ctx.spdySession(r.socket, 'client', r.head);
    const record = ctx.record(`websocket/${clientVersion.name}`, `spdy/${upstreamVersion.name}`, 'translate');
    void bridgeWsToSpdyExec({
      client: ws,
      clientVersion,
      upstream,
      upstreamVersion,
      streams: execStreams(sr.query),
      record,
      log: ctx.log,
      keepalive: ctx.settings.keepalive,
    });
    return undefined;
  },
};

/** The client's first offered WebSocket protocol we can translate; no offer at all means legacy v1 (§2.2). */
function websocketVersion(sr: StreamRequest): RemoteCommandVersion | undefined {
  if (sr.client.offered.length === 0) return remoteCommandVersion(RC_V1);
  const name = negotiate(sr.client.offered, WS_TRANSLATABLE);
  return name === undefined ? undefined : remoteCommandVersion(name);
}
