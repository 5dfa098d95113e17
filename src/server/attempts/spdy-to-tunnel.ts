/** SPDY port-forward client → tunnelled WebSocket upstream: wrap the SPDY bytes (docs/protocols.md §8.3). */
import { relay } from '../../bridge/relay.js';
import { TunnelStream } from '../../channel/tunnel.js';
import { TUNNEL_PREFIX } from '../../k8s/protocols.js';
import { spdyUpgradeAnswer } from '../http-answers.js';
import type { Attempt } from './attempt.js';

export const spdyToTunnel: Attempt = {
  name: 'spdy port-forward → websocket tunnel',
  applies: (sr) => sr.subresource === 'portforward' && sr.client.kind === 'spdy',
  upstream: () => 'websocket',
  async run(ctx) {
    const { sr, socket, head } = ctx;
    const dialed = await ctx.dialWebSocket(sr.client.offered.map((p) => TUNNEL_PREFIX + p));
    if (!dialed.ok) return dialed.refusal;
    const protocol = dialed.protocol.slice(TUNNEL_PREFIX.length);
    socket.write(spdyUpgradeAnswer(protocol));
    const record = ctx.record(`spdy/${protocol}`, `websocket/${dialed.protocol}`, 'translate');
    const ws = dialed.ws;
    const stopKeepalive = ctx.keepAlive(ws, record);
    const hooks = ctx.forwardHooks(record, 'spdy');
    void relay({ client: socket, clientHead: head, upstream: new TunnelStream(ws) }, record, hooks).then(
      (reason) => {
        stopKeepalive();
        record.finish(reason);
      },
    );
    return undefined;
  },
};
