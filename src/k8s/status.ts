/**
 * metav1.Status objects as the remotecommand error stream carries them (docs/protocols.md §3.4),
 * and their decoding the way kubectl (client-go errorDecoderV4) reads them.
 */

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface Status {
  kind?: string;
  apiVersion?: string;
  metadata: Record<string, unknown>;
  status: 'Success' | 'Failure' | string;
  message?: string;
  reason?: string;
  details?: { name?: string; kind?: string; causes?: StatusCause[] };
  code?: number;
}

/** Exactly what servers write on success. */
export const SUCCESS_STATUS_JSON = '{"metadata":{},"status":"Success"}';

export function successStatus(): Status {
  return { metadata: {}, status: 'Success' };
}

/** The CRI server's shape for a non-zero exit code; `command` only flavours the message. */
export function exitCodeStatus(code: number, command: readonly string[] = []): Status {
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

/** apierrors.NewInternalError shape. */
export function internalErrorStatus(err: string): Status {
  return {
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${err}`,
    reason: 'InternalError',
    details: { causes: [{ message: err }] },
    code: 500,
  };
}

/** A full API Status object as the apiserver answers plain requests (404, 400, 401, 403 …). */
export function apiStatus(
  code: number,
  reason: string,
  message: string,
  details?: Status['details'],
): Status {
  const s: Status = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  };
  if (details) s.details = details;
  return s;
}

export function encodeStatus(status: Status): Buffer {
  return Buffer.from(JSON.stringify(status));
}

/** Outcome of a status as kubectl would see it. */
export type StatusOutcome =
  | { kind: 'success' }
  | { kind: 'exit'; code: number }
  | { kind: 'failure'; message: string; status: Status }
  | { kind: 'invalid'; message: string };

/** Decode error-stream bytes of a v4/v5 session the way client-go does (§3.4). */
export function decodeStatus(bytes: Buffer | string): StatusOutcome {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('utf8');
  let s: Status;
  try {
    s = JSON.parse(text) as Status;
  } catch {
    return {
      kind: 'invalid',
      message: `error stream protocol error: invalid JSON in "${text.slice(0, 200)}"`,
    };
  }
  if (s === null || typeof s !== 'object')
    return { kind: 'invalid', message: 'error stream protocol error: not an object' };
  if (s.status === 'Success') return { kind: 'success' };
  if (s.status === 'Failure') {
    if (s.reason === 'NonZeroExitCode') {
      const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
      const n =
        cause?.message !== undefined && /^\d+$/.test(cause.message) ? Number(cause.message) : Number.NaN;
      if (Number.isInteger(n) && n >= 0 && n <= 255) return { kind: 'exit', code: n };
      return { kind: 'invalid', message: 'error stream protocol error: invalid exit code' };
    }
    return { kind: 'failure', message: s.message ?? '', status: s };
  }
  return { kind: 'invalid', message: 'error stream protocol error: unknown error' };
}
