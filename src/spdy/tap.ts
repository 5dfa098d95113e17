/**
 * A passive tap on a relayed SPDY connection: it reads the bytes each side sends, as the relay hands
 * them on, without changing, holding or copying them (DATA payloads are slices of the relayed
 * chunks), and reports the frames it reads with the offset at which each begins. Each direction has
 * its own parser and header compression context (docs/protocols.md §6.2).
 *
 * The tap never throws into the relay. Two things end its watch, told apart: bytes that are not
 * SPDY (`onUnreadable`: the peer's doing, the relay goes on untouched) and an exception thrown while
 * reading, by a listener or the tap itself (`onInternalError`: a bug of ours, never blamed on a peer).
 */
import type { SpdyProtocolError } from './constants.js';
import { type FrameHandler, FrameParser } from './frame-parser.js';
import { HeaderDecompressor, type HeaderMap } from './header-block.js';

/**
 * The frames of one direction a consumer wants; each gets `offset`, where the frame's first byte
 * lies in that direction's bytes (counted from the first byte watched).
 */
export interface TapListener {
  onSynStream?(streamId: number, headers: HeaderMap, offset: number): void;
  /** A piece of a DATA frame's payload; `fin` on its last piece (possibly empty). */
  onData?(streamId: number, payload: Buffer, fin: boolean, offset: number): void;
  onRstStream?(streamId: number, status: number, offset: number): void;
  onPing?(id: number, offset: number): void;
  onGoAway?(lastGoodStreamId: number, status: number, offset: number): void;
}

export type TapDirectionName = 'client' | 'upstream';

export interface SpdyTapOptions {
  /** Frames the client sends. */
  client: TapListener;
  /** Frames the upstream sends. */
  upstream: TapListener;
  /** A direction's bytes are not SPDY: the tap stopped watching. */
  onUnreadable(direction: TapDirectionName, err: SpdyProtocolError): void;
  /** A listener (or the tap itself) threw, a bug: the tap stopped watching. */
  onInternalError(direction: TapDirectionName, err: unknown): void;
}

/** Largest control frame and header block a tap reads (a relay does not enforce the session's own limits). */
const MAX_CONTROL_FRAME = 1024 * 1024;
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_HEADER_PAIRS = 64;

export class SpdyTap {
  readonly client: TapDirection;
  readonly upstream: TapDirection;
  private watching = true;

  constructor(private readonly opts: SpdyTapOptions) {
    this.client = new TapDirection(this, 'client', opts.client);
    this.upstream = new TapDirection(this, 'upstream', opts.upstream);
  }

  /** False once the tap stopped (asked to, or after an unreadable byte or a listener's exception). */
  get active(): boolean {
    return this.watching;
  }

  /** Stop watching both directions for good, reporting nothing. */
  stop(): void {
    if (!this.watching) return;
    this.watching = false;
    this.client.stop();
    this.upstream.stop();
  }

  /** @internal */
  unreadable(direction: TapDirectionName, err: SpdyProtocolError): void {
    this.stop();
    this.opts.onUnreadable(direction, err);
  }

  /** @internal */
  internalError(direction: TapDirectionName, err: unknown): void {
    this.stop();
    this.opts.onInternalError(direction, err);
  }
}

/** What one side sends, as the tap reads it. */
export class TapDirection {
  private readonly parser: FrameParser;

  constructor(
    private readonly tap: SpdyTap,
    readonly name: TapDirectionName,
    listener: TapListener,
  ) {
    const ignore = () => {};
    const parser: FrameParser = new FrameParser(
      {
        onData: (id, payload, fin) => listener.onData?.(id, payload, fin, parser.frameOffset),
        onSynStream: (id, _assoc, _priority, _flags, headers) =>
          listener.onSynStream?.(id, headers, parser.frameOffset),
        onSynReply: ignore,
        onRstStream: (id, status) => listener.onRstStream?.(id, status, parser.frameOffset),
        onPing: (id) => listener.onPing?.(id, parser.frameOffset),
        onGoAway: (last, status) => listener.onGoAway?.(last, status, parser.frameOffset),
        onIgnoredFrame: ignore,
        onError: (err) => tap.unreadable(name, err),
      } satisfies FrameHandler,
      new HeaderDecompressor(MAX_HEADER_BYTES, MAX_HEADER_PAIRS),
      { maxControlFrameSize: MAX_CONTROL_FRAME },
    );
    this.parser = parser;
  }

  /** Read a chunk this side sent (the chunk itself goes on unchanged; its payloads are slices of it). */
  watch(chunk: Buffer): void {
    if (!this.tap.active) return;
    try {
      this.parser.write(chunk);
    } catch (err) {
      this.tap.internalError(this.name, err);
    }
  }

  /** @internal Parse nothing more (the tap stopped). */
  stop(): void {
    this.parser.stop();
  }

  /** Bytes watched so far: the offset the next chunk begins at. */
  get bytesWatched(): number {
    return this.parser.bytesReceived;
  }

  /** True when the bytes watched end with a whole frame. */
  get atFrameBoundary(): boolean {
    return this.parser.atFrameBoundary;
  }

  /** Payload bytes of the DATA frame being sent that are still to come (0 outside one). */
  get dataMissing(): number {
    return this.parser.dataMissing;
  }
}
