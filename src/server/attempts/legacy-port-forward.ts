/**
 * Legacy WebSocket port-forward client (`ports=`, docs/protocols.md §4.2) → a SPDY port-forward
 * session, over a raw SPDY upgrade or, where the path refuses SPDY, over the WebSocket tunnel.
 */
import {
  bridgeLegacyPortForward,
  legacyPorts,
  MAX_LEGACY_PORTS,
  validPorts,
} from '../../bridge/legacy-portforward.js';
import { TunnelStream } from '../../channel/tunnel.js';
import {
  negotiate,
  PORTFORWARD,
  RC_V4_BASE64,
  TUNNEL_PORTFORWARD,
  WS_LEGACY_PORTFORWARD,
} from '../../k8s/protocols.js';
import type { SpdySession } from '../../spdy/session.js';
import { syntheticRefusal } from '../../upstream/dial.js';
import { malformedWebSocketRequest, refusalNoProtocol } from '../http-answers.js';
import type { Attempt } from './attempt.js';
import { tunnelProtocols } from './tunnel-to-spdy.js';

export const legacyPortForward: Attempt = {
  name: 'websocket legacy port-forward → spdy',
  applies: (sr) =>
    sr.subresource === 'portforward' &&
    sr.client.kind === 'websocket' &&
    tunnelProtocols(sr.client.offered).length === 0,
  upstream: () => 'spdy',
  async run(ctx) {
    const { req, sr } = ctx;
    const offered = sr.client.offered;
    const protocol = offered.length === 0 ? '' : negotiate(offered, WS_LEGACY_PORTFORWARD);
    if (protocol === undefined) return refusalNoProtocol();
    const ports = legacyPorts(sr.query);
    if (!validPorts(ports))
      return syntheticRefusal(
        400,
        ports.length > MAX_LEGACY_PORTS
          ? `query parameter "port": at most ${MAX_LEGACY_PORTS} ports (a channel pair each), got ${ports.length}`
          : 'query parameter "port" is required',
        'BadRequest',
      );
    const malformed = malformedWebSocketRequest(req);
    if (malformed) return malformed;
    let upstream: SpdySession;
    let upstreamName: string;
    const r = await ctx.dialSpdy([PORTFORWARD]);
    if (r.ok) {
      upstream = ctx.spdySession(r.socket, 'client', r.head);
      upstreamName = `spdy/${PORTFORWARD}`;
    } else {
      const t = await ctx.dialWebSocket([TUNNEL_PORTFORWARD]);
      if (!t.ok) return r.refusal;
      upstream = ctx.spdySession(new TunnelStream(t.ws), 'client', Buffer.alloc(0));
      upstreamName = `websocket/${TUNNEL_PORTFORWARD}`;
    }
    const ws = await ctx.acceptWebSocket(protocol, () => upstream.destroy());
    const record = ctx.record(`websocket/${protocol || '-'}`, upstreamName, 'translate');
    void bridgeLegacyPortForward({
      client: ws,
      base64: protocol === RC_V4_BASE64,
      ports,
      upstream,
      record,
      log: ctx.log,
      keepalive: ctx.settings.keepalive,
    });
    return undefined;
  },
};
