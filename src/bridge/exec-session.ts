/** What both exec/attach translators share: their parameters, and what the session sees of its bytes. */
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import type { ExecStreams } from '../k8s/stream-request.js';
import type { Logger } from '../observe/logger.js';
import type { SessionTaps } from '../remotecommand/flow.js';
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

/** The session's byte counts (stdin in, output out) and its recording, fed as the bytes pass. */
export function recordTaps(record: SessionRecord): SessionTaps {
  const taps = new RecordTaps(record);
  return {
    stdin: taps.stdin.bind(taps),
    resize: taps.resize.bind(taps),
    stdout: taps.stdout.bind(taps),
    stderr: taps.stderr.bind(taps),
  };
}

/** The four taps as methods of one object, bound once per session. */
class RecordTaps {
  constructor(private readonly record: SessionRecord) {}

  stdin(chunk: Buffer): void {
    this.record.bytesIn += chunk.length;
    this.record.tap?.input(chunk);
  }

  resize(chunk: Buffer): void {
    this.record.tap?.resize(chunk);
  }

  stdout(chunk: Buffer): void {
    this.record.bytesOut += chunk.length;
    this.record.tap?.output(chunk, false);
  }

  stderr(chunk: Buffer): void {
    this.record.bytesOut += chunk.length;
    this.record.tap?.output(chunk, true);
  }
}
