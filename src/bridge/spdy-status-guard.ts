/**
 * A relayed SPDY exec/attach session is a byte relay, yet the rule that never bends holds for it too:
 * if the upstream ends without writing a status, kubectl reads the plain EOF as success (exit 0,
 * docs/protocols.md §3.2, §9 #124571). The guard watches both directions with a SPDY tap and,
 * when that happens, gives the client a Failure status on its error stream: put in just before the
 * upstream's RST_STREAM (or GOAWAY) when the upstream closed "cleanly", or, when the connection just
 * dropped, written with the resets and GOAWAY a dying server should have sent. What the tap reads
 * of the streams (payload slices, never copies) goes on to the session's RelayedExec: the status
 * that gives the session its outcome, and the recording.
 */
import type { Duplex } from 'node:stream';
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import type { Logger } from '../observe/logger.js';
import { streamChannel } from '../remotecommand/streams.js';
import { GoAwayStatus, RstStatus } from '../spdy/constants.js';
import { dataFrameHeader, goAwayFrame, rstStreamFrame } from '../spdy/frame-writer.js';
import { SpdyTap, type TapDirectionName } from '../spdy/tap.js';
import { noStatusReason, RelayedExec } from './relayed-exec.js';
import type { SessionRecord } from './session-record.js';

/** Streams followed; a client opening more than a session has is not followed further. */
const STREAM_TYPES = 16;
/** Padding a truncated DATA frame is worth it only when little is missing. */
const MAX_FILL = 1024 * 1024;

export class SpdyStatusGuard {
  private readonly tap: SpdyTap;
  private errorStreamId: number | undefined;
  private readonly streamIds: number[] = [];
  /** Channel of each stream the client opened, by stream id. */
  private readonly channels = new Map<number, number>();
  /** What the session's streams say: its status and its recording. */
  readonly exec: RelayedExec;
  private statusSeen = false;
  /** The client said goodbye (GOAWAY, its error stream reset) before any status came. */
  private clientLeft = false;
  /** Where the upstream's chunk being read begins, and where in it a status must go. */
  private chunkStart = 0;
  private cut: number | undefined;

  constructor(
    private readonly version: RemoteCommandVersion,
    private readonly client: Duplex,
    private readonly log: Logger,
    private readonly record: SessionRecord,
  ) {
    this.exec = new RelayedExec(version, record);
    this.tap = new SpdyTap({
      client: {
        onSynStream: (id, headers) => {
          this.streamIds.push(id);
          const channel = streamChannel(headers['streamtype']);
          if (channel !== undefined && this.channels.size < STREAM_TYPES) this.channels.set(id, channel);
          if (headers['streamtype'] === 'error') this.errorStreamId = id;
        },
        onData: (id, payload) => {
          const channel = this.channels.get(id);
          if (channel !== undefined && payload.length > 0) this.exec.fromClient(channel, payload);
        },
        onRstStream: (id) => {
          if (id === this.errorStreamId) this.clientLeft = true;
        },
        onGoAway: () => {
          this.clientLeft = true;
        },
      },
      upstream: {
        onData: (id, payload) => {
          if (id === this.errorStreamId && payload.length > 0) this.statusSeen = true;
          const channel = this.channels.get(id);
          if (channel !== undefined) this.exec.fromUpstream(channel, payload);
        },
        onRstStream: (id, _status, offset) => {
          if (id === this.errorStreamId) this.closedWithoutStatus(offset);
        },
        onGoAway: (_lastGood, _status, offset) => this.closedWithoutStatus(offset),
      },
      onUnreadable: (direction, err) => {
        this.exec.unwatched();
        this.log.debug(
          { why: `${direction} stream: ${err.message}` },
          'status guard stopped watching a relayed session',
        );
      },
      onInternalError: (direction, err) => this.internalError(direction, err),
    });
  }

  onClientData(chunk: Buffer): void {
    this.tap.client.watch(chunk);
  }

  /** Watch a chunk from the upstream; returns it with a status put in when one is missing. */
  onUpstreamData(chunk: Buffer): Buffer[] | undefined {
    if (!this.tap.active) return undefined;
    this.chunkStart = this.tap.upstream.bytesWatched;
    this.cut = undefined;
    this.tap.upstream.watch(chunk);
    const at = this.cut;
    // a frame that began in an earlier chunk is already on its way: too late to go before it
    if (at === undefined || at < 0) return undefined;
    const frame = this.failureFrame('the upstream ended the session without a status');
    return [chunk.subarray(0, at), frame, chunk.subarray(at)];
  }

  /** The upstream reset the error stream or went away (GOAWAY) without writing a status on it. */
  private closedWithoutStatus(frameOffset: number): void {
    if (this.statusSeen || this.cut !== undefined || this.errorStreamId === undefined) return;
    // v1–v3 write nothing on success: their silence is not a failure
    if (!this.version.jsonStatus) return;
    if (this.leftFirst()) return;
    this.cut = frameOffset - this.chunkStart;
  }

  /**
   * The client went first (kubectl cp from a pod exits once its tar reader has read the archive's
   * end, before the status): the upstream's statusless end answers that, it is not a failure to
   * report. The session counts as one the client left early, as the translators count it.
   */
  private leftFirst(): boolean {
    if (!this.clientLeft && !this.client.readableEnded) return false;
    this.exec.clientLeftFirst();
    return true;
  }

  /** A DATA frame with the Failure status on the client's error stream; the session is now an error. */
  private failureFrame(why: string): Buffer {
    this.statusSeen = true;
    const payload = this.exec.failureStatus(why, this.log);
    return Buffer.concat([dataFrameHeader(this.errorStreamId!, 0, payload.length), payload]);
  }

  /** The upstream side is gone; say so to the client if the upstream did not. */
  onUpstreamEnd(error: Error | undefined): void {
    if (!this.tap.active || this.statusSeen || this.errorStreamId === undefined || !this.client.writable)
      return;
    // v1–v3 write nothing on success, so only a failed connection can be told apart there
    if (!this.version.jsonStatus && error === undefined) return;
    if (error === undefined && this.leftFirst()) return;
    const upstream = this.tap.upstream;
    const fill = upstream.dataMissing;
    if ((!upstream.atFrameBoundary && fill === 0) || fill > MAX_FILL) {
      this.log.warn('upstream ended mid-frame without a status; the client sees a closed connection');
      return;
    }
    const why = noStatusReason(error);
    const c = this.client;
    c.cork();
    if (fill > 0) c.write(Buffer.alloc(fill)); // complete the DATA frame the upstream cut short
    c.write(this.failureFrame(why));
    for (const id of this.streamIds) c.write(rstStreamFrame(id, RstStatus.CANCEL));
    c.write(goAwayFrame(0, GoAwayStatus.OK));
    c.uncork();
  }

  /**
   * Reading the session threw: a bug of ours, not the peer's. The session ends as an internal error
   * (the tap has stopped, so no status can be put in the stream any more).
   */
  private internalError(direction: TapDirectionName, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.exec.unwatched();
    this.log.error({ err, direction }, 'bug: the status guard failed reading a relayed session; ending it');
    this.record.outcome = 'error';
    this.record.abort(`internal error in the status guard: ${message}`);
  }
}
