/**
 * Everything kubeshim uses of `ws` beyond its documented API, and the check that it still holds.
 * This is the only module that names a private field or an undocumented class of `ws`:
 * - `_socket`, the transport under a WebSocket: writers wait on its backpressure (ws-flow.ts) and
 *   our own frames are written on it beside `ws` (ws-frame.ts);
 * - `_isServer`, whether frames toward the peer go unmasked;
 * - `Receiver`, ws's frame parser, which reads a relayed tunnel's frames (portforward-observer.ts);
 * - `socketOnData`, ws's `data` listener on the transport, and `_receiver`, the parser it writes
 *   to: a translated session's reads are taken over (takeOverReads), and ws is given back only the
 *   control frames.
 * Writing frames beside `ws` is correct only while `ws` writes each frame of its own whole and at
 * once: no permessage-deflate, and its sender idle between our writes (queue empty, socket not left
 * corked). `checkWsAssumptions` proves all of this against the installed `ws` where the shim or the
 * emulator first creates its WebSocket server (ws-accept.ts); a `ws` upgrade that breaks it stops
 * the process at start-up with one line naming the version and the broken assumption.
 */

import type { IncomingMessage } from 'node:http';
import { Duplex, Writable } from 'node:stream';
import { Receiver, type WebSocket, type WebSocketServer } from 'ws';
import wsPackage from 'ws/package.json' with { type: 'json' };

declare module 'ws' {
  /** ws's frame parser: exported by ws, not described by @types/ws. Events `message`, `error`. */
  export class Receiver extends Writable {
    constructor(options: {
      isServer: boolean;
      binaryType: 'fragments';
      maxPayload: number;
      skipUTF8Validation: boolean;
    });
  }
}

/** The fields read here, as ws 8 has them. */
interface WsPrivate {
  _socket: Duplex;
  _isServer: boolean;
}

/** The transport under a ws WebSocket. */
export function wsSocket(ws: WebSocket): Duplex {
  return (ws as unknown as WsPrivate)._socket;
}

/** True for a WebSocket we accepted (its frames go out unmasked), false for one we dialed. */
export function wsIsServerSide(ws: WebSocket): boolean {
  return (ws as unknown as WsPrivate)._isServer;
}

/** What a frame reader hands on: a message's fragments (slices, not joined) and whether it is binary. */
export interface FrameReaderEvents {
  onMessage(fragments: Buffer[], isBinary: boolean): void;
  onError(err: Error): void;
}

/**
 * A reader of raw WebSocket frames (ws's own parser): write it the bytes of one direction of a
 * connection. `masked`: the frames come from a client (ws unmasks them in place).
 */
export function createFrameReader(masked: boolean, maxPayload: number, events: FrameReaderEvents): Writable {
  const receiver = new Receiver({
    isServer: masked,
    binaryType: 'fragments',
    maxPayload,
    skipUTF8Validation: true,
  });
  receiver.on('message', (fragments: Buffer[], isBinary: boolean) => events.onMessage(fragments, isBinary));
  receiver.on('error', (err: Error) => events.onError(err));
  return receiver;
}

/** ws's own reader of a transport: the one `data` listener named `socketOnData`. */
function wsDataListener(socket: Duplex): ((chunk: Buffer) => void) | undefined {
  const found = socket.listeners('data').filter((l) => l.name === 'socketOnData');
  return found.length === 1 ? (found[0] as (chunk: Buffer) => void) : undefined;
}

/**
 * Read a WebSocket's transport in ws's place: `onData` gets every chunk, and when the socket
 * closes, what it still buffers (which ws would read then). ws's parser sees only what is given
 * back with `giveFrame`. False, with nothing changed, where ws's reader is not found.
 */
export function takeOverReads(ws: WebSocket, onData: (chunk: Buffer) => void): boolean {
  const socket = wsSocket(ws);
  const wsReader = wsDataListener(socket);
  if (wsReader === undefined) return false;
  socket.removeListener('data', wsReader);
  socket.on('data', onData);
  // before ws's own close listener, which would hand what is buffered to its parser
  socket.prependListener('close', () => {
    socket.removeListener('data', onData);
    const rest = socket.readableLength > 0 ? (socket.read(socket.readableLength) as Buffer | null) : null;
    if (rest) onData(rest);
  });
  return true;
}

/** Hand ws's parser one whole frame (a control frame read in its place: ws answers it). */
export function giveFrame(ws: WebSocket, frame: Buffer): void {
  (ws as unknown as { _receiver: Writable })._receiver.write(frame);
}

/** An assumption about `ws` that the installed version breaks. */
export class WsAssumptionError extends Error {
  constructor(assumption: string) {
    super(
      `ws ${wsPackage.version} breaks an assumption kubeshim relies on: ${assumption} (src/channel/ws-internals.ts)`,
    );
    this.name = 'WsAssumptionError';
  }
}

/**
 * The private fields read here exist with the expected types on `ws`, an open WebSocket over
 * `socket`, and no extension (permessage-deflate) is in use on it. Throws WsAssumptionError.
 */
export function verifyWebSocketInternals(ws: object, socket: Duplex, server: boolean): void {
  const w = ws as Record<string, unknown>;
  if (w['_socket'] !== socket) throw new WsAssumptionError('a WebSocket keeps its transport as `_socket`');
  if (w['_isServer'] !== server)
    throw new WsAssumptionError(
      `a WebSocket ${server ? 'accepted' : 'dialed'} has \`_isServer\` set to ${server}`,
    );
  const extensions = w['_extensions'];
  if (typeof extensions !== 'object' || extensions === null || Object.keys(extensions).length > 0)
    throw new WsAssumptionError('no extension (permessage-deflate) is negotiated: `_extensions` is empty');
  if (w['extensions'] !== '') throw new WsAssumptionError('no extension is negotiated: `extensions` is ""');
  const sender = w['_sender'] as Record<string, unknown> | null | undefined;
  if (!Array.isArray(sender?.['_queue']))
    throw new WsAssumptionError('the sender keeps the frames it holds back in the array `_sender._queue`');
}

/**
 * After `ws` sent a message of its own, it wrote that frame whole at once and holds nothing back:
 * its queue is empty and the socket is not corked, so our next frame cannot land inside one of its.
 */
export function verifySenderIdle(ws: object, socket: Duplex, written: Buffer, expected: Buffer): void {
  if (!written.equals(expected))
    throw new WsAssumptionError(
      `ws.send writes an uncompressed frame whole and at once (wrote ${written.toString('hex') || 'nothing'}, want ${expected.toString('hex')})`,
    );
  const sender = (ws as Record<string, unknown>)['_sender'] as { _queue: unknown[] };
  if (sender._queue.length > 0) throw new WsAssumptionError('the sender holds nothing back after ws.send');
  if (socket.writableCorked > 0) throw new WsAssumptionError('ws.send leaves the socket uncorked');
}

/**
 * Prove the assumptions above against the installed `ws` and the server `wss` as configured: a
 * handshake offering permessage-deflate accepted over an in-memory socket, a message sent on it,
 * and ws's `Receiver` constructed. Throws WsAssumptionError.
 */
export function checkWsAssumptions(wss: WebSocketServer): void {
  const socket = new ProbeSocket();
  let accepted: WebSocket | undefined;
  // acceptWebSocket (ws-accept.ts) relies on this too: without a verifyClient, ws calls back at once
  wss.handleUpgrade(probeRequest(), socket, Buffer.alloc(0), (ws) => {
    accepted = ws;
  });
  if (accepted === undefined)
    throw new WsAssumptionError('handleUpgrade accepts a valid handshake and calls back synchronously');
  const ws = accepted;
  ws.on('error', () => {});
  try {
    verifyWebSocketInternals(ws, socket, true);
    if (!((ws as unknown as Record<string, unknown>)['_receiver'] instanceof Writable))
      throw new WsAssumptionError('a WebSocket keeps its frame parser, a Writable, as `_receiver`');
    if (wsDataListener(socket) === undefined)
      throw new WsAssumptionError('a WebSocket reads its transport with one `data` listener, `socketOnData`');
    socket.written.length = 0;
    ws.send(PROBE, { binary: true });
    verifySenderIdle(ws, socket, Buffer.concat(socket.written), PROBE_FRAME);
    const reader = createFrameReader(false, 1024, { onMessage: () => {}, onError: () => {} });
    if (!(reader instanceof Writable))
      throw new WsAssumptionError('ws exports its frame parser `Receiver`, a Writable');
  } finally {
    ws.terminate();
  }
}

const PROBE = Buffer.from('kubeshim');
/** FIN + binary, no RSV1 (uncompressed), unmasked, then the payload. */
const PROBE_FRAME = Buffer.concat([Buffer.from([0x82, PROBE.length]), PROBE]);

/** A handshake as kubectl's would be, but offering permessage-deflate (which must not be taken). */
function probeRequest(): IncomingMessage {
  return {
    method: 'GET',
    headers: {
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': 'a3ViZXNoaW0tcHJvYmUhIQ==',
      'sec-websocket-version': '13',
      'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits',
    },
  } as unknown as IncomingMessage;
}

/** An in-memory transport that keeps what is written to it. */
class ProbeSocket extends Duplex {
  readonly written: Buffer[] = [];

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.written.push(chunk);
    callback();
  }
}
