/**
 * Kubernetes WebSocket channel framing (docs/protocols.md §3.3, §4.2): every message is one channel
 * chunk, `[channel] + payload` in a binary message, or `'0'+channel` + base64(payload) in a text
 * message for the base64 protocols. The v5 CLOSE message `[255, ch]` half-closes a channel.
 */

export const CH_STDIN = 0;
export const CH_STDOUT = 1;
export const CH_STDERR = 2;
export const CH_ERROR = 3;
export const CH_RESIZE = 4;
/** v5 only, client → server, always exactly two bytes (§3.3.2). */
export const CH_CLOSE = 255;
/** Channels a v5 server knows; a CLOSE naming anything else is a protocol error. */
export const V5_CHANNEL_COUNT = 5;

export class ChannelProtocolError extends Error {
  /** WebSocket close code this error causes (1002 protocol error, 1003 unsupported data). */
  readonly closeCode: number;
  constructor(message: string, closeCode = 1002) {
    super(message);
    this.name = 'ChannelProtocolError';
    this.closeCode = closeCode;
  }
}

export interface ChannelMessage {
  channel: number;
  /** A view into the received message: no copy for binary messages. */
  payload: Buffer;
}

const EMPTY = Buffer.alloc(0);

/**
 * Decode one received WebSocket message. Returns null for an empty message (servers ignore those,
 * §3.3). Binary messages are sliced, not copied. A text message on a binary protocol, or bad
 * base64, is a ChannelProtocolError (the caller decides whether that is fatal for its side).
 */
export function decodeMessage(data: Buffer, isBinary: boolean, base64: boolean): ChannelMessage | null {
  if (data.length === 0) return null;
  if (!base64) {
    if (!isBinary)
      throw new ChannelProtocolError('unexpected text message on a binary channel protocol', 1003);
    return { channel: data[0]!, payload: data.length === 1 ? EMPTY : data.subarray(1) };
  }
  // base64 protocols: the channel is an ASCII digit; kubelet-era servers accept binary frames too.
  const channel = data[0]! - 0x30;
  if (channel < 0 || channel > 9)
    throw new ChannelProtocolError(`invalid base64 channel character 0x${data[0]!.toString(16)}`);
  const text = data.toString('latin1', 1);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) {
    throw new ChannelProtocolError('invalid base64 payload');
  }
  return { channel, payload: Buffer.from(text, 'base64') };
}

/** Encode a binary channel message `[channel] + payload` (one copy; the WebSocket layer needs one buffer). */
export function encodeBinary(channel: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(payload.length + 1);
  out[0] = channel;
  payload.copy(out, 1);
  return out;
}

/** Encode a base64 text channel message. */
export function encodeBase64(channel: number, payload: Buffer): string {
  return String.fromCharCode(0x30 + channel) + payload.toString('base64');
}

/** Encode for either flavour: a Buffer to send binary, a string to send as text. */
export function encodeMessage(channel: number, payload: Buffer, base64: boolean): Buffer | string {
  return base64 ? encodeBase64(channel, payload) : encodeBinary(channel, payload);
}

/** The v5 CLOSE message for a channel. */
export function encodeClose(channel: number): Buffer {
  return Buffer.from([CH_CLOSE, channel]);
}

/**
 * Parse the payload (after the 255 byte) of a CLOSE message: exactly one byte naming a channel
 * below 5; anything else terminates the session (§3.3.2).
 */
export function parseClosePayload(payload: Buffer): number {
  if (payload.length !== 1)
    throw new ChannelProtocolError(`invalid CLOSE message: ${payload.length + 1} bytes, want 2`);
  const ch = payload[0]!;
  if (ch >= V5_CHANNEL_COUNT) throw new ChannelProtocolError(`invalid CLOSE message: channel ${ch}`);
  return ch;
}

/** Legacy port-forward: the first message on each channel of a pair is the port, 2 bytes little-endian (§4.2). */
export function encodePortPreamble(port: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16LE(port, 0);
  return b;
}

export function decodePortPreamble(payload: Buffer): number {
  if (payload.length < 2) throw new ChannelProtocolError('port-forward preamble shorter than 2 bytes');
  return payload.readUInt16LE(0);
}
