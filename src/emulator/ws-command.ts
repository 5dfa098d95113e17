/**
 * exec/attach over a Kubernetes WebSocket, served the way `wsstream.Conn` serves it (docs/protocols.md
 * §3.3): the legacy protocols of the CRI server and v5 of the apiserver's StreamTranslator. The
 * WebSocket endpoint and the process; like x/net, undecodable base64 is dropped, and TCP is closed
 * soon after the Close frame.
 */
import type { WebSocket } from 'ws';
import type { ChannelProtocolError } from '../channel/codec.js';
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import type { ExecStreams } from '../k8s/stream-request.js';
import type { Logger } from '../observe/logger.js';
import { nodeStreams } from '../remotecommand/node-streams.js';
import { WsEndpoint } from '../remotecommand/ws-endpoint.js';
import { type CommandRequest, runCommand } from './remotecommand.js';
import type { ActiveSession } from './sessions.js';

/** x/net closes TCP right after its Close frame; a peer that lingers is cut after this. */
const CLOSE_LINGER_MS = 1000;

export function serveWsCommand(
  ws: WebSocket,
  version: RemoteCommandVersion,
  req: CommandRequest,
  wants: ExecStreams,
  session: ActiveSession,
  log: Logger,
): void {
  let protocolError: ChannelProtocolError | undefined;
  const endpoint = new WsEndpoint(ws, {
    version,
    wants,
    dropUndecodable: true,
    onProtocolError: (err) => {
      protocolError = err;
      log.info({ id: session.id, err: err.message }, 'v5 protocol error; ending the session');
      session.abort();
    },
    onClose: () => session.abort(),
  });
  ws.on('error', () => {});
  const streams = nodeStreams(endpoint);
  endpoint.start(); // accepted paused (src/channel/ws-accept.ts): read once the streams are connected

  runCommand(req, streams, session.signal).then(
    (result) => {
      if (ws.readyState !== ws.OPEN) {
        session.end({
          exitCode: result.exitCode,
          closeReason: protocolError ? `protocol error: ${protocolError.message}` : 'client went away',
        });
        return;
      }
      endpoint.finish(result);
      setTimeout(() => ws.terminate(), CLOSE_LINGER_MS).unref();
      session.end({ exitCode: result.exitCode, status: result.status.status, closeReason: 'completed' });
    },
    (err: unknown) => {
      log.error({ err, id: session.id }, 'exec session failed');
      ws.terminate();
      session.end({ closeReason: 'internal error' });
    },
  );
}
