/** What both exec/attach translators share: their parameters and the bounded status buffer. */
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import type { ExecStreams } from '../k8s/stream-request.js';
import type { Logger } from '../observe/logger.js';
import type { KeepaliveOptions } from './keepalive.js';
import type { SessionRecord } from './session-record.js';

export interface ExecBridgeParams<Client, Upstream> {
  client: Client;
  clientVersion: RemoteCommandVersion;
  upstream: Upstream;
  upstreamVersion: RemoteCommandVersion;
  streams: ExecStreams;
  record: SessionRecord;
  log: Logger;
  keepalive: KeepaliveOptions;
}

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
