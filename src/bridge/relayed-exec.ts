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
import { CH_ERROR, CH_RESIZE, CH_STDERR, CH_STDIN, CH_STDOUT, encodeMessage } from '../channel/codec.js';
import { ChannelFrameReader, unmasked } from '../channel/frame-reader.js';
import { serverFrame } from '../channel/ws-frame.js';
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import { internalErrorStatus } from '../k8s/status.js';
import type { Logger } from '../observe/logger.js';
import { StatusBytes, statusBytes } from '../remotecommand/status.js';
import { upstreamOutcome } from './outcome.js';
import type { RelayHooks } from './relay.js';
import { SessionAborted, type SessionRecord } from './session-record.js';

export class RelayedExec {
  private readonly status = new StatusBytes();
  private statusSeen = false;

  constructor(
    private readonly version: RemoteCommandVersion,
    private readonly record: SessionRecord,
  ) {
    record.payloadBytes = 0;
  }

  /** The relay stopped reading the frames: from now on only its raw byte counts say it is busy. */
  unwatched(): void {
    this.record.payloadBytes = undefined;
  }

  get hasStatus(): boolean {
    return this.statusSeen;
  }

  /** A channel's bytes from the upstream. */
  fromUpstream(channel: number, data: Buffer): void {
    if (this.record.payloadBytes !== undefined) this.record.payloadBytes += data.length;
    if (channel === CH_ERROR) {
      if (data.length > 0) this.statusSeen = true;
      this.status.add(data);
    } else if (channel === CH_STDOUT || channel === CH_STDERR) {
      this.record.tap?.output(data, channel === CH_STDERR);
    }
  }

  /** A channel's bytes from the client: a masked piece (WebSocket) is unmasked only when recorded. */
  fromClient(channel: number, data: Buffer, mask?: Buffer, maskOffset = 0): void {
    if (this.record.payloadBytes !== undefined) this.record.payloadBytes += data.length;
    const tap = this.record.tap;
    if (tap === undefined) return;
    if (channel === CH_RESIZE) tap.resize(unmasked(data, mask, maskOffset));
    else if (channel === CH_STDIN && tap.wantsInput) tap.input(unmasked(data, mask, maskOffset));
  }

  /** The upstream ended without a status: an error, never success (docs/design.md, rule 1). */
  endedWithoutStatus(note: string): void {
    this.record.outcome = 'error';
    this.record.note('statusGuard', note);
  }

  /**
   * The Failure status to give the client for `why`, as its protocol's error stream or channel
   * carries one (JSON, or v1–v3's text); the session is now an error.
   */
  failureStatus(why: string, log: Logger): Buffer {
    log.warn({ reason: why }, 'upstream ended without a status; sent the client a Failure status');
    this.endedWithoutStatus(`sent the client a Failure status: ${why}`);
    return statusBytes({ status: internalErrorStatus(why) }, this.version)!;
  }

  /**
   * The client left before the status (kubectl cp from a pod exits once it has read the archive's
   * end): the upstream's statusless end answers that. Counted as the translators count it.
   */
  clientLeftFirst(): void {
    if (this.record.outcome !== 'error') this.record.outcome = 'failure';
    this.record.note('statusGuard', 'the client left before the status');
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
 * Relay hooks reading a WebSocket exec/attach relay: channel frames both ways into `exec`. When the
 * upstream ends without a status — its Close, a FIN or a broken connection — the client gets a
 * Failure status on the error channel, as its protocol encodes it (docs/design.md, rule 1): put in
 * just before the upstream's Close, or written with a Close of our own when the connection ended.
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
    exec.unwatched();
    log.debug({ why }, 'stopped reading a relayed WebSocket session');
  };
  /** Where the upstream's Close begins in the chunk being read; whether it has come at all. */
  let closeAt: number | undefined;
  let upstreamClosed = false;
  /** The client sent its Close (not v5's CLOSE message, which only ends stdin). */
  let clientClosed = false;
  const fromUpstream = new ChannelFrameReader(
    (p) => exec.fromUpstream(p.channel, p.data),
    stop,
    undefined,
    (at) => {
      closeAt = at;
    },
  );
  const fromClient = new ChannelFrameReader(
    (p) => exec.fromClient(p.channel, p.data, p.mask, p.maskOffset),
    stop,
    undefined,
    () => {
      clientClosed = true;
    },
  );
  /**
   * Whether the upstream's end lacks the status the client is owed. v1–v3 write nothing on success,
   * so there only a failed connection counts. A client that went first is answered by the end.
   */
  const owed = (failed: boolean): boolean => {
    if (blind || exec.hasStatus || !(version.jsonStatus || failed)) return false;
    if (failed || (!clientClosed && !client.readableEnded)) return true;
    exec.clientLeftFirst();
    return false;
  };
  const failureFrame = (why: string): Buffer =>
    serverFrame(encodeMessage(CH_ERROR, exec.failureStatus(why, log), version.base64));
  /** The status is missing, and no frame can go in where it belongs: the session is an error all the same. */
  const untold = (how: string): undefined => {
    log.warn(`upstream ended without a status ${how}; the client could not be told`);
    exec.endedWithoutStatus(`no status, none sent to the client: the upstream ended ${how}`);
    return undefined;
  };
  return {
    onClientData: (chunk) => {
      if (!blind) fromClient.write(chunk);
    },
    onUpstreamData: (chunk) => {
      if (blind || upstreamClosed) return undefined;
      fromUpstream.write(chunk);
      const at = closeAt;
      if (at === undefined) return undefined;
      upstreamClosed = true;
      if (!owed(false)) return undefined;
      // a Close begun in an earlier chunk is on its way already: too late to go before it
      if (at < 0) return untold('with a Close begun in an earlier read');
      return [chunk.subarray(0, at), failureFrame(NO_STATUS), chunk.subarray(at)];
    },
    onUpstreamEnd: (error) => {
      if (upstreamClosed || !client.writable || !owed(error !== undefined)) return;
      const why = noStatusReason(error);
      if (fromUpstream.framePosition !== 0) return untold(`mid-frame (${why})`);
      client.write(failureFrame(why));
      client.write(CLOSE_NORMAL);
    },
  };
}

const NO_STATUS = 'the upstream ended the session without a status';

/** What the client's Failure says when a relayed session's upstream ended (`error`: how it failed) without a status. */
export function noStatusReason(error: Error | undefined): string {
  // kubeshim's own reason (--idle-timeout, shutdown) is told as it is, not as an upstream failure
  if (error instanceof SessionAborted) return error.message;
  return error ? `the upstream connection failed: ${error.message}` : NO_STATUS;
}

/** A server's Close frame, code 1000: what the apiserver sends after a status (docs/protocols.md §3.3). */
const CLOSE_NORMAL = Buffer.from([0x88, 0x02, 0x03, 0xe8]);
