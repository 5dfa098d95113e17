/**
 * exec/attach over SPDY, served the way the CRI streaming server serves it (docs/protocols.md §3.2):
 * the SPDY endpoint (streams accepted, counted from the query, 30 s to open them) and the process.
 * A client that does not open its streams in time is dropped without a status, as the CRI drops it.
 */
import type { Duplex } from 'node:stream';
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import type { ExecStreams } from '../k8s/stream-request.js';
import type { Logger } from '../observe/logger.js';
import { nodeStreams } from '../remotecommand/node-streams.js';
import { SpdyEndpoint } from '../remotecommand/spdy-endpoint.js';
import { STREAM_CREATION_TIMEOUT_MS } from '../remotecommand/streams.js';
import { SpdySession } from '../spdy/session.js';
import { type CommandRequest, runCommand } from './remotecommand.js';
import type { ActiveSession } from './sessions.js';

export function serveSpdyCommand(
  socket: Duplex,
  head: Buffer,
  version: RemoteCommandVersion,
  req: CommandRequest,
  wants: ExecStreams,
  session: ActiveSession,
  log: Logger,
): void {
  const spdy = new SpdySession(socket, { role: 'server', head });
  let running = false;
  const endpoint = new SpdyEndpoint(spdy, {
    version,
    wants,
    waitMs: STREAM_CREATION_TIMEOUT_MS,
    v1Quirks: true,
    onReady: () => {
      running = true;
      run().catch((err: unknown) => {
        log.error({ err, id: session.id }, 'exec session failed');
        spdy.destroy();
      });
    },
    onTimeout: () => {
      log.warn({ id: session.id }, 'timed out waiting for client to create streams');
      spdy.destroy('timed out waiting for client to create streams');
    },
    onClose: (err) => {
      session.abort();
      if (!running)
        session.end({ closeReason: err ? err.message : 'client closed before the streams were complete' });
    },
  });

  const run = async () => {
    const result = await runCommand(req, nodeStreams(endpoint), session.signal);
    if (endpoint.closed) {
      session.end({ exitCode: result.exitCode, closeReason: 'client went away' });
      return;
    }
    await endpoint.finish(result);
    session.end({ exitCode: result.exitCode, status: result.status.status, closeReason: 'completed' });
  };
}
