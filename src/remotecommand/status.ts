/**
 * The status at the end of exec/attach (docs/protocols.md §3.2, §3.4): the bytes written on the
 * client's error stream or channel, and the bounded buffer that collects the upstream's.
 */
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import type { Status } from '../k8s/status.js';

/** A session's end as the client is told it. */
export interface SessionStatus {
  status: Status;
  /** The upstream's own JSON bytes, forwarded untouched to JSON clients. */
  raw?: Buffer;
}

/**
 * What goes on the error stream/channel, or null for nothing: JSON for v4/v5, for older versions
 * the message as plain text on failure only.
 */
export function statusBytes(end: SessionStatus, version: RemoteCommandVersion): Buffer | null {
  if (version.jsonStatus) return end.raw ?? Buffer.from(JSON.stringify(end.status));
  if (end.status.status === 'Success') return null;
  return Buffer.from(end.status.message ?? 'error executing remote command');
}

/**
 * The upstream's session is over: what it wrote on the error stream/channel, and why the
 * connection failed when it did not end cleanly.
 */
export type OnUpstreamEnd = (statusBytes: Buffer, failure: string | undefined) => void;

/** A status is a few hundred bytes; more than this is not a status, and is not kept. */
const MAX_STATUS_BYTES = 64 * 1024;

/** The bytes of the error stream/channel, kept up to a bound. */
export class StatusBytes {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  add(chunk: Buffer): void {
    if (this.size >= MAX_STATUS_BYTES) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}
