/**
 * The account of one streaming session: protocols, bytes each way, duration, exit code and why it
 * ended. It writes the contract's `session` log line exactly once (docs/design.md, "Command-line
 * contract") and reports the same figures to the metrics.
 */
import type { Logger } from '../observe/logger.js';
import type { SessionOutcome } from '../observe/metrics.js';

export interface SessionInfo {
  subresource: string;
  /** Protocol the client spoke, e.g. `v5.channel.k8s.io` or `spdy/v4.channel.k8s.io`. */
  client: string;
  /** Protocol used toward the upstream. */
  upstream: string;
  /** `translate` or `relay`. */
  mode: 'translate' | 'relay';
  namespace: string;
  pod: string;
}

/**
 * What a session's recording and audit see of it (src/record): its streams' payloads as they pass —
 * buffers the bridges already have, to be used without copying and never changed — and its closing
 * line.
 */
export interface SessionTap {
  /** Stdin is recorded only on request (it can carry passwords): relays unmask a copy only then. */
  readonly wantsInput: boolean;
  output(chunk: Buffer, stderr: boolean): void;
  input(chunk: Buffer): void;
  /** A resize message, `{"Width":W,"Height":H}`. */
  resize(payload: Buffer): void;
  /** The session is carried by `record` (protocols known): the tap sets itself as its tap, and may end it early through it. */
  attach(record: SessionRecord): void;
  /** The closing line, as logged. */
  finished(line: Record<string, unknown>): void;
}

export interface SessionMetricsSink {
  sessionOpened(l: { subresource: string; client: string; upstream: string }): void;
  sessionClosed(
    l: { subresource: string; client: string; upstream: string },
    r: { durationMs: number; bytesIn: number; bytesOut: number; outcome: SessionOutcome },
  ): void;
}

/**
 * The sessions in flight, for limits and shutdown: each can be ended early with a reason, which its
 * bridge turns into a Failure status (or the closest its protocol has) for the client.
 */
export class ActiveSessions {
  private readonly records = new Set<SessionRecord>();
  private idleWaiters: (() => void)[] = [];

  get size(): number {
    return this.records.size;
  }

  /** The sessions in flight (limits look at their byte counts). */
  [Symbol.iterator](): IterableIterator<SessionRecord> {
    return this.records.values();
  }

  /** @internal SessionRecord registers itself. */
  add(record: SessionRecord): void {
    this.records.add(record);
  }

  /** @internal */
  delete(record: SessionRecord): void {
    this.records.delete(record);
    if (this.records.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  abortAll(reason: string): void {
    for (const r of [...this.records]) r.abort(reason);
  }

  /** Resolves true once no session is left, false when `timeoutMs` passed first. */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.records.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

/** What ends a relayed session that kubeshim aborted: its message is the reason the client is told. */
export class SessionAborted extends Error {}

export class SessionRecord {
  private readonly started = performance.now();
  /** Payload bytes from the client toward the upstream. */
  bytesIn = 0;
  /** Payload bytes from the upstream toward the client. */
  bytesOut = 0;
  /**
   * For a relay that reads its session's frames: the channels' payload bytes both ways, which its
   * bytesIn/bytesOut (every byte relayed) are not — keepalive pings are frames too. Undefined when
   * the relay does not read them (any more). What --idle-timeout watches when it is there.
   */
  payloadBytes: number | undefined;
  exitCode: number | undefined;
  outcome: SessionOutcome = 'success';
  private finished = false;
  private readonly extra: Record<string, unknown> = {};
  private aborter: ((reason: string) => void) | undefined;
  /** The recording and audit of this session, when there are any. */
  tap: SessionTap | undefined;

  constructor(
    readonly info: SessionInfo,
    private readonly log: Logger,
    private readonly metrics?: SessionMetricsSink,
    private readonly active?: ActiveSessions,
  ) {
    metrics?.sessionOpened(this.labels());
    active?.add(this);
  }

  /** The bridge's way to end this session early (shutdown, limits). */
  onAbort(fn: (reason: string) => void): void {
    this.aborter = fn;
  }

  /** End the session early; the client is told `reason` as well as its protocol allows. */
  abort(reason: string): void {
    if (!this.finished) this.aborter?.(reason);
  }

  /** Add a field to the closing log line (e.g. ports, connections). */
  note(key: string, value: unknown): void {
    this.extra[key] = value;
  }

  get done(): boolean {
    return this.finished;
  }

  /** Write the closing line once; later calls are ignored. */
  finish(closeReason: string, outcome?: SessionOutcome): void {
    if (this.finished) return;
    this.finished = true;
    this.active?.delete(this);
    if (outcome) this.outcome = outcome;
    const durationMs = Math.round(performance.now() - this.started);
    const line: Record<string, unknown> = {
      ...this.info,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      durationMs,
      closeReason,
      outcome: this.outcome,
      ...this.extra,
    };
    if (this.exitCode !== undefined) line['exitCode'] = this.exitCode;
    const level = this.outcome === 'error' ? 'warn' : 'info';
    this.log[level](line, 'session');
    this.tap?.finished(line);
    this.metrics?.sessionClosed(this.labels(), {
      durationMs,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      outcome: this.outcome,
    });
  }

  private labels() {
    return { subresource: this.info.subresource, client: this.info.client, upstream: this.info.upstream };
  }
}
