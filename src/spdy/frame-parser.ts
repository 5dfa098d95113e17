/**
 * Streaming SPDY/3 frame parser (docs/protocols.md §6.1): bytes in, frame events out, input split at any
 * byte. A small explicit state machine over a list of received chunks; DATA payloads are handed on
 * as slices of the received chunks as they arrive (never buffered, never copied); control frames
 * are collected only after their length was checked against the limit. A protocol error stops the
 * parser and is reported once, with the GOAWAY status it causes.
 */
import { FLAG_FIN, FRAME_HEADER_SIZE, FrameType, GoAwayStatus, SpdyProtocolError } from './constants.js';
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
  /** Bytes fed so far, and where in them the frame being dispatched began. */
  private received = 0;
  private currentFrameStart = 0;

  constructor(
    private readonly handler: FrameHandler,
    private readonly decompressor: HeaderDecompressor,
    private readonly limits: ParserLimits,
  ) {}

  /** True once a protocol error was reported; further input is ignored. */
  get failed(): boolean {
    return this.state === State.Failed;
  }

  /**
   * Where the byte stream stands: at a frame boundary (`0`), inside a DATA payload (the number of
   * payload bytes still due), or inside a frame header or control frame (`-1`). A relay that wants to
   * add a frame of its own to a stream it forwards needs this.
   */
  get position(): number {
    if (this.state === State.Data) return this.remaining;
    return this.state === State.Header && this.buffered === 0 ? 0 : -1;
  }

  /**
   * Offset, counted from the first byte ever fed, at which the frame being dispatched begins. Read it
   * inside a handler callback: a relay that must put a frame of its own before this one needs it.
   */
  get frameStart(): number {
    return this.currentFrameStart;
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
      this.fail(
        err instanceof SpdyProtocolError
          ? err
          : new SpdyProtocolError(String((err as Error)?.message ?? err), GoAwayStatus.INTERNAL_ERROR),
      );
    }
  }

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
    this.currentFrameStart = this.received - this.buffered;
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
        throw new SpdyProtocolError(
          `control frame type ${this.controlType} of ${this.remaining} bytes exceeds the limit of ${this.limits.maxControlFrameSize}`,
        );
      }
      this.state = State.Control;
      return;
    }
    this.streamId = word0 & 0x7fffffff;
    if (this.streamId === 0) throw new SpdyProtocolError('DATA frame on stream 0');
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

  private readControl(body: Buffer): void {
    const need = (n: number, what: string) => {
      if (body.length < n)
        throw new SpdyProtocolError(`${what} frame of ${body.length} bytes, want at least ${n}`);
    };
    const nonZero = (id: number, what: string) => {
      if (id === 0) throw new SpdyProtocolError(`${what} on stream 0`);
      return id;
    };
    switch (this.controlType) {
      case FrameType.SYN_STREAM: {
        need(10, 'SYN_STREAM');
        const id = nonZero(body.readUInt32BE(0) & 0x7fffffff, 'SYN_STREAM');
        const assoc = body.readUInt32BE(4) & 0x7fffffff;
        const priority = body[8]! >> 5;
        const headers = this.decompressor.decompress(body.subarray(10));
        this.handler.onSynStream(id, assoc, priority, this.flags, headers);
        return;
      }
      case FrameType.SYN_REPLY: {
        need(4, 'SYN_REPLY');
        const id = nonZero(body.readUInt32BE(0) & 0x7fffffff, 'SYN_REPLY');
        const headers = this.decompressor.decompress(body.subarray(4));
        this.handler.onSynReply(id, this.flags, headers);
        return;
      }
      case FrameType.HEADERS: {
        // Never acted on, but inflated all the same: it advances the shared zlib context (§6.2).
        need(4, 'HEADERS');
        this.decompressor.decompress(body.subarray(4));
        this.handler.onIgnoredFrame(this.controlType, body.length);
        return;
      }
      case FrameType.RST_STREAM: {
        need(8, 'RST_STREAM');
        const id = nonZero(body.readUInt32BE(0) & 0x7fffffff, 'RST_STREAM');
        const status = body.readUInt32BE(4);
        if (status === 0) throw new SpdyProtocolError('RST_STREAM with status 0');
        this.handler.onRstStream(id, status);
        return;
      }
      case FrameType.PING: {
        need(4, 'PING');
        const id = body.readUInt32BE(0);
        if (id === 0) throw new SpdyProtocolError('PING with id 0');
        this.handler.onPing(id);
        return;
      }
      case FrameType.GOAWAY: {
        need(8, 'GOAWAY');
        this.handler.onGoAway(body.readUInt32BE(0) & 0x7fffffff, body.readUInt32BE(4));
        return;
      }
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
