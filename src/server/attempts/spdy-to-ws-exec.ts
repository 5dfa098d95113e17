/** SPDY exec/attach client → WebSocket upstream: v5, else the legacy v4 path (docs/protocols.md §8.2). */
import { bridgeSpdyToWsExec } from '../../bridge/spdy-to-ws-exec.js';
import {
  negotiate,
  RC_V4,
  RC_V5,
  remoteCommandVersion,
  SPDY_REMOTECOMMAND_SERVER,
} from '../../k8s/protocols.js';
import { execStreams } from '../../k8s/stream-request.js';
import { STREAM_CREATION_TIMEOUT_MS } from '../../remotecommand/streams.js';
import { refusalNoSpdyProtocol, spdyUpgradeAnswer } from '../http-answers.js';
import type { Attempt } from './attempt.js';

export const spdyToWsExec: Attempt = {
  name: 'spdy exec → websocket',
  applies: (sr) => sr.subresource !== 'portforward' && sr.client.kind === 'spdy',
  upstream: () => 'websocket',
  async run(ctx) {
    const { sr, socket, head } = ctx;
    const offered = negotiate(sr.client.offered, SPDY_REMOTECOMMAND_SERVER);
    if (offered === undefined) return refusalNoSpdyProtocol(sr.client.offered);
    const clientVersion = remoteCommandVersion(offered)!;
    let dialed = await ctx.dialWebSocket([RC_V5]);
    if (!dialed.ok && (dialed.refusal.statusCode === 400 || dialed.refusal.statusCode === 403)) {
      ctx.log.warn(
        { status: dialed.refusal.statusCode },
        `upstream refused ${RC_V5}; trying ${RC_V4}, over which stdin EOF cannot cross (piped stdin and cp to a pod will hang)`,
      );
      const legacy = await ctx.dialWebSocket([RC_V4]);
      if (legacy.ok) dialed = legacy;
    }
    if (!dialed.ok) return dialed.refusal;
    const upstreamVersion = remoteCommandVersion(dialed.protocol) ?? remoteCommandVersion(RC_V4)!;
    socket.write(spdyUpgradeAnswer(clientVersion.name));
    const client = ctx.spdySession(socket, 'server', head);
    const record = ctx.record(`spdy/${clientVersion.name}`, `websocket/${upstreamVersion.name}`, 'translate');
    void bridgeSpdyToWsExec({
      client,
      clientVersion,
      upstream: dialed.ws,
      upstreamVersion,
      streams: execStreams(sr.query),
      record,
      log: ctx.log,
      keepalive: ctx.settings.keepalive,
      streamWaitMs: STREAM_CREATION_TIMEOUT_MS,
    });
    return undefined;
  },
};
