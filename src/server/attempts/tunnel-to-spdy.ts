/** Tunnelled port-forward client → SPDY upstream: unwrap the SPDY bytes (docs/protocols.md §4.3, §8.3). */
import { relay } from '../../bridge/relay.js';
import { TunnelStream } from '../../channel/tunnel.js';
import { HEADER_STREAM_PROTOCOL, headerHasToken, TUNNEL_PREFIX } from '../../k8s/protocols.js';
import { syntheticRefusal } from '../../upstream/dial.js';
import { malformedWebSocketRequest } from '../http-answers.js';
import type { Attempt } from './attempt.js';
import { headerValue } from './context.js';

export const tunnelToSpdy: Attempt = {
  name: 'websocket tunnel port-forward → spdy',
  applies: (sr) =>
    sr.subresource === 'portforward' &&
    sr.client.kind === 'websocket' &&
    tunnelProtocols(sr.client.offered).length > 0,
  upstream: () => 'spdy',
  async run(ctx) {
    const { req, sr } = ctx;
    const malformed = malformedWebSocketRequest(req);
    if (malformed) return malformed;
    const r = await ctx.dialSpdy(tunnelProtocols(sr.client.offered));
    if (!r.ok) return r.refusal;
    const protocol = headerValue(r.response.headers[HEADER_STREAM_PROTOCOL]);
    if (!headerHasToken(r.response.headers.upgrade, 'spdy/3.1') || !protocol) {
      r.socket.destroy();
      return syntheticRefusal(500, 'unable to upgrade: missing upgrade headers in response');
    }
    const ws = await ctx.acceptWebSocket(TUNNEL_PREFIX + protocol, () => r.socket.destroy());
    const record = ctx.record(`websocket/${TUNNEL_PREFIX}${protocol}`, `spdy/${protocol}`, 'translate');
    const stopKeepalive = ctx.keepAlive(ws, record);
    const hooks = ctx.forwardHooks(record, 'spdy');
    void relay(
      { client: new TunnelStream(ws), upstream: r.socket, upstreamHead: r.head },
      record,
      hooks,
    ).then((reason) => {
      stopKeepalive();
      record.finish(reason);
    });
    return undefined;
  },
};

/** SPDY protocols carried by tunnel subprotocols: `SPDY/3.1+x.k8s.io` → `x.k8s.io` (§4.3). */
export function tunnelProtocols(offered: string[]): string[] {
  return offered
    .filter((p) => p.startsWith(TUNNEL_PREFIX) && p.endsWith('.k8s.io'))
    .map((p) => p.slice(TUNNEL_PREFIX.length));
}
