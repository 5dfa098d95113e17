/**
 * A passive reader of one direction of a relayed Kubernetes channel WebSocket (RFC 6455 §5.2 frames
 * carrying `[channel] + payload` messages): it walks the frames of the bytes a relay forwards and
 * hands on each channel's payload as slices of those very buffers — never copying, never holding
 * a chunk. Masked payloads (client to server) are handed on still masked with the key and its
 * offset: the consumer unmasks a copy only of what it needs. Control frames are skipped. Text
 * messages (the base64 protocols) are collected up to a bound and decoded when complete.
 */
import bufferutil from 'bufferutil';

/** A piece of one channel's payload; valid only during the handler's call (the mask key is reused). */
export interface ChannelPiece {
  channel: number;
  /** A slice of the relayed bytes (or decoded base64): still masked when `mask` is set. */
  data: Buffer;
  mask: Buffer | undefined;
  /** Index into `mask` of `data[0]`. */
  maskOffset: number;
}

export type ChannelPieceHandler = (piece: ChannelPiece) => void;

/** Largest message read (x/net's frame limit); a base64 message is collected up to this. */
const MAX_MESSAGE = 32 * 1024 * 1024;
const MAX_TEXT_MESSAGE = 1024 * 1024;

export class ChannelFrameReader {
  private readonly head = Buffer.alloc(14);
  private headHave = 0;
  private headNeed = 2;
  private readonly key = Buffer.alloc(4);
  private masked = false;
  private remaining = 0;
  /** Payload offset within the current frame (for the mask). */
  private framePos = 0;
  private control = false;
  private fin = false;
  /** Current message: its channel (-1 before its first byte), text or not, its text so far. */
  private channel = -1;
  private text = false;
  private textParts: Buffer[] = [];
  private textSize = 0;
  private inPayload = false;
  private stopped = false;
  /** Handed to the handler each time (one object, not one per piece): use it before returning. */
  private readonly piece: ChannelPiece = {
    channel: 0,
    data: Buffer.alloc(0),
    mask: undefined,
    maskOffset: 0,
  };

  /**
   * Where the stream stands: 0 between frames, the payload bytes still to come inside one, -1
   * inside a frame's header.
   */
  get framePosition(): number {
    return this.inPayload ? this.remaining : this.headHave === 0 ? 0 : -1;
  }

  constructor(
    private readonly onPiece: ChannelPieceHandler,
    private readonly onError: (why: string) => void,
  ) {}

  stop(): void {
    this.stopped = true;
    this.textParts = [];
  }

  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.stopped) {
      if (!this.inPayload) {
        at = this.readHead(chunk, at);
        continue;
      }
      const n = Math.min(this.remaining, chunk.length - at);
      if (!this.control && n > 0) this.payload(chunk.subarray(at, at + n));
      at += n;
      this.framePos += n;
      this.remaining -= n;
      if (this.remaining === 0) this.frameDone();
    }
  }

  /** Read header bytes; returns where the chunk goes on. */
  private readHead(chunk: Buffer, at: number): number {
    while (this.headHave < this.headNeed && at < chunk.length) this.head[this.headHave++] = chunk[at++]!;
    if (this.headHave < this.headNeed) return at;
    if (this.headNeed === 2) {
      const len7 = this.head[1]! & 0x7f;
      this.masked = (this.head[1]! & 0x80) !== 0;
      this.headNeed = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.masked ? 4 : 0);
      if (this.headNeed > 2) return at;
    }
    const len7 = this.head[1]! & 0x7f;
    let length = len7;
    let p = 2;
    if (len7 === 126) {
      length = this.head.readUInt16BE(2);
      p = 4;
    } else if (len7 === 127) {
      length = this.head.readUInt32BE(2) * 0x100000000 + this.head.readUInt32BE(6);
      p = 10;
    }
    if (this.masked) this.head.copy(this.key, 0, p, p + 4);
    const opcode = this.head[0]! & 0x0f;
    this.fin = (this.head[0]! & 0x80) !== 0;
    this.control = (opcode & 0x08) !== 0;
    if (length > MAX_MESSAGE) {
      this.fail(`a frame of ${length} bytes`);
      return at;
    }
    if (!this.control) {
      if (opcode === 1 || opcode === 2) {
        this.channel = -1;
        this.text = opcode === 1;
        this.textParts = [];
        this.textSize = 0;
      } else if (opcode !== 0) {
        this.fail(`unknown opcode ${opcode}`);
        return at;
      }
    }
    this.headHave = 0;
    this.headNeed = 2;
    this.remaining = length;
    this.framePos = 0;
    this.inPayload = true;
    if (length === 0) this.frameDone();
    return at;
  }

  private payload(data: Buffer): void {
    let piece = data;
    let offset = this.framePos;
    if (this.channel < 0) {
      // the message's first byte names its channel
      const first = this.masked ? piece[0]! ^ this.key[offset & 3]! : piece[0]!;
      this.channel = this.text ? first - 0x30 : first;
      piece = piece.subarray(1);
      offset++;
      if (piece.length === 0) return;
    }
    if (this.text) {
      if (this.textSize + piece.length > MAX_TEXT_MESSAGE) return; // too big to decode: left out
      this.textParts.push(this.masked ? unmaskedCopy(piece, this.key, offset) : piece);
      this.textSize += piece.length;
      return;
    }
    this.emit(piece, this.masked ? this.key : undefined, offset & 3);
  }

  private emit(data: Buffer, mask: Buffer | undefined, maskOffset: number): void {
    const p = this.piece;
    p.channel = this.channel;
    p.data = data;
    p.mask = mask;
    p.maskOffset = maskOffset;
    this.onPiece(p);
  }

  private frameDone(): void {
    this.inPayload = false;
    if (this.control || !this.fin) return;
    if (this.text && this.textParts.length > 0) {
      const data = Buffer.from(Buffer.concat(this.textParts).toString('latin1'), 'base64');
      this.textParts = [];
      if (data.length > 0) this.emit(data, undefined, 0);
    }
    this.channel = -1;
  }

  private fail(why: string): void {
    this.stop();
    this.onError(why);
  }
}

/** The bytes as sent: an unmasked copy when `mask` is given; else `data` itself. */
export function unmasked(data: Buffer, mask: Buffer | undefined, maskOffset: number): Buffer {
  return mask ? unmaskedCopy(data, mask, maskOffset) : data;
}

function unmaskedCopy(data: Buffer, key: Buffer, offset: number): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  const k = offset & 3;
  const rotated =
    k === 0 ? key : Buffer.from([key[k]!, key[(k + 1) & 3]!, key[(k + 2) & 3]!, key[(k + 3) & 3]!]);
  bufferutil.mask(data, rotated, out, 0, data.length);
  return out;
}
