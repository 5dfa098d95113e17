/**
 * A relayed exec/attach session, read passively: the relay joins the two connections byte for byte,
 * and this reads the channels they carry — from SPDY streams (spdy-status-guard.ts feeds it) or from
 * WebSocket channel frames (wsExecRelayHooks) — as slices of the buffers the relay forwards anyway.
 * It gives the session its true end, as the translators do: the upstream's status, so a relayed
 * exec exiting 3 is logged and counted as exit code 3; and it hands the streams to the session's
 * recording. Stdin and resize messages from a WebSocket client are masked: a copy is unmasked only
 * when a recording wants them.
 */
import type { Duplex } from 'node:stream';
import { CH_ERROR, CH_RESIZE, CH_STDERR, CH_STDIN, CH_STDOUT } from '../channel/codec.js';
import { ChannelFrameReader, unmasked } from '../channel/frame-reader.js';
import { writeBinaryFrame } from '../channel/ws-frame.js';
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import { encodeStatus, internalErrorStatus } from '../k8s/status.js';
import type { Logger } from '../observe/logger.js';
import { StatusBytes } from '../remotecommand/status.js';
import { upstreamOutcome } from './outcome.js';
import type { RelayHooks } from './relay.js';
import type { SessionRecord } from './session-record.js';

export class RelayedExec {
  private readonly status = new StatusBytes();
  private statusSeen = false;

  constructor(
    private readonly version: RemoteCommandVersion,
    private readonly record: SessionRecord,
  ) {}

  get hasStatus(): boolean {
    return this.statusSeen;
  }

  /** A channel's bytes from the upstream. */
  fromUpstream(channel: number, data: Buffer): void {
    if (channel === CH_ERROR) {
      if (data.length > 0) this.statusSeen = true;
      this.status.add(data);
    } else if (channel === CH_STDOUT || channel === CH_STDERR) {
      this.record.tap?.output(data, channel === CH_STDERR);
    }
  }

  /** A channel's bytes from the client: a masked piece (WebSocket) is unmasked only when recorded. */
  fromClient(channel: number, data: Buffer, mask?: Buffer, maskOffset = 0): void {
    const tap = this.record.tap;
    if (tap === undefined) return;
    if (channel === CH_RESIZE) tap.resize(unmasked(data, mask, maskOffset));
    else if (channel === CH_STDIN && tap.wantsInput) tap.input(unmasked(data, mask, maskOffset));
  }

  /** At the relay's end: what the upstream's status said becomes the session's outcome and exit code. */
  settle(): void {
    if (!this.statusSeen) return;
    const outcome = upstreamOutcome(this.status.bytes(), this.version);
    this.record.exitCode = outcome.exitCode;
    this.record.outcome = outcome.kind;
  }
}

/**
 * Relay hooks reading a WebSocket exec/attach relay: channel frames both ways into `exec`; when the
 * upstream side fails before any status (the shim ended the session, or the connection broke), a
 * v4/v5 client gets a Failure status and a Close, if the stream stands between frames.
 */
export function wsExecRelayHooks(
  exec: RelayedExec,
  version: RemoteCommandVersion,
  client: Duplex,
  log: Logger,
): RelayHooks {
  let blind = false;
  const stop = (why: string) => {
    blind = true;
    log.debug({ why }, 'stopped reading a relayed WebSocket session');
  };
  const fromUpstream = new ChannelFrameReader((p) => exec.fromUpstream(p.channel, p.data), stop);
  const fromClient = new ChannelFrameReader(
    (p) => exec.fromClient(p.channel, p.data, p.mask, p.maskOffset),
    stop,
  );
  return {
    onClientData: (chunk) => {
      if (!blind) fromClient.write(chunk);
    },
    onUpstreamData: (chunk) => {
      if (!blind) fromUpstream.write(chunk);
      return undefined;
    },
    onUpstreamEnd: (error) => {
      if (error === undefined || blind || exec.hasStatus || !client.writable) return;
      if (!version.jsonStatus || version.base64 || fromUpstream.framePosition !== 0) return;
      log.warn(
        { reason: error.message },
        'relayed session ended without a status; sent the client a Failure status',
      );
      writeBinaryFrame(client, true, CH_ERROR, encodeStatus(internalErrorStatus(error.message)));
      client.write(CLOSE_NORMAL);
    },
  };
}

/** A server's Close frame, code 1000. */
const CLOSE_NORMAL = Buffer.from([0x88, 0x02, 0x03, 0xe8]);
