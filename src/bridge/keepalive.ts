/**
 * Keepalive toward a WebSocket peer: a ping every interval (kubectl pings every 5 s and idle load
 * balancers cut quiet sessions, docs/protocols.md §7), and a dead-peer verdict when no pong came back for
 * too long (a half-open connection). Pings from the peer are answered by ws itself (autoPong).
 */
import type { WebSocket } from 'ws';

export interface KeepaliveOptions {
  /** Ping period; 0 disables keepalive. */
  intervalMs: number;
  /** Declare the peer dead after this long without a pong; 0 never does. */
  timeoutMs: number;
}

export const DEFAULT_KEEPALIVE: KeepaliveOptions = { intervalMs: 5000, timeoutMs: 30_000 };

/** Start pinging; returns a function that stops it. `onDead` runs at most once. */
export function keepWebSocketAlive(
  ws: WebSocket,
  opts: KeepaliveOptions,
  onDead: (why: string) => void,
): () => void {
  if (opts.intervalMs <= 0) return () => {};
  let lastPong = performance.now();
  const onPong = () => {
    lastPong = performance.now();
  };
  ws.on('pong', onPong);
  const timer = setInterval(() => {
    if (ws.readyState !== ws.OPEN) return;
    // Paused for backpressure, we read nothing, pongs included: no verdict then (a stalled upstream
    // is no dead client). The pings still go out, and writing to a peer that is gone fails.
    if (ws.isPaused) lastPong = performance.now();
    if (opts.timeoutMs > 0 && performance.now() - lastPong > opts.timeoutMs) {
      stop();
      onDead(`no pong from the WebSocket peer for ${opts.timeoutMs} ms`);
      return;
    }
    ws.ping();
  }, opts.intervalMs);
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    ws.off('pong', onPong);
  };
  ws.once('close', stop);
  return stop;
}
