/**
 * Pass-through: when client and upstream speak the same protocol, the upgraded connections are
 * joined byte for byte (the cheapest path, docs/design.md "auto"). Backpressure is TCP's: a slow reader
 * pauses the other socket. Half-closes pass through; an error on either side ends both.
 */
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { batchWrites, congested } from '../io/write-batch.js';
import { SessionAborted, type SessionRecord } from './session-record.js';

export interface RelayEnds {
  client: Duplex;
  upstream: Duplex;
  /** Bytes the client sent past its request head (the start of its stream). */
  clientHead?: Buffer;
  /** Bytes the upstream sent past its 101 head. */
  upstreamHead?: Buffer;
}

export interface RelayHooks {
  /** Sees every chunk from the client before it is forwarded. */
  onClientData?(chunk: Buffer): void;
  /**
   * Sees every chunk from the upstream before it is forwarded, and may return what to forward in its
   * place (the chunk with a frame of the hook's own put in).
   */
  onUpstreamData?(chunk: Buffer): Buffer[] | undefined;
  /** Runs once when the upstream side ended (cleanly or not) before the client side is ended. */
  onUpstreamEnd?(error: Error | undefined): void;
}

/** Join the two sockets until both are done; resolves with the reason the relay ended. */
export function relay(ends: RelayEnds, record: SessionRecord, hooks: RelayHooks = {}): Promise<string> {
  const { client, upstream } = ends;
  // ended early: drop the upstream; the client learns it the way its protocol can (a status guard
  // writes a Failure status for SPDY exec, WebSocket clients see the connection end abnormally)
  record.onAbort((reason) => upstream.destroy(new SessionAborted(reason)));
  return new Promise((resolve) => {
    let reason: string | undefined;
    let closed = 0;
    // The first reason is the reason. A connection failure makes the outcome an error, except a
    // client that reset its connection: it left before the end (kubectl cp from a pod exits once its
    // tar reader is done, with the rest unread), which the translators record as a failure too.
    const settle = (why: string, outcome?: 'failure' | 'error') => {
      if (reason !== undefined) return;
      reason = why;
      if (outcome) record.outcome = outcome;
    };
    const onClosed = () => {
      if (++closed === 2) resolve(reason ?? 'closed');
    };
    let upstreamEnded = false;
    const upstreamDone = (err: Error | undefined) => {
      if (upstreamEnded) return;
      upstreamEnded = true;
      hooks.onUpstreamEnd?.(err);
    };
    const countIn = (n: number) => {
      record.bytesIn += n;
    };
    const countOut = (n: number) => {
      record.bytesOut += n;
    };
    pump(client, upstream, countIn, hooks.onClientData);
    pump(upstream, client, countOut, hooks.onUpstreamData);
    const onClientEnd = () => {
      settle('client closed the connection');
      upstream.end();
    };
    const onUpstreamEnd = () => {
      settle('upstream closed the connection');
      upstreamDone(undefined);
      client.end();
    };
    client.once('end', onClientEnd);
    upstream.once('end', onUpstreamEnd);
    client.once('error', (err: Error) => {
      settle(`client connection failed: ${err.message}`, clientLeft(err) ? 'failure' : 'error');
      upstream.destroy();
    });
    upstream.once('error', (err: Error) => {
      settle(
        err instanceof SessionAborted ? err.message : `upstream connection failed: ${err.message}`,
        'error',
      );
      upstreamDone(err);
      client.end();
    });
    client.once('close', () => {
      upstream.destroy();
      onClosed();
    });
    upstream.once('close', () => {
      upstreamDone(new Error('upstream connection closed'));
      if (!client.writableEnded) client.end();
      onClosed();
    });
    if (ends.upstreamHead?.length) forward(ends.upstreamHead, client, countOut, hooks.onUpstreamData);
    if (ends.clientHead?.length) forward(ends.clientHead, upstream, countIn, hooks.onClientData);
    // a side that sent everything and its FIN along with the upgrade ended before anyone listened
    if (client.readableEnded) onClientEnd();
    if (upstream.readableEnded) onUpstreamEnd();
  });
}

/** A reset or broken pipe from the client is its leaving, not a fault of the shim or the upstream. */
function clientLeft(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/** Sees a chunk before it is forwarded; if it returns an array, that is forwarded instead. */
type Observer = (chunk: Buffer) => unknown;

function pump(from: Duplex, to: Duplex, count: (n: number) => void, observe?: Observer): void {
  from.on('data', (chunk: Buffer) => {
    if (!forward(chunk, to, count, observe)) from.pause();
  });
  to.on('drain', () => from.resume());
  to.once('close', () => from.resume());
}

/** Hand one chunk on, as the observer rewrote it if it did; false when `to` asks for a pause. */
function forward(chunk: Buffer, to: Duplex, count: (n: number) => void, observe?: Observer): boolean {
  const pieces = observe?.(chunk);
  count(chunk.length);
  // A side that has ended takes nothing more: drop, and keep reading to the sender's EOF (pausing
  // here would leave the sender's FIN unread and its socket open for good).
  if (!to.writable) return true;
  // A tunnel hands over one chunk per WebSocket message: those of one read leave in one writev,
  // under write-batch.ts's congestion rule. (A tunnel as `to` batches its own socket: corking the
  // stream itself would only delay it.)
  const socket = to instanceof Socket;
  if (socket) batchWrites(to);
  let ok = true;
  if (!Array.isArray(pieces)) ok = to.write(chunk);
  else for (const piece of pieces) ok = to.write(piece);
  return socket ? !congested(to) : ok;
}
