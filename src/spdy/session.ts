/**
 * A SPDY/3 session over one socket, in the client or the server role, speaking what Kubernetes
 * peers speak (docs/protocols.md §6): streams opened by SYN_STREAM and answered by SYN_REPLY, DATA with
 * FIN half-close, RST_STREAM, PING (echoed, and optionally sent periodically), GOAWAY. There is no
 * flow control: nothing ever waits for WINDOW_UPDATE (§6.4). Backpressure works as in the Go peers:
 * when any stream's reader falls behind, the whole socket pauses; writers wait for the socket's drain.
 */
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { batchWrites, congested } from '../io/write-batch.js';
import type { Logger } from '../observe/logger.js';
import { FLAG_FIN, GoAwayStatus, MAX_FRAME_LENGTH, RstStatus, type SpdyProtocolError } from './constants.js';
import { type FrameHandler, FrameParser } from './frame-parser.js';
import {
  dataFrameHeader,
  goAwayFrame,
  pingFrame,
  rstStreamFrame,
  synReplyFrame,
  synStreamFrame,
} from './frame-writer.js';
import { HeaderCompressor, HeaderDecompressor, type HeaderMap } from './header-block.js';

export type SpdyRole = 'client' | 'server';

/** After our GOAWAY: how long the peer gets to close its side once all we wrote has left. */
const CLOSE_LINGER_MS = 2000;
/** After our GOAWAY: how long a peer that reads nothing may keep our last bytes waiting. */
const FLUSH_LIMIT_MS = 30_000;

export interface SpdySessionOptions {
  role: SpdyRole;
  /** Bytes that arrived after the HTTP 101 and belong to the session (§2.1). */
  head?: Buffer;
  /** Send our own PING this often (0: never). kubectl pings every 5 s. */
  pingIntervalMs?: number;
  /** Close the session when one of our PINGs stays unanswered this long (0: never; half-open detection). */
  pingTimeoutMs?: number;
  /** How long openStream waits for SYN_REPLY (client-go: 30 s). */
  replyTimeoutMs?: number;
  /** Largest control frame accepted. */
  maxControlFrameSize?: number;
  /** Largest inflated header block accepted (zlib bombs stop here). */
  maxHeaderBytes?: number;
  maxHeaderPairs?: number;
  /** Most streams opened by the peer that may be open at once; more are refused. */
  maxStreams?: number;
  /** Readable/writable buffer size of each stream before backpressure applies. */
  streamHighWaterMark?: number;
  /** Where a bug met while reading the peer (a listener that threw) is logged, at error level. */
  log?: Logger;
}

const DEFAULTS = {
  pingIntervalMs: 0,
  pingTimeoutMs: 0,
  replyTimeoutMs: 30_000,
  maxControlFrameSize: 64 * 1024,
  maxHeaderBytes: 64 * 1024,
  maxHeaderPairs: 64,
  maxStreams: 1024,
  streamHighWaterMark: 64 * 1024,
};

/**
 * What ended the session: the peer (`protocol`), the connection (`transport`, `ping-timeout`), our
 * caller (`local`), or a bug of ours met while reading the peer (`internal`, a listener that threw).
 */
export class SpdySessionError extends Error {
  constructor(
    message: string,
    readonly kind: 'protocol' | 'transport' | 'ping-timeout' | 'local' | 'internal',
  ) {
    super(message);
    this.name = 'SpdySessionError';
  }
}

interface SpdySessionEvents {
  /** A stream opened by the peer. Call `stream.reply()` (or write) to accept, `stream.reset()` to refuse. */
  stream: [stream: SpdyStream];
  goaway: [lastGoodStreamId: number, status: number];
  /** One of our PINGs came back after rttMs. */
  pong: [rttMs: number];
  /** The peer pinged us (already echoed). */
  ping: [id: number];
  /** A frame this implementation skips (SETTINGS, WINDOW_UPDATE, HEADERS, unknown types). */
  ignoredFrame: [type: number, length: number];
  /** The socket is gone. `error` is set when the end was not clean (protocol error, reset, ping timeout). */
  close: [error: SpdySessionError | undefined];
}

export class SpdySession extends EventEmitter<SpdySessionEvents> implements FrameHandler {
  readonly role: SpdyRole;
  private readonly opts: typeof DEFAULTS;
  private readonly log: Logger | undefined;
  private readonly parser: FrameParser;
  private readonly compressor = new HeaderCompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private readonly blocked = new Set<SpdyStream>();
  private drainWaiters: (() => void)[] = [];
  private nextStreamId: number;
  private nextPingId: number;
  private readonly outstandingPings = new Map<number, number>();
  private lastPeerStreamId = 0;
  private goAwaySent = false;
  private goAwayReceived = false;
  private closeError: SpdySessionError | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private ended = false;
  /** Reading is paused until our answers to the peer (PING echoes, refusals) have drained. */
  private answersHeld = false;

  constructor(
    readonly socket: Duplex,
    options: SpdySessionOptions,
  ) {
    super();
    this.role = options.role;
    const { log, ...rest } = options;
    this.opts = { ...DEFAULTS, ...stripUndefined(rest) };
    this.log = log;
    this.nextStreamId = this.role === 'client' ? 1 : 2;
    this.nextPingId = this.role === 'client' ? 1 : 2;
    this.parser = new FrameParser(
      this,
      new HeaderDecompressor(this.opts.maxHeaderBytes, this.opts.maxHeaderPairs),
      { maxControlFrameSize: this.opts.maxControlFrameSize },
    );
    (socket as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
    // Bytes that came with the upgrade are parsed once the caller has attached its listeners (a
    // SYN_STREAM among them would otherwise be refused): on the next tick, or before the first read
    // from the socket if that comes sooner.
    let head = options.head?.length ? options.head : undefined;
    const takeHead = () => {
      if (head === undefined) return;
      const h = head;
      head = undefined;
      this.read(h);
    };
    if (head) process.nextTick(takeHead);
    socket.on('data', (chunk: Buffer) => {
      takeHead();
      this.read(chunk);
    });
    socket.on('drain', () => {
      this.flushDrainWaiters();
      this.releaseAnswers();
    });
    const onEnd = () => {
      // the peer is done: end our side too (http.Server sockets allow half-open and would linger)
      if (socket.writable) this.endSocket();
      this.teardown(undefined);
    };
    socket.on('end', onEnd);
    // a peer that sent everything and its FIN along with the upgrade: its end came before we
    // listened (after the head, which is parsed first)
    if ((socket as { readableEnded?: boolean }).readableEnded) process.nextTick(onEnd);
    socket.on('error', (err: Error) => this.teardown(new SpdySessionError(err.message, 'transport')));
    socket.on('close', () => this.teardown(undefined));
    if (this.opts.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => this.keepalive(), this.opts.pingIntervalMs);
      this.pingTimer.unref();
    }
  }

  /** True once the socket has ended or the session was closed. */
  get closed(): boolean {
    return this.ended;
  }

  /** Why the session ended, when it did not end cleanly (set before streams see their end). */
  get failure(): SpdySessionError | undefined {
    return this.closeError;
  }

  /** Streams currently known to the session. */
  get streamCount(): number {
    return this.streams.size;
  }

  /**
   * Open a stream (SYN_STREAM) and resolve once the peer's SYN_REPLY arrives. Rejects on RST_STREAM,
   * on the reply timeout (client-go's "Timeout occurred") and when the session ends first.
   */
  openStream(headers: HeaderMap): Promise<SpdyStream> {
    if (this.ended || this.goAwaySent || this.goAwayReceived) {
      return Promise.reject(new Error('spdy session is closing; no new streams'));
    }
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new SpdyStream(this, id, headers, this.opts.streamHighWaterMark);
    this.streams.set(id, stream);
    const opened = new Promise<SpdyStream>((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.pendingOpen = undefined;
        stream.reset(RstStatus.CANCEL);
        reject(new Error(`Timeout occurred waiting for SYN_REPLY on stream ${id}`));
      }, this.opts.replyTimeoutMs);
      timer.unref();
      stream.pendingOpen = {
        resolve: () => {
          clearTimeout(timer);
          resolve(stream);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
    this.writeFrame(synStreamFrame(id, 0, 0, this.compressor.compress(headers)));
    return opened;
  }

  /** Send a PING and resolve with the round-trip time in milliseconds. */
  ping(): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.ended) {
        reject(new Error('spdy session closed'));
        return;
      }
      const onPong = (rtt: number) => {
        this.off('close', onClose);
        resolve(rtt);
      };
      const onClose = () => {
        this.off('pong', onPong);
        reject(new Error('spdy session closed before the PING was answered'));
      };
      this.once('pong', onPong);
      this.once('close', onClose);
      this.sendPing();
    });
  }

  /**
   * End the session the way Kubernetes peers do (§3.2): RST_STREAM CANCEL on every open stream,
   * GOAWAY, then close the socket once written. Data already received stays readable.
   */
  close(goAwayStatus: number = GoAwayStatus.OK): void {
    if (this.ended) return;
    for (const stream of this.streams.values()) {
      if (!stream.localClosed || !stream.remoteClosed)
        this.writeFrame(rstStreamFrame(stream.id, RstStatus.CANCEL));
    }
    this.sendGoAway(goAwayStatus);
    this.endSocket();
    this.teardown(undefined);
  }

  /** Drop the session at once (no GOAWAY). */
  destroy(reason?: string): void {
    if (this.ended) return;
    this.socket.destroy();
    this.teardown(reason === undefined ? undefined : new SpdySessionError(reason, 'local'));
  }

  // ---- outbound, used by SpdyStream -------------------------------------------------------------

  /** @internal Write stream data as DATA frames; `done` runs when the socket can take more. */
  sendData(stream: SpdyStream, chunks: Buffer[], done: () => void): void {
    let ready = true;
    for (const chunk of chunks) ready = this.sendChunk(stream, chunk);
    if (ready) done();
    else this.drainWaiters.push(done);
  }

  /** @internal DATA frames for `chunk`; false when the socket is congested (wait with afterDrain). */
  sendChunk(stream: SpdyStream, chunk: Buffer): boolean {
    // the peer is gone or reset the stream: the bytes have nowhere to go
    if (this.ended || stream.localClosed) return true;
    if (!stream.replied && stream.peerInitiated) stream.reply();
    const socket = this.socket;
    batchWrites(socket);
    for (let off = 0; off < chunk.length; off += MAX_FRAME_LENGTH) {
      const len = Math.min(MAX_FRAME_LENGTH, chunk.length - off);
      socket.write(dataFrameHeader(stream.id, 0, len));
      socket.write(len === chunk.length ? chunk : chunk.subarray(off, off + len));
    }
    return !congested(socket);
  }

  /** @internal Run `next` once the socket can take more (at once when it can now, or is gone). */
  afterDrain(next: () => void): void {
    if (this.ended || !congested(this.socket)) next();
    else this.drainWaiters.push(next);
  }

  /** @internal Half-close our side of a stream: an empty DATA frame with FIN. */
  sendFin(stream: SpdyStream): void {
    if (this.ended || stream.localClosed) return;
    if (!stream.replied && stream.peerInitiated) stream.reply();
    stream.localClosed = true;
    this.writeFrame(dataFrameHeader(stream.id, FLAG_FIN, 0));
    this.forgetIfDone(stream);
  }

  /** @internal */
  sendReply(stream: SpdyStream): void {
    if (this.ended) return;
    this.writeFrame(synReplyFrame(stream.id, 0, this.compressor.compress({})));
  }

  /** @internal */
  sendReset(stream: SpdyStream, status: number): void {
    if (!this.ended) this.writeFrame(rstStreamFrame(stream.id, status));
  }

  /** @internal A stream's reader can take no more: stop reading the socket until it resumes. */
  block(stream: SpdyStream): void {
    if (this.blocked.has(stream) || this.ended) return;
    this.blocked.add(stream);
    this.socket.pause();
  }

  /** @internal The stream's reader wants more: resume the socket once no stream is full. */
  resumeFrom(stream: SpdyStream): void {
    if (this.blocked.delete(stream) && this.blocked.size === 0 && !this.answersHeld && !this.ended)
      this.socket.resume();
  }

  /** @internal */
  forget(stream: SpdyStream): void {
    this.streams.delete(stream.id);
    this.resumeFrom(stream);
  }

  private forgetIfDone(stream: SpdyStream): void {
    if (stream.localClosed && stream.remoteClosed) this.forget(stream);
  }

  /**
   * Half-close the socket after what was written, and drop it if the peer does not close in time.
   * The peer's time counts from when all our bytes were written, not from the close: a reader held
   * back by backpressure still gets the last output and the status (kubectl reads a missing status
   * as exit 0). A peer that does not read them within FLUSH_LIMIT_MS is dropped all the same.
   */
  private endSocket(): void {
    const socket = this.socket;
    const limit = setTimeout(() => socket.destroy(), FLUSH_LIMIT_MS).unref();
    socket.end(() => {
      clearTimeout(limit);
      setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
    });
  }

  private writeFrame(frame: Buffer): void {
    if (!this.socket.writable) return;
    batchWrites(this.socket);
    this.socket.write(frame);
  }

  /**
   * Write a frame the peer's input called for (a PING echo, a refused stream). A peer that floods
   * us while reading nothing would otherwise pile our answers up without bound: while they cannot
   * drain, stop reading the peer, as TCP does to a Go peer whose writes block.
   */
  private answer(frame: Buffer): void {
    // batched like every other write: a flood's echoes leave in one writev per chunk read, not one
    // system call each (a million PINGs took seconds to answer)
    this.writeFrame(frame);
    if (congested(this.socket) && !this.answersHeld) {
      this.answersHeld = true;
      this.socket.pause();
    }
  }

  private releaseAnswers(): void {
    if (!this.answersHeld) return;
    this.answersHeld = false;
    if (this.blocked.size === 0 && !this.ended) this.socket.resume();
  }

  private flushDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private sendGoAway(status: number): void {
    if (this.goAwaySent) return;
    this.goAwaySent = true;
    this.writeFrame(goAwayFrame(this.lastPeerStreamId, status));
  }

  private sendPing(): void {
    const id = this.nextPingId;
    this.nextPingId =
      this.nextPingId + 2 > 0x7fffffff ? (this.role === 'client' ? 1 : 2) : this.nextPingId + 2;
    this.outstandingPings.set(id, performance.now());
    if (this.outstandingPings.size > 16) {
      // a peer that never answers: keep only the most recent few
      const oldest = this.outstandingPings.keys().next().value as number;
      this.outstandingPings.delete(oldest);
    }
    this.writeFrame(pingFrame(id));
  }

  private keepalive(): void {
    if (this.ended) return;
    if (this.opts.pingTimeoutMs > 0) {
      const oldest = this.outstandingPings.values().next().value as number | undefined;
      if (oldest !== undefined && performance.now() - oldest > this.opts.pingTimeoutMs) {
        this.socket.destroy();
        this.teardown(
          new SpdySessionError(`peer did not answer PING for ${this.opts.pingTimeoutMs} ms`, 'ping-timeout'),
        );
        return;
      }
    }
    this.sendPing();
  }

  // ---- inbound: FrameHandler ---------------------------------------------------------------------

  /**
   * Parse what the peer sent. The parser reports the peer's errors (onError); what it throws came
   * from us, a listener of a stream or of the session: it must neither take the process down nor be
   * blamed on the peer, so the session ends as an internal error (GOAWAY INTERNAL_ERROR).
   */
  private read(chunk: Buffer): void {
    try {
      this.parser.write(chunk);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log?.error({ err }, 'bug: a SPDY session listener threw; ending the session');
      if (this.ended) return;
      this.sendGoAway(GoAwayStatus.INTERNAL_ERROR);
      this.endSocket();
      this.teardown(new SpdySessionError(`internal error: ${message}`, 'internal'));
    }
  }

  onData(streamId: number, payload: Buffer, fin: boolean): void {
    const stream = this.streams.get(streamId);
    if (stream === undefined || stream.remoteClosed) return; // unknown or finished stream: dropped, as spdystream does
    if (payload.length > 0) {
      stream.bytesReceived += payload.length;
      const direct = stream.direct;
      if (direct) direct.data(payload);
      else if (!stream.push(payload)) this.block(stream);
    }
    if (fin) {
      stream.endOfData();
      this.forgetIfDone(stream);
    }
  }

  onSynStream(
    streamId: number,
    _associatedId: number,
    _priority: number,
    flags: number,
    headers: HeaderMap,
  ): void {
    if (this.goAwaySent || this.goAwayReceived) return; // spdystream ignores new streams after GOAWAY
    if (streamId <= this.lastPeerStreamId) {
      this.answer(rstStreamFrame(streamId, RstStatus.PROTOCOL_ERROR));
      return;
    }
    this.lastPeerStreamId = streamId;
    if (this.streams.size >= this.opts.maxStreams || this.listenerCount('stream') === 0) {
      this.answer(rstStreamFrame(streamId, RstStatus.REFUSED_STREAM));
      return;
    }
    const stream = new SpdyStream(this, streamId, headers, this.opts.streamHighWaterMark);
    stream.peerInitiated = true;
    this.streams.set(streamId, stream);
    if (flags & FLAG_FIN) {
      stream.remoteClosed = true;
      stream.push(null);
    }
    this.emit('stream', stream);
  }

  onSynReply(streamId: number, flags: number, _headers: HeaderMap): void {
    const stream = this.streams.get(streamId);
    if (stream === undefined || stream.peerInitiated || stream.replied) return; // ignored, as spdystream does
    stream.replied = true;
    stream.pendingOpen?.resolve();
    stream.pendingOpen = undefined;
    if (flags & FLAG_FIN) this.onData(streamId, Buffer.alloc(0), true);
  }

  onRstStream(streamId: number, status: number): void {
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    stream.pendingOpen?.reject(new Error(`stream ${streamId} was reset by the peer (status ${status})`));
    stream.pendingOpen = undefined;
    stream.terminate(status);
  }

  onPing(id: number): void {
    const ours = (id & 1) === (this.role === 'client' ? 1 : 0);
    if (!ours) {
      this.answer(pingFrame(id));
      this.emit('ping', id);
      return;
    }
    const sentAt = this.outstandingPings.get(id);
    if (sentAt === undefined) return;
    // an answer proves the path is alive: older unanswered pings no longer count against it
    for (const pending of this.outstandingPings.keys()) {
      this.outstandingPings.delete(pending);
      if (pending === id) break;
    }
    this.emit('pong', performance.now() - sentAt);
  }

  onGoAway(lastGoodStreamId: number, status: number): void {
    this.goAwayReceived = true;
    this.emit('goaway', lastGoodStreamId, status);
  }

  onIgnoredFrame(type: number, length: number): void {
    this.emit('ignoredFrame', type, length);
  }

  onError(err: SpdyProtocolError): void {
    this.sendGoAway(err.goAwayStatus);
    this.endSocket();
    this.teardown(new SpdySessionError(err.message, 'protocol'));
  }

  /** Everything ends here exactly once: streams see end-of-data, waiters run, 'close' is emitted. */
  private teardown(error: SpdySessionError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.closeError = error;
    this.parser.stop();
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const stream of [...this.streams.values()]) {
      stream.pendingOpen?.reject(
        new Error(error ? `spdy session failed: ${error.message}` : 'spdy session closed'),
      );
      stream.pendingOpen = undefined;
      stream.terminate(undefined);
    }
    this.streams.clear();
    this.blocked.clear();
    this.flushDrainWaiters();
    // the 'close' event waits for the socket so that callers see a fully released session
    if (this.socket.destroyed || this.socket.closed) this.emit('close', this.closeError);
    else this.socket.once('close', () => this.emit('close', this.closeError));
  }
}

/**
 * One SPDY stream as a Node Duplex: readable side = the peer's DATA, writable side = our DATA;
 * `end()` sends FIN. A reset by the peer (or the session's end) ends the readable side after the
 * data already received, and silently drops later writes — a reset is how Kubernetes peers end
 * every session (§3.2), not an error.
 */
export class SpdyStream extends Duplex {
  /** Set when the peer opened the stream (we answer with SYN_REPLY). */
  peerInitiated = false;
  /** SYN_REPLY sent (peer-initiated) or received (ours). */
  replied = false;
  /** We sent FIN or RST: nothing more may be written. */
  localClosed = false;
  /** The peer sent FIN or RST, or the session ended. */
  remoteClosed = false;
  /** RST_STREAM status received from the peer, if any. */
  resetStatus: number | undefined;
  bytesReceived = 0;
  /** @internal The reader set with readDirect, until the data is over. */
  direct: { data: (chunk: Buffer) => void; end: () => void } | undefined;
  /** @internal */
  pendingOpen: { resolve: () => void; reject: (err: Error) => void } | undefined;

  constructor(
    private readonly session: SpdySession,
    readonly id: number,
    readonly headers: HeaderMap,
    highWaterMark: number,
  ) {
    super({
      readableHighWaterMark: highWaterMark,
      writableHighWaterMark: highWaterMark,
      allowHalfOpen: true,
    });
  }

  /** The `streamtype` header Kubernetes streams carry. */
  get streamType(): string | undefined {
    return this.headers['streamtype'];
  }

  /** Accept a peer-initiated stream (SYN_REPLY with an empty header block). Idempotent. */
  reply(): void {
    if (this.replied || !this.peerInitiated) return;
    this.replied = true;
    this.session.sendReply(this);
  }

  /** Send RST_STREAM (default CANCEL) and release the stream. */
  reset(status: number = RstStatus.CANCEL): void {
    if (!(this.localClosed && this.remoteClosed)) this.session.sendReset(this, status);
    this.terminate(undefined);
    this.destroy();
  }

  /** @internal The stream is over from the peer's side: end the readable, drop later writes. */
  terminate(resetStatus: number | undefined): void {
    if (resetStatus !== undefined) {
      this.resetStatus = resetStatus;
      this.emit('reset', resetStatus);
    }
    this.localClosed = true;
    if (!this.remoteClosed) this.endOfData();
    this.session.forget(this);
  }

  /** @internal The peer's data is over (FIN, RST, the session's end): the readable side ends. */
  endOfData(): void {
    this.remoteClosed = true;
    this.push(null);
    const direct = this.direct;
    if (direct === undefined) return;
    this.direct = undefined;
    this.resume(); // nothing is buffered: the readable side emits 'end' for its other listeners
    direct.end();
  }

  /**
   * Read the peer's data with callbacks in place of the readable side's 'data' events, without
   * the stream machinery per chunk (a byte path's source, remotecommand/spdy-stream-io.ts): what
   * the readable side holds is handed over first, then each payload as the session parses it.
   * `end` runs once after the last; 'end' is still emitted. Pause with `hold`, resume with `release`.
   */
  readDirect(data: (chunk: Buffer) => void, end: () => void): void {
    for (let held = this.read() as Buffer | null; held !== null; held = this.read() as Buffer | null)
      data(held);
    if (!this.remoteClosed) {
      this.direct = { data, end };
      return;
    }
    this.resume(); // over before it was read: the readable side has its end already
    end();
  }

  /** Read no more of the socket until `release` (the direct reader's sink is congested). */
  hold(): void {
    this.session.block(this);
  }

  release(): void {
    this.session.resumeFrom(this);
  }

  /** Write `chunk` without the writable side's machinery; false when the socket is congested. */
  writeDirect(chunk: Buffer): boolean {
    return this.session.sendChunk(this, chunk);
  }

  /** Run `next` once the socket can take more. */
  afterDrain(next: () => void): void {
    this.session.afterDrain(next);
  }

  override _read(): void {
    this.session.resumeFrom(this);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.session.sendData(this, [chunk], callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.session.sendData(
      this,
      chunks.map((c) => c.chunk),
      callback,
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.session.sendFin(this);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!(this.localClosed && this.remoteClosed)) {
      this.session.sendReset(this, RstStatus.CANCEL);
      this.localClosed = true;
      this.remoteClosed = true;
    }
    this.session.forget(this);
    callback(error);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
