/**
 * A passive reader of one direction of a relayed Kubernetes channel WebSocket (RFC 6455 §5.2 frames
 * carrying `[channel] + payload` messages): it walks the frames of the bytes a relay forwards and
 * hands on each channel's payload as slices of those very buffers — never copying, never holding
 * a chunk. Masked payloads (client to server) are handed on still masked with the key and its
 * offset: the consumer unmasks a copy only of what it needs. Control frames are skipped. Text
 * messages (the base64 protocols) are collected up to a bound and decoded when complete.
 *
 * With `strict`, it is the only reader of the connection (a translated session's side, in ws's
 * place: ws-internals.ts, takeOverReads) and checks what ws checks of RFC 6455 §5: no reserved
 * bit, known opcodes, the mask as the direction requires, continuations only inside a message,
 * control frames short and unfragmented, messages within the limit, nothing after a close frame;
 * binary messages only, unless text is taken as binary. The bytes are its own, so masked payloads
 * are unmasked in place and handed on as plain slices. Control frames are handed on whole and
 * still masked (`onControl`), for ws; the end of each data message is told (`onMessageEnd`).
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

/** The checks of a reader that is the only one (see above). */
export interface StrictFraming {
  /** The frames come from a client, so each must be masked; from a server, none may be. */
  masked: boolean;
  /** Text messages are read as binary ones (as x/net's server reads them, docs/protocols.md §3.3). */
  textAsBinary?: boolean;
  /** A control frame, header and payload, whole. */
  onControl(frame: Buffer): void;
  /** The last piece of a data message of `channel` was handed on (or the message had no payload). */
  onMessageEnd?(channel: number): void;
}

/** Why a reader stopped, and the WebSocket close code that says it (RFC 6455 §7.4.1). */
export type FramingErrorHandler = (why: string, closeCode: number) => void;
const CLOSE_PROTOCOL_ERROR = 1002;
const CLOSE_UNSUPPORTED_DATA = 1003;
const CLOSE_TOO_BIG = 1009;

/** Largest message read (x/net's frame limit); a base64 message is collected up to this. */
const MAX_MESSAGE = 32 * 1024 * 1024;
const MAX_TEXT_MESSAGE = 1024 * 1024;
const EMPTY = Buffer.alloc(0);
/** A key turned to start at a payload offset, for unmasking in place: scratch, used within one call. */
const TURNED = Buffer.alloc(4);

export class ChannelFrameReader {
  /** The frame header being read; made at the first byte (an idle session's reader holds none). */
  private head: Buffer | undefined;
  private headHave = 0;
  private headNeed = 2;
  /** The current frame's masking key; made at the first masked frame. */
  private key: Buffer | undefined;
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
  /** strict: inside a fragmented data message, its size so far, the control frame being read. */
  private inMessage = false;
  private messageSize = 0;
  private controlFrame: Buffer | undefined;
  private controlHave = 0;
  /** Handed to the handler each time (one object, not one per piece): use it before returning. */
  private readonly piece: ChannelPiece = {
    channel: 0,
    data: EMPTY,
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

  /**
   * `onCloseFrame`: a close frame's header was read; it began `at` bytes into the chunk being
   * written (negative when it began in an earlier chunk). A relay puts a frame of its own before it.
   */
  constructor(
    private readonly onPiece: ChannelPieceHandler,
    private readonly onError: FramingErrorHandler,
    private readonly strict?: StrictFraming,
    private readonly onCloseFrame?: (at: number) => void,
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
      else if (this.controlFrame)
        this.controlHave += chunk.copy(this.controlFrame, this.controlHave, at, at + n);
      at += n;
      this.framePos += n;
      this.remaining -= n;
      if (this.remaining === 0) this.frameDone();
    }
  }

  /** Read header bytes; returns where the chunk goes on. */
  private readHead(chunk: Buffer, at: number): number {
    if (this.head === undefined) this.head = Buffer.allocUnsafe(14);
    const head = this.head;
    while (this.headHave < this.headNeed && at < chunk.length) head[this.headHave++] = chunk[at++]!;
    if (this.headHave < this.headNeed) return at;
    if (this.headNeed === 2) {
      const len7 = head[1]! & 0x7f;
      this.masked = (head[1]! & 0x80) !== 0;
      this.headNeed = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.masked ? 4 : 0);
      if (this.headNeed > 2) return at;
    }
    const len7 = head[1]! & 0x7f;
    let length = len7;
    let p = 2;
    if (len7 === 126) {
      length = head.readUInt16BE(2);
      p = 4;
    } else if (len7 === 127) {
      length = head.readUInt32BE(2) * 0x100000000 + head.readUInt32BE(6);
      p = 10;
    }
    if (this.masked) {
      if (this.key === undefined) this.key = Buffer.allocUnsafe(4);
      const key = this.key;
      for (let i = 0; i < 4; i++) key[i] = head[p + i]!;
    }
    const opcode = head[0]! & 0x0f;
    this.fin = (head[0]! & 0x80) !== 0;
    this.control = (opcode & 0x08) !== 0;
    if (length > MAX_MESSAGE) {
      this.fail(`max payload size exceeded: a frame of ${length} bytes`, CLOSE_TOO_BIG);
      return at;
    }
    if (this.strict) {
      if (!this.strictCheck(opcode, length)) return at;
      if (this.control) {
        // kept whole for ws: at most 14 + 125 bytes
        this.controlFrame = Buffer.allocUnsafe(this.headNeed + length);
        this.controlHave = head.copy(this.controlFrame, 0, 0, this.headNeed);
      }
    }
    if (opcode === 0x08) this.onCloseFrame?.(at - this.headNeed);
    if (!this.control) {
      if (opcode === 1 || opcode === 2) {
        this.channel = -1;
        this.text = opcode === 1 && this.strict === undefined;
        this.textParts = [];
        this.textSize = 0;
      } else if (opcode !== 0) {
        this.fail(`invalid opcode ${opcode}`);
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
    let mask = this.masked ? this.key! : undefined;
    if (mask && this.strict) {
      this.unmaskInPlace(piece, offset);
      mask = undefined;
    }
    if (this.channel < 0) {
      // the message's first byte names its channel
      const first = mask ? piece[0]! ^ mask[offset & 3]! : piece[0]!;
      this.channel = this.text ? first - 0x30 : first;
      piece = piece.subarray(1);
      offset++;
      if (piece.length === 0) return;
    }
    if (this.text) {
      if (this.textSize + piece.length > MAX_TEXT_MESSAGE) return; // too big to decode: left out
      this.textParts.push(mask ? unmaskedCopy(piece, mask, offset) : piece);
      this.textSize += piece.length;
      return;
    }
    this.emit(piece, mask, offset & 3);
  }

  /** Unmask `data`, which starts `offset` bytes into the frame's payload, where it lies. */
  private unmaskInPlace(data: Buffer, offset: number): void {
    const key = this.key!;
    const k = offset & 3;
    if (data.length < 32) {
      // below this a call into bufferutil costs more than the loop (ws draws the line there too)
      for (let i = 0; i < data.length; i++) data[i] = data[i]! ^ key[(k + i) & 3]!;
      return;
    }
    bufferutil.unmask(data, turnedKey(key, k));
  }

  private emit(data: Buffer, mask: Buffer | undefined, maskOffset: number): void {
    const p = this.piece;
    p.channel = this.channel;
    p.data = data;
    p.mask = mask;
    p.maskOffset = maskOffset;
    this.onPiece(p);
  }

  /** Whether this frame's header passes a strict reader's checks; if not, the reader fails naming why. */
  private strictCheck(opcode: number, length: number): boolean {
    const strict = this.strict!;
    if ((this.head![0]! & 0x70) !== 0)
      return this.broken('a frame with a reserved bit set (no extension was negotiated)');
    if (this.masked !== strict.masked)
      return this.broken(
        strict.masked ? 'an unmasked frame from the client' : 'a masked frame from the server',
      );
    if (this.control) {
      if (opcode > 0x0a) return this.broken(`invalid opcode ${opcode}`);
      if (!this.fin) return this.broken('a fragmented control frame');
      if (length > 125) return this.broken(`a control frame of ${length} bytes`);
      return true;
    }
    if (opcode === 0 && !this.inMessage) return this.broken('a continuation frame outside a message');
    if (opcode !== 0 && this.inMessage) return this.broken('a new message inside a fragmented one');
    if (opcode === 1 && !strict.textAsBinary)
      return this.broken('unexpected text message on a binary channel protocol', CLOSE_UNSUPPORTED_DATA);
    this.messageSize = opcode === 0 ? this.messageSize + length : length;
    if (this.messageSize > MAX_MESSAGE)
      return this.broken(`max payload size exceeded: a message of over ${MAX_MESSAGE} bytes`, CLOSE_TOO_BIG);
    this.inMessage = !this.fin;
    return true;
  }

  /** Fail naming `why`; false, for a check to return. */
  private broken(why: string, closeCode = CLOSE_PROTOCOL_ERROR): false {
    this.fail(why, closeCode);
    return false;
  }

  private frameDone(): void {
    this.inPayload = false;
    const control = this.controlFrame;
    if (control) {
      this.controlFrame = undefined;
      // a close frame ends what the peer may send (RFC 6455 §5.5.1)
      if ((control[0]! & 0x0f) === 0x08) this.stop();
      this.strict!.onControl(control);
      return;
    }
    if (this.control || !this.fin) return;
    if (this.text && this.textParts.length > 0) {
      const data = Buffer.from(Buffer.concat(this.textParts).toString('latin1'), 'base64');
      this.textParts = [];
      if (data.length > 0) this.emit(data, undefined, 0);
    }
    const channel = this.channel;
    this.channel = -1;
    if (channel >= 0) this.strict?.onMessageEnd?.(channel);
  }

  private fail(why: string, closeCode = CLOSE_PROTOCOL_ERROR): void {
    this.stop();
    this.onError(why, closeCode);
  }
}

/** The bytes as sent: an unmasked copy when `mask` is given; else `data` itself. */
export function unmasked(data: Buffer, mask: Buffer | undefined, maskOffset: number): Buffer {
  return mask ? unmaskedCopy(data, mask, maskOffset) : data;
}

function unmaskedCopy(data: Buffer, key: Buffer, offset: number): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  bufferutil.mask(data, turnedKey(key, offset), out, 0, data.length);
  return out;
}

/** `key` turned to start at payload offset `offset` (scratch: use it before anything else turns one). */
function turnedKey(key: Buffer, offset: number): Buffer {
  const k = offset & 3;
  if (k === 0) return key;
  for (let i = 0; i < 4; i++) TURNED[i] = key[(k + i) & 3]!;
  return TURNED;
}
