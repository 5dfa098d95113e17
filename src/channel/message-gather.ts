/**
 * The pieces of one small message, gathered whole (a resize or CLOSE message read as slices,
 * ws-endpoint.ts). A message in one piece is kept as it is, never copied; from a second piece on,
 * the pieces are copied into one buffer that grows to at most `limit` bytes. So memory stays
 * within the limit however many pieces a client cuts a message into.
 */
const EMPTY = Buffer.alloc(0);
const FIRST_GROWTH = 256;

export class MessageGather {
  private first: Buffer | undefined;
  private joined: Buffer | undefined;
  private size = 0;

  constructor(private readonly limit: number) {}

  /** Add a piece; false, with everything gathered dropped, when the message would pass the limit. */
  add(piece: Buffer): boolean {
    const size = this.size + piece.length;
    if (size > this.limit) {
      this.reset();
      return false;
    }
    if (this.size === 0) {
      this.first = piece;
    } else {
      if (this.joined === undefined || this.joined.length < size) {
        const grown = Buffer.allocUnsafe(Math.min(this.limit, Math.max(FIRST_GROWTH, 2 * size)));
        (this.joined ?? this.first!).copy(grown, 0, 0, this.size);
        this.joined = grown;
        this.first = undefined;
      }
      piece.copy(this.joined, this.size);
    }
    this.size = size;
    return true;
  }

  /** The message gathered so far (empty when it had no payload), and a fresh start. */
  take(): Buffer {
    const whole = this.joined ? this.joined.subarray(0, this.size) : (this.first ?? EMPTY);
    this.reset();
    return whole;
  }

  private reset(): void {
    this.first = undefined;
    this.joined = undefined;
    this.size = 0;
  }
}
