/**
 * Streaming SPDY/3 frame parser (docs/protocols.md §6.1): bytes in, frame events out, input split at any
 * byte. A small explicit state machine over a list of received chunks; DATA payloads are handed on
 * as slices of the received chunks as they arrive (never buffered, never copied); control frames
 * are collected only after their length was checked against the limit. A protocol error (a frame
 * that does not parse, a header block that does not inflate) stops the parser and is reported once
 * through `onError`, with the GOAWAY status it causes. An exception thrown by a handler is not the
 * peer's doing: it stops the parser and propagates out of `write` to its caller.
 */
import { FLAG_FIN, FRAME_HEADER_SIZE, FrameType, SpdyProtocolError } from './constants.js';
import type { HeaderDecompressor, HeaderMap } from './header-block.js';

export interface FrameHandler {
  /** A piece of a DATA frame's payload; `fin` is set on the frame's last piece (possibly empty). */
  onData(streamId: number, payload: Buffer, fin: boolean): void;
  onSynStream(
    streamId: number,
    associatedId: number,
    priority: number,
    flags: number,
    headers: HeaderMap,
  ): void;
  onSynReply(streamId: number, flags: number, headers: HeaderMap): void;
  onRstStream(streamId: number, status: number): void;
  onPing(id: number): void;
  onGoAway(lastGoodStreamId: number, status: number): void;
  /** HEADERS (inflated, not acted on), SETTINGS, WINDOW_UPDATE and unknown control types (skipped). */
  onIgnoredFrame(type: number, length: number): void;
  onError(err: SpdyProtocolError): void;
}

export interface ParserLimits {
  /** Largest control frame body accepted (buffered whole). */
  maxControlFrameSize: number;
}

const EMPTY = Buffer.alloc(0);

/** Control frames whose body is read; all others are skipped unbuffered. */
const PARSED_CONTROL_TYPES = new Set<number>([
  FrameType.SYN_STREAM,
  FrameType.SYN_REPLY,
  FrameType.RST_STREAM,
  FrameType.PING,
  FrameType.GOAWAY,
  FrameType.HEADERS,
]);

enum State {
  Header,
  Data,
  Control,
  Skip,
  Failed,
}

export class FrameParser {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private state = State.Header;
  // current frame
  private streamId = 0;
  private flags = 0;
  private remaining = 0;
  private controlType = 0;
  /** Bytes fed so far, and where in them the frame most recently begun starts. */
  private received = 0;
  private frameBegin = 0;

  constructor(
    private readonly handler: FrameHandler,
    private readonly decompressor: HeaderDecompressor,
    private readonly limits: ParserLimits,
  ) {}

  /** True once a protocol error was reported; further input is ignored. */
  get failed(): boolean {
    return this.state === State.Failed;
  }

  /** Bytes fed so far (offsets count from the first of them). */
  get bytesReceived(): number {
    return this.received;
  }

  /**
   * Offset of the first byte of the frame most recently begun: inside a handler, the frame being
   * reported.
   */
  get frameOffset(): number {
    return this.frameBegin;
  }

  /** True when every byte fed so far belongs to a whole frame: no frame is begun and unfinished. */
  get atFrameBoundary(): boolean {
    return this.state === State.Header && this.buffered === 0;
  }

  /** Payload bytes of the DATA frame being received that have not arrived yet (0 outside one). */
  get dataMissing(): number {
    return this.state === State.Data ? this.remaining : 0;
  }

  /** Stop parsing for good without reporting anything (the session is closing). */
  stop(): void {
    this.state = State.Failed;
    this.chunks.length = 0;
    this.buffered = 0;
  }

  write(chunk: Buffer): void {
    if (this.state === State.Failed || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.received += chunk.length;
    try {
      this.run();
    } catch (err) {
      // a handler threw, or a bug of ours (the peer's errors go to fail): nothing after it can be trusted
      this.stop();
      throw err;
    }
  }

  /** The peer sent what does not parse or inflate: report it once and read nothing more. */
  private fail(err: SpdyProtocolError): void {
    if (this.state === State.Failed) return;
    this.state = State.Failed;
    this.chunks.length = 0;
    this.buffered = 0;
    this.handler.onError(err);
  }

  private run(): void {
    for (;;) {
      switch (this.state) {
        case State.Header:
          if (this.buffered < FRAME_HEADER_SIZE) return;
          this.readHeader();
          break;
        case State.Data:
          if (!this.pumpData()) return;
          break;
        case State.Control:
          if (this.buffered < this.remaining) return;
          this.readControl(this.consume(this.remaining));
          if (this.state === State.Control) this.state = State.Header;
          break;
        case State.Skip:
          if (!this.skip()) return;
          break;
        case State.Failed:
          return;
      }
    }
  }

  private readHeader(): void {
    this.frameBegin = this.received - this.buffered;
    const h = this.consume(FRAME_HEADER_SIZE);
    const word0 = h.readUInt32BE(0);
    this.flags = h[4]!;
    this.remaining = h.readUIntBE(5, 3);
    if (word0 & 0x80000000) {
      // Control frame: version is not checked on read (spdystream does not either, §6.1).
      this.controlType = word0 & 0xffff;
      if (!PARSED_CONTROL_TYPES.has(this.controlType)) {
        // SETTINGS and WINDOW_UPDATE are never waited for (§6.4); unknown types are skipped by length.
        this.handler.onIgnoredFrame(this.controlType, this.remaining);
        this.state = State.Skip;
        return;
      }
      if (this.remaining > this.limits.maxControlFrameSize) {
        this.fail(
          new SpdyProtocolError(
            `control frame type ${this.controlType} of ${this.remaining} bytes exceeds the limit of ${this.limits.maxControlFrameSize}`,
          ),
        );
        return;
      }
      this.state = State.Control;
      return;
    }
    this.streamId = word0 & 0x7fffffff;
    if (this.streamId === 0) {
      this.fail(new SpdyProtocolError('DATA frame on stream 0'));
      return;
    }
    if (this.remaining === 0) {
      this.state = State.Header;
      if (this.flags & FLAG_FIN) this.handler.onData(this.streamId, EMPTY, true);
      return;
    }
    this.state = State.Data;
  }

  /** Hand on as much of the current DATA payload as has arrived. Returns false when input ran out. */
  private pumpData(): boolean {
    while (this.remaining > 0) {
      if (this.buffered === 0) return false;
      const head = this.chunks[0]!;
      let piece: Buffer;
      if (head.length <= this.remaining) {
        piece = head;
        this.chunks.shift();
      } else {
        piece = head.subarray(0, this.remaining);
        this.chunks[0] = head.subarray(this.remaining);
      }
      this.buffered -= piece.length;
      this.remaining -= piece.length;
      const fin = this.remaining === 0 && (this.flags & FLAG_FIN) !== 0;
      this.handler.onData(this.streamId, piece, fin);
      // The handler may have failed the session (e.g. it was destroyed): stop touching state.
      if (this.state !== State.Data) return false;
    }
    this.state = State.Header;
    return true;
  }

  private skip(): boolean {
    while (this.remaining > 0) {
      if (this.buffered === 0) return false;
      const n = Math.min(this.remaining, this.chunks[0]!.length);
      this.consume(n);
      this.remaining -= n;
    }
    this.state = State.Header;
    return true;
  }

  /** Parse a whole control frame, then report it; a frame that does not parse fails the parser. */
  private readControl(body: Buffer): void {
    switch (this.controlType) {
      case FrameType.SYN_STREAM: {
        const id = this.streamIdIn(body, 10, 'SYN_STREAM');
        const headers = id === 0 ? undefined : this.inflate(body.subarray(10));
        if (headers === undefined) return;
        this.handler.onSynStream(id, body.readUInt32BE(4) & 0x7fffffff, body[8]! >> 5, this.flags, headers);
        return;
      }
      case FrameType.SYN_REPLY: {
        const id = this.streamIdIn(body, 4, 'SYN_REPLY');
        const headers = id === 0 ? undefined : this.inflate(body.subarray(4));
        if (headers === undefined) return;
        this.handler.onSynReply(id, this.flags, headers);
        return;
      }
      case FrameType.HEADERS: {
        // Never acted on, but inflated all the same: it advances the shared zlib context (§6.2).
        if (!this.longEnough(body, 4, 'HEADERS') || this.inflate(body.subarray(4)) === undefined) return;
        this.handler.onIgnoredFrame(this.controlType, body.length);
        return;
      }
      case FrameType.RST_STREAM: {
        const id = this.streamIdIn(body, 8, 'RST_STREAM');
        if (id === 0) return;
        const status = body.readUInt32BE(4);
        if (status === 0) {
          this.fail(new SpdyProtocolError('RST_STREAM with status 0'));
          return;
        }
        this.handler.onRstStream(id, status);
        return;
      }
      case FrameType.PING: {
        if (!this.longEnough(body, 4, 'PING')) return;
        const id = body.readUInt32BE(0);
        if (id === 0) {
          this.fail(new SpdyProtocolError('PING with id 0'));
          return;
        }
        this.handler.onPing(id);
        return;
      }
      case FrameType.GOAWAY: {
        if (!this.longEnough(body, 8, 'GOAWAY')) return;
        this.handler.onGoAway(body.readUInt32BE(0) & 0x7fffffff, body.readUInt32BE(4));
        return;
      }
    }
  }

  private longEnough(body: Buffer, n: number, what: string): boolean {
    if (body.length >= n) return true;
    this.fail(new SpdyProtocolError(`${what} frame of ${body.length} bytes, want at least ${n}`));
    return false;
  }

  /** The non-zero stream id a frame of at least `n` bytes starts with; 0 when it failed the parser. */
  private streamIdIn(body: Buffer, n: number, what: string): number {
    if (!this.longEnough(body, n, what)) return 0;
    const id = body.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) this.fail(new SpdyProtocolError(`${what} on stream 0`));
    return id;
  }

  /** A header block's headers; undefined when it does not inflate or parse (the parser failed). */
  private inflate(block: Buffer): HeaderMap | undefined {
    try {
      return this.decompressor.decompress(block);
    } catch (err) {
      // the decompressor reports what the peer sent as SpdyProtocolError; anything else is a bug
      if (!(err instanceof SpdyProtocolError)) throw err;
      this.fail(err);
      return undefined;
    }
  }

  /** Take n buffered bytes: a slice when they lie in one chunk, a copy only across chunks. */
  private consume(n: number): Buffer {
    if (n === 0) return EMPTY; // a control frame claiming no body, possibly with nothing buffered
    this.buffered -= n;
    const head = this.chunks[0]!;
    if (n === head.length) return this.chunks.shift()!;
    if (n < head.length) {
      this.chunks[0] = head.subarray(n);
      return head.subarray(0, n);
    }
    // a control frame that came in tiny pieces: one splice at the end, not one shift per piece
    // (shifting tens of thousands of 1-byte chunks one by one is quadratic)
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    let used = 0;
    while (off < n) {
      const c = this.chunks[used]!;
      const take = Math.min(c.length, n - off);
      c.copy(out, off, 0, take);
      off += take;
      if (take === c.length) used++;
      else this.chunks[used] = c.subarray(take);
    }
    this.chunks.splice(0, used);
    return out;
  }
}
