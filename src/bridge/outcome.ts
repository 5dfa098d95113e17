/**
 * The end of a remotecommand session as the upstream told it, and as the client must be told it
 * (docs/protocols.md §3.2, §3.4, §8.1 step 7, §8.2 step 6). The rule that never bends: a v4+ upstream
 * always writes a status before it closes, so an end without one is a failure, never success.
 */
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import { decodeStatus, internalErrorStatus, successStatus } from '../k8s/status.js';
import type { SessionOutcome } from '../observe/metrics.js';
import type { SessionStatus } from '../remotecommand/status.js';

/** `raw`: the upstream's own bytes when it sent JSON, forwarded untouched to JSON clients. */
export interface Outcome extends SessionStatus {
  exitCode?: number;
  kind: SessionOutcome;
}

/**
 * Read what the upstream wrote on its error stream/channel. `failure` is set when the connection
 * ended abnormally (reset, abnormal close, ping timeout).
 */
export function upstreamOutcome(
  errorBytes: Buffer,
  upstream: RemoteCommandVersion,
  failure?: string,
): Outcome {
  if (errorBytes.length > 0) {
    if (!upstream.jsonStatus) {
      // v1–v3 carry plain text, and only on failure
      const message = errorBytes.toString('utf8');
      return { status: { metadata: {}, status: 'Failure', message }, kind: 'failure' };
    }
    const decoded = decodeStatus(errorBytes);
    switch (decoded.kind) {
      case 'success':
        return { status: successStatus(), raw: errorBytes, exitCode: 0, kind: 'success' };
      case 'exit':
        return {
          status: JSON.parse(errorBytes.toString('utf8')),
          raw: errorBytes,
          exitCode: decoded.code,
          kind: 'exit-code',
        };
      case 'failure':
        return { status: decoded.status, raw: errorBytes, kind: 'failure' };
      case 'invalid':
        return {
          status: internalErrorStatus(`upstream sent an invalid status: ${decoded.message}`),
          kind: 'error',
        };
    }
  }
  if (failure !== undefined) return { status: internalErrorStatus(failure), kind: 'error' };
  if (upstream.jsonStatus) {
    return { status: internalErrorStatus('the upstream ended the session without a status'), kind: 'error' };
  }
  return { status: successStatus(), exitCode: 0, kind: 'success' };
}

/** A failure the shim itself ran into (dial, stream setup, protocol error). */
export function shimFailure(message: string): Outcome {
  return { status: internalErrorStatus(message), kind: 'error' };
}

/** The session line's closeReason for an outcome the client was told. */
export function closeReason(outcome: Outcome): string {
  return outcome.kind === 'success' || outcome.kind === 'exit-code'
    ? 'completed'
    : `status: ${outcome.status.message ?? outcome.status.status}`;
}
