/**
 * What the emulator tells about its streaming sessions: one record per session (which protocol,
 * which part of the cluster served it, how it ended) logged as one `session` line and emitted as
 * an event; and one record per refused upgrade (the first half of every protocol fallback).
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Subresource } from '../k8s/stream-request.js';
import type { Logger } from '../observe/logger.js';

/** Which component of a real cluster would have served the session (docs/protocols.md §5). */
export type ServedBy = 'cri' | 'translator' | 'tunnel';

/** What is known of a session when its upgrade is accepted. */
export interface SessionStart {
  subresource: Subresource;
  /** The negotiated protocol: `v4.channel.k8s.io`, `v5.channel.k8s.io`, `portforward.k8s.io`, `SPDY/3.1+portforward.k8s.io`, … (`''`: a WebSocket without subprotocol). */
  protocol: string;
  transport: 'spdy' | 'websocket';
  servedBy: ServedBy;
  namespace: string;
  pod: string;
  container?: string;
  command?: string[];
  tty?: boolean;
  userAgent?: string;
}

/** A session that has ended: its `session` log line and event. */
export interface FinishedSession extends SessionStart {
  id: number;
  startedAt: string;
  durationMs: number;
  /** Bytes on the wire, upgrade handshake included. */
  bytesIn: number;
  bytesOut: number;
  /** exec: the process's exit code. */
  exitCode?: number;
  /** exec/attach: the Status written on the error stream or channel (`Success`, `Failure`); absent when none was. */
  status?: string;
  /** portforward: forwarded connections. */
  connections?: number;
  closeReason: string;
}

export interface RefusalRecord {
  subresource: Subresource;
  transport: 'spdy' | 'websocket';
  /** Protocols the client offered. */
  offered: string[];
  code: number;
  reason: string;
  userAgent?: string;
}

export interface SessionEnd {
  exitCode?: number;
  status?: string;
  connections?: number;
  closeReason: string;
}

export class ActiveSession {
  private readonly controller = new AbortController();
  private readonly started = Date.now();
  private ended = false;

  constructor(
    readonly id: number,
    readonly info: SessionStart,
    private readonly socket: Duplex,
    private readonly tracker: SessionTracker,
  ) {}

  /** Aborted when the emulator closes, or when the transport sees the client go. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  abort(): void {
    this.controller.abort();
  }

  end(result: SessionEnd): void {
    if (this.ended) return;
    this.ended = true;
    const wire = this.socket as Partial<{ bytesRead: number; bytesWritten: number }>;
    this.tracker.finish(this, {
      ...this.info,
      id: this.id,
      startedAt: new Date(this.started).toISOString(),
      durationMs: Date.now() - this.started,
      bytesIn: wire.bytesRead ?? 0,
      bytesOut: wire.bytesWritten ?? 0,
      ...result,
    });
  }
}

interface TrackerEvents {
  session: [record: FinishedSession];
  refused: [record: RefusalRecord];
}

/** Records kept for inspection; older ones are dropped. */
const KEEP = 1000;

export class SessionTracker extends EventEmitter<TrackerEvents> {
  readonly records: FinishedSession[] = [];
  readonly refusals: RefusalRecord[] = [];
  private readonly active = new Set<ActiveSession>();
  private nextId = 1;

  constructor(private readonly log: Logger) {
    super();
  }

  begin(info: SessionStart, socket: Duplex): ActiveSession {
    const session = new ActiveSession(this.nextId++, info, socket, this);
    this.active.add(session);
    this.log.debug({ id: session.id, ...info }, 'session started');
    return session;
  }

  refused(record: RefusalRecord): void {
    keep(this.refusals, record);
    this.log.info(record, 'upgrade refused');
    this.emit('refused', record);
  }

  /** @internal */
  finish(session: ActiveSession, record: FinishedSession): void {
    this.active.delete(session);
    keep(this.records, record);
    this.log.info(record, 'session');
    this.emit('session', record);
  }

  /** Abort every running session (their processes are killed, their sockets closed). */
  abortAll(): void {
    for (const s of this.active) s.abort();
  }

  get activeCount(): number {
    return this.active.size;
  }
}

function keep<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > KEEP) list.shift();
}
