/**
 * exec/attach: a SPDY client (kubectl ≤ 1.28, client-go's SPDY executor) in front of a WebSocket
 * upstream — "be a SPDY server + v5 client" (docs/protocols.md §8.2). The caller has opened the
 * upstream WebSocket and answered the client's upgrade; this is a SPDY endpoint piped to a WebSocket
 * executor (stdin EOF crosses as the v5 CLOSE), and it always ends with a status on the client's
 * error stream — never a silent end, which kubectl would read as exit 0.
 */
import type { WebSocket } from 'ws';
import { pipeSession } from '../remotecommand/flow.js';
import { SpdyEndpoint } from '../remotecommand/spdy-endpoint.js';
import { WsExecutor } from '../remotecommand/ws-executor.js';
import type { SpdySession } from '../spdy/session.js';
import { type ExecBridgeParams, recordTaps } from './exec-session.js';
import { keepWebSocketAlive } from './keepalive.js';
import { closeReason, type Outcome, shimFailure, upstreamOutcome } from './outcome.js';

export interface SpdyToWsExecParams extends ExecBridgeParams<SpdySession, WebSocket> {
  /** How long the client has to open the streams its query promised (CRI: 30 s, §3.2). */
  streamWaitMs: number;
}

export function bridgeSpdyToWsExec(p: SpdyToWsExecParams): Promise<void> {
  const { upstream, record } = p;
  return new Promise((resolve) => {
    let finished = false;
    const stop = () => {
      finished = true;
      stopKeepalive();
      executor.close();
    };
    /** Flush the output, write the status, then close the client session the CRI way. */
    const finish = (outcome: Outcome) => {
      if (finished) return;
      stop();
      record.exitCode = outcome.exitCode;
      void endpoint.finish(outcome).then(() => {
        record.finish(closeReason(outcome), outcome.kind);
        resolve();
      });
    };
    /** The client went away first: nothing to tell it. */
    const abort = (reason: string) => {
      if (finished) return;
      stop();
      record.finish(reason, 'failure');
      resolve();
    };
    const executor = new WsExecutor(upstream, {
      version: p.upstreamVersion,
      wants: p.streams,
      log: p.log,
      onEnd: (status, failure) => finish(upstreamOutcome(status, p.upstreamVersion, failure)),
      onProtocolError: (message) => {
        upstream.terminate();
        finish(shimFailure(`upstream protocol error: ${message}`));
      },
    });
    const endpoint = new SpdyEndpoint(p.client, {
      version: p.clientVersion,
      wants: p.streams,
      waitMs: p.streamWaitMs,
      onReady: () => {
        pipeSession(endpoint, executor, recordTaps(record));
        executor.start(); // nothing from the upstream until the client's streams exist
      },
      onTimeout: (received, expected) =>
        finish(shimFailure(`timed out waiting for client to create streams (${received} of ${expected})`)),
      onClose: (err) =>
        abort(err ? `client connection failed: ${err.message}` : 'client closed the connection'),
    });
    record.onAbort((reason) => finish(shimFailure(reason)));
    const stopKeepalive = keepWebSocketAlive(upstream, p.keepalive, (why) => {
      upstream.terminate();
      finish(shimFailure(`upstream ${why}`));
    });
  });
}
