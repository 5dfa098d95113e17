/** Same protocol both sides: relay the request, then the bytes (docs/design.md's table, "relay"). */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RelayFraming } from '../../bridge/portforward-observer.js';
import { type RelayHooks, relay } from '../../bridge/relay.js';
import { RelayedExec, wsExecRelayHooks } from '../../bridge/relayed-exec.js';
import { SpdyStatusGuard } from '../../bridge/spdy-status-guard.js';
import type { RequestTarget } from '../../k8s/canonical-target.js';
import { HEADER_STREAM_PROTOCOL, RC_V1, remoteCommandVersion, TUNNEL_PREFIX } from '../../k8s/protocols.js';
import type { StreamRequest } from '../../k8s/stream-request.js';
import { dialUpgrade, type UpgradeResult } from '../../upstream/dial.js';
import { type CredentialPolicy, relayedHeaders } from '../../upstream/headers.js';
import { responseHead } from '../http-answers.js';
import type { Attempt } from './attempt.js';
import { dialFor, headerValue, type SessionSettings } from './context.js';

export const passThrough: Attempt = {
  name: 'pass-through',
  applies: () => true,
  upstream: (sr) => sr.client.kind,
  async run(ctx) {
    const { req, socket, head, sr } = ctx;
    const r = await relayHandshake(ctx.settings, req, socket, sr.target, ctx.policy);
    if (!r.ok) return r.refusal;
    const negotiated =
      sr.client.kind === 'spdy'
        ? headerValue(r.response.headers[HEADER_STREAM_PROTOCOL])
        : headerValue(r.response.headers['sec-websocket-protocol']);
    const name = `${sr.client.kind}/${negotiated || '-'}`;
    const record = ctx.record(name, name, 'relay');
    let hooks: RelayHooks;
    let exec: RelayedExec | undefined;
    if (sr.subresource === 'portforward') {
      hooks = ctx.forwardHooks(record, relayedFraming(sr, negotiated));
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
  },
};

/** Send the client's request on as it came; on 101 give the client the upstream's response head. */
export async function relayHandshake(
  settings: SessionSettings,
  req: IncomingMessage,
  socket: Duplex,
  path: RequestTarget,
  policy: CredentialPolicy,
): Promise<UpgradeResult> {
  const webSocket = headerValue(req.headers.upgrade).toLowerCase() === 'websocket';
  const r = await dialFor(settings, socket, webSocket, (opts) =>
    dialUpgrade(settings.target, req.method ?? 'GET', path, relayedHeaders(req, policy), opts),
  );
  if (r.ok) {
    socket.write(
      responseHead(r.response.statusCode ?? 101, r.response.statusMessage ?? '', r.response.rawHeaders),
    );
  }
  return r;
}

/** What a pass-through port-forward relay carries: SPDY, a tunnel's frames, or (legacy) channels. */
function relayedFraming(sr: StreamRequest, negotiated: string): RelayFraming | undefined {
  if (sr.client.kind === 'spdy') return 'spdy';
  return negotiated.startsWith(TUNNEL_PREFIX) ? 'websocket' : undefined;
}
