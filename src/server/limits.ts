/**
 * Limits on what one client can hold: sessions at once (refused with 503 before any upgrade),
 * time for handshakes, header sizes, and an optional idle timeout that ends sessions which carried
 * no data either way for that long (off by default: people keep quiet shells open for hours).
 */
import type { ActiveSessions, SessionRecord } from '../bridge/session-record.js';
import type { Logger } from '../observe/logger.js';

export interface Limits {
  /** Streaming sessions at once, handshakes in progress included; 0: no limit. */
  maxSessions: number;
  /** Time for a client to send its request head (and its TLS handshake), and for the upstream to answer an upgrade. */
  handshakeTimeoutMs: number;
  /** Largest request head on the listener, and largest SPDY header block (inflated) or control frame. */
  maxHeaderBytes: number;
  /** End sessions without data in either direction for this long; 0: never. */
  idleTimeoutMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxSessions: 1000,
  handshakeTimeoutMs: 30_000,
  maxHeaderBytes: 64 * 1024,
  idleTimeoutMs: 0,
};

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration flag in Go's notation (`500ms`, `30s`, `5m`, `1h30m`); a bare number is seconds.
 * Returns milliseconds.
 */
export function parseDuration(flag: string, value: string): number {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const parts = [...v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (v === '' || parts.map((p) => p[0]).join('') !== v) {
    throw new Error(`${flag}: '${value}' is not a duration (like 500ms, 30s, 5m, 1h30m)`);
  }
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * UNITS[p[2]!]!, 0));
}

/** A duration flag that must be more than 0. */
export function parsePositiveDuration(flag: string, value: string): number {
  const ms = parseDuration(flag, value);
  if (ms <= 0) throw new Error(`${flag} must be more than 0 (got '${value}')`);
  return ms;
}

/** A non-negative integer flag. */
export function parseCount(flag: string, value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new Error(`${flag}: '${value}' is not a whole number`);
  return Number(value);
}

/**
 * Admission of streaming sessions: the ones running (registered in ActiveSessions) plus the
 * handshakes in progress, so that a burst of slow handshakes cannot overshoot the limit.
 */
export class SessionGate {
  private pending = 0;

  constructor(
    private readonly active: ActiveSessions,
    private readonly max: number,
  ) {}

  /** Take a place for one upgrade; the returned function gives it back once the handshake is over. */
  tryEnter(): (() => void) | undefined {
    if (this.max > 0 && this.active.size + this.pending >= this.max) return undefined;
    this.pending++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.pending--;
    };
  }

  get limit(): number {
    return this.max;
  }

  /** Places taken now: sessions running plus handshakes in progress. */
  get taken(): number {
    return this.active.size + this.pending;
  }
}

/**
 * End sessions that carried no data either way for `idleMs`, with a reason the client is told.
 * Data is what each session counts as payload: the channels' bytes of a relay that reads its
 * session's frames (payloadBytes: exec and attach, relayed), else bytesIn/bytesOut — for other
 * relays every byte, so keepalives sent through them count there. Returns a stop function.
 */
export function watchIdleSessions(active: ActiveSessions, idleMs: number, log: Logger): () => void {
  if (idleMs <= 0) return () => {};
  const seen = new WeakMap<SessionRecord, { bytes: number; since: number }>();
  const sweep = () => {
    const now = performance.now();
    for (const record of [...active]) {
      const bytes = record.payloadBytes ?? record.bytesIn + record.bytesOut;
      const last = seen.get(record);
      if (last === undefined || last.bytes !== bytes) {
        seen.set(record, { bytes, since: now });
      } else if (now - last.since >= idleMs) {
        const reason = `kubeshim ended the session: no data in either direction for ${formatDuration(idleMs)} (--idle-timeout)`;
        log.info(
          { subresource: record.info.subresource, pod: record.info.pod, idleMs },
          'idle session ended',
        );
        record.abort(reason);
      }
    }
  };
  const timer = setInterval(sweep, Math.max(25, Math.min(1000, Math.floor(idleMs / 4))));
  timer.unref();
  return () => clearInterval(timer);
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}
