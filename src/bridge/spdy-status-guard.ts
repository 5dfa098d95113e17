/**
 * A relayed SPDY exec/attach session is a byte relay, yet the rule that never bends holds for it too:
 * if the upstream ends without writing a status, kubectl reads the plain EOF as success (exit 0,
 * protocols.md §3.2, §9 #124571). The guard watches both directions with our frame parser (it
 * forwards nothing itself) and, when that happens, writes a Failure status on the client's error
 * stream, resets the streams and sends GOAWAY, exactly as a dying server should have.
 */
import type { Duplex } from 'node:stream';
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import { encodeStatus, internalErrorStatus } from '../k8s/status.js';
import type { Logger } from '../observe/logger.js';
import { GoAwayStatus, RstStatus } from '../spdy/constants.js';
import { type FrameHandler, FrameParser } from '../spdy/frame-parser.js';
import { dataFrameHeader, goAwayFrame, rstStreamFrame } from '../spdy/frame-writer.js';
import { HeaderDecompressor, type HeaderMap } from '../spdy/header-block.js';

const LIMITS = { maxControlFrameSize: 1024 * 1024 };
/** Padding a truncated DATA frame is worth it only when little is missing. */
const MAX_FILL = 1024 * 1024;

export class SpdyStatusGuard {
  private readonly fromClient: FrameParser;
  private readonly fromUpstream: FrameParser;
  private errorStreamId: number | undefined;
  private readonly streamIds: number[] = [];
  private statusSeen = false;
  private blind = false;

  constructor(
    private readonly version: RemoteCommandVersion,
    private readonly client: Duplex,
    private readonly log: Logger,
  ) {
    const ignore = () => {};
    const clientHandler: FrameHandler = {
      onData: ignore,
      onSynStream: (id: number, _a: number, _p: number, _f: number, headers: HeaderMap) => {
        this.streamIds.push(id);
        if (headers['streamtype'] === 'error') this.errorStreamId = id;
      },
      onSynReply: ignore,
      onRstStream: ignore,
      onPing: ignore,
      onGoAway: ignore,
      onIgnoredFrame: ignore,
      onError: (err) => this.goBlind(`client stream: ${err.message}`),
    };
    const upstreamHandler: FrameHandler = {
      ...clientHandler,
      onSynStream: ignore,
      onData: (id: number, payload: Buffer) => {
        if (id === this.errorStreamId && payload.length > 0) this.statusSeen = true;
      },
      onError: (err) => this.goBlind(`upstream stream: ${err.message}`),
    };
    const decompressorLimits = [64 * 1024, 64] as const;
    this.fromClient = new FrameParser(clientHandler, new HeaderDecompressor(...decompressorLimits), LIMITS);
    this.fromUpstream = new FrameParser(
      upstreamHandler,
      new HeaderDecompressor(...decompressorLimits),
      LIMITS,
    );
  }

  onClientData(chunk: Buffer): void {
    if (!this.blind) this.fromClient.write(chunk);
  }

  onUpstreamData(chunk: Buffer): void {
    if (!this.blind) this.fromUpstream.write(chunk);
  }

  /** The upstream side is gone; say so to the client if the upstream did not. */
  onUpstreamEnd(error: Error | undefined): void {
    if (this.blind || this.statusSeen || this.errorStreamId === undefined || !this.client.writable) return;
    // v1–v3 write nothing on success, so only a failed connection can be told apart there
    if (!this.version.jsonStatus && error === undefined) return;
    const position = this.fromUpstream.position;
    if (position < 0 || position > MAX_FILL) {
      this.log.warn('upstream ended mid-frame without a status; the client sees a closed connection');
      return;
    }
    const why = error
      ? `the upstream connection failed: ${error.message}`
      : 'the upstream ended the session without a status';
    const payload = this.version.jsonStatus ? encodeStatus(internalErrorStatus(why)) : Buffer.from(why);
    const c = this.client;
    c.cork();
    if (position > 0) c.write(Buffer.alloc(position)); // complete the frame the upstream cut short
    c.write(dataFrameHeader(this.errorStreamId, 0, payload.length));
    c.write(payload);
    for (const id of this.streamIds) c.write(rstStreamFrame(id, RstStatus.CANCEL));
    c.write(goAwayFrame(0, GoAwayStatus.OK));
    c.uncork();
    this.log.warn({ reason: why }, 'upstream ended without a status; sent the client a Failure status');
  }

  private goBlind(why: string): void {
    this.blind = true;
    this.fromClient.stop();
    this.fromUpstream.stop();
    this.log.debug({ why }, 'status guard stopped watching a relayed session');
  }
}
