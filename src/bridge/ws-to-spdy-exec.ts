/**
 * exec/attach: a WebSocket client (v5, or the legacy v1–v4 and base64 protocols) in front of a SPDY
 * upstream — "be a StreamTranslator" (docs/protocols.md §8.1). The caller has done the upstream SPDY
 * upgrade and accepted the WebSocket; this is a WebSocket endpoint piped to a SPDY executor, ending
 * with exactly one status on channel 3 and Close 1000.
 */
import type { WebSocket } from 'ws';
import { pipeSession } from '../remotecommand/flow.js';
import { openSpdyExecutor } from '../remotecommand/spdy-executor.js';
import { WsEndpoint } from '../remotecommand/ws-endpoint.js';
import type { SpdySession } from '../spdy/session.js';
import { clientProtocolError, onClientProtocolError } from './client-protocol-error.js';
import { type ExecBridgeParams, recordTaps } from './exec-session.js';
import { keepWebSocketAlive } from './keepalive.js';
import { closeReason, type Outcome, shimFailure, upstreamOutcome } from './outcome.js';

export type WsToSpdyExecParams = ExecBridgeParams<WebSocket, SpdySession>;

/** Run the session to its end; resolves once both sides are closed or closing. */
export function bridgeWsToSpdyExec(p: WsToSpdyExecParams): Promise<void> {
  const { client, upstream, record, log } = p;
  return new Promise((resolve) => {
    let finished = false;
    const end = (reason: string, kind: Outcome['kind']) => {
      if (finished) return;
      finished = true;
      stopKeepalive();
      endpoint.stop();
      upstream.close();
      record.finish(reason, kind);
      resolve();
    };
    const finish = (outcome: Outcome) => {
      if (finished) return;
      endpoint.finish(outcome);
      record.exitCode = outcome.exitCode;
      end(closeReason(outcome), outcome.kind);
    };
    const endpoint = new WsEndpoint(client, {
      version: p.clientVersion,
      wants: p.streams,
      dropUndecodable: false,
      onProtocolError: (err) => {
        log.warn({ err: err.message }, 'client protocol error');
        end(clientProtocolError(err.message), 'error');
      },
      onClose: (code, why) => end(`client closed the connection (${code}${why ? ` ${why}` : ''})`, 'failure'),
    });
    record.onAbort((reason) => finish(shimFailure(reason)));
    onClientProtocolError(client, (reason) => end(reason, 'error'));
    const stopKeepalive = keepWebSocketAlive(client, p.keepalive, (why) => {
      client.terminate();
      end(`client ${why}`, 'error');
    });
    openSpdyExecutor(upstream, p.streams, p.upstreamVersion, (status, failure) =>
      finish(upstreamOutcome(status, p.upstreamVersion, failure)),
    ).then(
      (executor) => {
        if (finished) return;
        pipeSession(endpoint, executor, recordTaps(record));
        endpoint.start(); // nothing from the client until the upstream streams exist
      },
      (err: Error) => finish(shimFailure(`could not open the upstream streams: ${err.message}`)),
    );
  });
}
