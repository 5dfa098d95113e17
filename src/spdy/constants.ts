/** SPDY/3 as Kubernetes speaks it (moby/spdystream framing, docs/protocols.md §6.1). */

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes. */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  INVALID_CREDENTIALS: 10,
  FRAME_TOO_LARGE: 11,
} as const;

/** GOAWAY status codes. */
export const GoAwayStatus = {
  OK: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
} as const;

/** Largest length a frame header can state (24 bits). */
export const MAX_FRAME_LENGTH = 0xffffff;
export const FRAME_HEADER_SIZE = 8;

/** A protocol violation by the peer: the session answers with GOAWAY(status) and closes. */
export class SpdyProtocolError extends Error {
  readonly goAwayStatus: number;
  constructor(message: string, goAwayStatus: number = GoAwayStatus.PROTOCOL_ERROR) {
    super(message);
    this.name = 'SpdyProtocolError';
    this.goAwayStatus = goAwayStatus;
  }
}
