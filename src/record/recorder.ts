/**
 * Session recording and the audit log, as `serve --record-dir`, `--record-stdin`,
 * `--record-required` and `--audit-log` ask. The router (server/router.ts) opens a SessionTrail for each
 * streaming request before anything is upgraded (so that a recording that cannot be written can
 * still refuse the session); the trail is the session's SessionTap, and writes its audit line when
 * the session ends. Plain requests and refusals get their audit lines here too.
 *
 * When a recording cannot be written (its file cannot be created, a write fails, the file is
 * deleted, the disk cannot keep up): with `required`, new sessions are refused with a Status saying
 * why and open ones are ended with a Failure status saying that recording stopped; without it,
 * sessions go on, and a warning and a metric say that recording stopped.
 */
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Counter, type Registry } from 'prom-client';
import type { SessionRecord, SessionTap } from '../bridge/session-record.js';
import type { StreamRequest } from '../k8s/stream-request.js';
import type { Logger } from '../observe/logger.js';
import { type AuditEntry, type AuditLog, openAuditLog } from './audit-log.js';
import { CastWriter, type Recording } from './cast-writer.js';
import { QueueBudget } from './file-sink.js';
import { type Identity, identify, type ListenerAuth } from './identity.js';

export interface RecorderOptions {
  /** Where exec and attach sessions become asciicast files. */
  recordDir?: string;
  recordStdin?: boolean;
  recordRequired?: boolean;
  /** Per-session cap on recorded payload bytes. */
  recordMaxBytes?: number;
  /** Audit log file, or `-` for the log's stream. */
  auditLog?: string;
  auth?: ListenerAuth;
  log: Logger;
  /** Where the recording metrics go (the shim's registry). */
  registry?: Registry;
  /** Bytes queued for the disk at most, per session and in all. */
  maxQueuedPerSession?: number;
  maxQueued?: number;
  /** At start, carry this much sample output through a throwaway recording (see `create`). */
  warmUpBytes?: number;
}

export const DEFAULT_RECORD_MAX_BYTES = 256 * 1024 * 1024;
/**
 * A session moves up to ~700 MiB/s: 64 MiB is about 100 ms of its output, the time a busy 2-core
 * machine can leave the recording thread waiting for a core (32 MiB failed full-size runs of
 * bench record-ws-1). The sum stays bounded by DEFAULT_QUEUED.
 */
const DEFAULT_QUEUED_PER_SESSION = 64 * 1024 * 1024;
const DEFAULT_QUEUED = 128 * 1024 * 1024;

export class Recorder {
  private readonly budget: QueueBudget;
  private readonly writer: CastWriter;
  private readonly failures: Counter<'what' | 'cause'>;
  private audit: AuditLog | undefined;

  private constructor(readonly opts: RecorderOptions) {
    this.budget = new QueueBudget(opts.maxQueued ?? DEFAULT_QUEUED);
    this.writer = new CastWriter({
      budget: this.budget,
      maxQueued: opts.maxQueued ?? DEFAULT_QUEUED,
      maxQueuedPerSession: opts.maxQueuedPerSession ?? DEFAULT_QUEUED_PER_SESSION,
    });
    this.failures = new Counter({
      name: 'kubeshim_recording_failures_total',
      help: 'Times a session recording (what="recording") or the audit log (what="audit") stopped being written, by cause: open (the file could not be created), write (a write failed or the file was removed), queue (the disk could not keep up), cap (the session passed --record-max-bytes).',
      labelNames: ['what', 'cause'],
      registers: opts.registry ? [opts.registry] : [],
    });
  }

  /**
   * A recorder for these options. The record directory is created (0700) if it is missing, and a
   * throwaway recording is carried through the recording thread, then deleted: so a directory that
   * takes no files is said at start (rejects with why), and the first session neither waits for
   * the thread to start nor has its output escaped by code not yet compiled (`warmUpBytes`).
   */
  static async create(opts: RecorderOptions): Promise<Recorder> {
    const r = new Recorder(opts);
    if (opts.recordDir !== undefined) {
      await mkdir(opts.recordDir, { recursive: true, mode: 0o700 });
      await r.warmUp(opts.recordDir, opts.warmUpBytes ?? 0).catch(async (err: Error) => {
        await r.writer.stop();
        throw new Error(`--record-dir ${opts.recordDir}: ${err.message}`);
      });
    }
    if (opts.auditLog !== undefined) {
      r.audit = await openAuditLog(opts.auditLog, opts.log, r.budget, (why) => {
        r.failed('audit', why);
        opts.log.warn({ file: opts.auditLog, reason: why }, 'audit log stopped');
      });
    }
    return r;
  }

  private async warmUp(dir: string, bytes: number): Promise<void> {
    const path = join(dir, `.kubeshim-warm-up-${randomUUID()}`);
    let failure: string | undefined;
    const recording = await this.writer
      .open(path, { timestamp: 0, title: 'warm-up', kubeshim: {} }, Number.MAX_SAFE_INTEGER, (why) => {
        failure ??= why;
      })
      .catch((err: Error) => {
        // the file's error code, or why the recording thread is gone
        throw new Error(
          /^E[A-Z]+$/.test(err.message)
            ? `cannot create a recording there (${err.message}): give a directory kubeshim can write`
            : err.message,
        );
      });
    for (let sent = 0, i = 0; sent < bytes && failure === undefined; sent += WARM_UP_CHUNK, i++) {
      recording.add('o', warmUpOutput(i));
      // the sessions' pace: each batch is escaped and written before the next is taken
      if (i % 16 === 15) await recording.flushed();
    }
    await recording.discard();
    if (failure !== undefined) throw new Error(`cannot write a recording there (${failure})`);
  }

  /** True when an audit log is written. */
  get audits(): boolean {
    return this.audit !== undefined;
  }

  get recordsStdin(): boolean {
    return this.opts.recordStdin === true;
  }

  identify(req: IncomingMessage): Identity {
    return identify(req, this.opts.auth ?? {});
  }

  /**
   * The trail of a streaming request (`sr` undefined: an upgrade other than exec, attach and
   * port-forward). Exec and attach get their recording file now; check `refusal` before upgrading.
   */
  async open(req: IncomingMessage, sr: StreamRequest | undefined): Promise<SessionTrail> {
    const trail = new SessionTrail(this, req, sr);
    const dir = this.opts.recordDir;
    if (dir === undefined || sr === undefined || sr.subresource === 'portforward') return trail;
    const path = join(dir, castFileName(trail.started, sr, trail.id));
    try {
      trail.recording = await this.writer.open(
        path,
        { timestamp: Math.floor(trail.started.getTime() / 1000), title: title(sr), kubeshim: trail.metadata },
        this.opts.recordMaxBytes ?? DEFAULT_RECORD_MAX_BYTES,
        (why) => trail.recordingFailed(why),
      );
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      const why = `cannot create ${path}: ${code}`;
      this.failed('recording', why, 'open');
      this.opts.log.warn({ sessionId: trail.id, reason: why }, 'recording stopped');
      // the client is told why, not where the recordings are kept
      if (this.opts.recordRequired)
        trail.refusal = `kubeshim cannot record this session and recording is required: cannot create its recording (${code})`;
    }
    return trail;
  }

  /** Audit a plain request once its response is done. Call before its credentials are taken out. */
  auditRequest(req: IncomingMessage, res: ServerResponse): void {
    if (this.audit === undefined) return;
    const identity = this.identify(req);
    const time = new Date().toISOString();
    const started = performance.now();
    let bytes = 0;
    // http-proxy pipes the upstream's answer into the response: count what it carries
    res.once('pipe', (src: NodeJS.ReadableStream) => src.on('data', (c: Buffer) => (bytes += c.length)));
    res.once('close', () =>
      this.write({
        time,
        identity,
        method: req.method,
        ...pathAndSubresource(req.url),
        status: res.statusCode,
        bytes,
        durationMs: Math.round(performance.now() - started),
      }),
    );
  }

  /** Audit a request the listener refused (access rules): not authenticated by the listener token. */
  auditDenied(req: IncomingMessage, status: number): void {
    this.write({
      time: new Date().toISOString(),
      identity: identify(req, {}),
      method: req.method,
      ...pathAndSubresource(req.url),
      status,
      bytes: 0,
      durationMs: 0,
    });
  }

  write(entry: AuditEntry): void {
    this.audit?.write(entry);
  }

  /** @internal */
  failed(what: 'recording' | 'audit', why: string, cause?: 'open'): void {
    this.failures.inc({
      what,
      cause:
        cause ??
        (why.includes('cannot keep up') ? 'queue' : why.includes('--record-max-bytes') ? 'cap' : 'write'),
    });
  }

  async close(): Promise<void> {
    await this.writer.stop();
    await this.audit?.close();
  }
}

/** One streaming request: its identity, its recording (exec and attach) and its audit line. */
export class SessionTrail implements SessionTap {
  readonly id = randomUUID();
  readonly started = new Date();
  private readonly startedAt = performance.now();
  readonly identity: Identity;
  readonly metadata: Record<string, unknown>;
  readonly wantsInput: boolean;
  recording: Recording | undefined;
  /** Set when the session must be refused: why. */
  refusal: string | undefined;
  private record: SessionRecord | undefined;
  private stopped: string | undefined;

  constructor(
    private readonly recorder: Recorder,
    private readonly req: IncomingMessage,
    private readonly sr: StreamRequest | undefined,
  ) {
    this.identity = recorder.identify(req);
    this.wantsInput = recorder.recordsStdin;
    const q = sr?.query;
    this.metadata = {
      sessionId: this.id,
      started: this.started.toISOString(),
      subresource: sr?.subresource ?? 'other',
      namespace: sr?.namespace,
      pod: sr?.pod,
      container: q?.get('container') ?? undefined,
      command: q?.getAll('command'),
      tty: q?.get('tty') === 'true' || q?.get('tty') === '1',
      stdin: q?.get('stdin') === 'true' || q?.get('stdin') === '1',
      identity: this.identity,
      stdinRecorded: this.wantsInput,
    };
  }

  output(chunk: Buffer, stderr: boolean): void {
    this.recording?.add(stderr ? 'e' : 'o', chunk);
  }

  input(chunk: Buffer): void {
    if (this.wantsInput) this.recording?.add('i', chunk);
  }

  resize(payload: Buffer): void {
    this.recording?.add('r', payload);
  }

  attach(record: SessionRecord): void {
    this.record = record;
    record.tap = this;
    this.metadata['client'] = record.info.client;
    this.metadata['upstream'] = record.info.upstream;
    this.metadata['mode'] = record.info.mode;
    record.note('sessionId', this.id);
    if (this.recording) record.note('recording', this.recording.path);
    if (this.stopped !== undefined && this.recorder.opts.recordRequired) record.abort(this.stopped);
  }

  /** @internal The recording file failed. */
  recordingFailed(why: string): void {
    this.stopped = `recording stopped: ${why}`;
    this.recorder.failed('recording', why);
    this.recorder.opts.log.warn(
      {
        sessionId: this.id,
        file: this.recording?.path,
        reason: why,
        required: this.recorder.opts.recordRequired === true,
      },
      'recording stopped',
    );
    this.record?.note('recordingStopped', why);
    if (this.recorder.opts.recordRequired) this.record?.abort(this.stopped);
  }

  /** The upgrade was refused (by the upstream, or by us): the audit line says so; nothing was recorded. */
  rejected(status: number, message: string): void {
    void this.recording?.discard();
    this.recorder.write({ ...this.auditBase(), status, message, bytesIn: 0, bytesOut: 0 });
  }

  finished(line: Record<string, unknown>): void {
    const exitCode = line['exitCode'];
    const summary =
      typeof exitCode === 'number'
        ? `exit code ${exitCode}`
        : `session ended (${String(line['outcome'])}): ${String(line['closeReason'])}`;
    void this.recording?.end(summary);
    const { subresource: _s, namespace: _n, pod: _p, ...rest } = line;
    this.recorder.write({ ...this.auditBase(), status: 101, ...rest });
  }

  private auditBase(): AuditEntry {
    return {
      time: this.started.toISOString(),
      sessionId: this.id,
      identity: this.identity,
      method: this.req.method,
      ...pathAndSubresource(this.req.url),
      namespace: this.sr?.namespace,
      pod: this.sr?.pod,
      durationMs: Math.round(performance.now() - this.startedAt),
      ...(this.recording ? { recording: this.recording.path } : {}),
    };
  }
}

/** What `serve` carries through its warm-up recording: every escaping path, a few hand-overs. */
export const WARM_UP_RECORDING_BYTES = 1024 * 1024;
const WARM_UP_CHUNK = 32 * 1024;
const WARM_UP_LINES = [
  'drwxr-xr-x  2 root root  4096 Dec  6 09:30 \x1b[01;34mbin\x1b[0m\r\n',
  'kubeshim warm-up: the quick brown fox jumps over the lazy dog — äöü ✓ 日本語\r\n',
  '{"level":"info","msg":"a \\"quoted\\" line\\twith tabs"}\r\n',
].join('');
/**
 * Sample terminal output, chunk `i`: colored and UTF-8 text; every fourth chunk cuts a character in
 * two and carries bytes that are not UTF-8, so the slow paths of the escaping are compiled too.
 */
function warmUpOutput(i: number): Buffer {
  const chunk = Buffer.alloc(WARM_UP_CHUNK, WARM_UP_LINES);
  if (i % 4 === 3) chunk.set([0xff, 0xfe, 0x00, 0xe6, 0x97], WARM_UP_CHUNK - 5);
  return chunk;
}

/** `2026-12-05T14-15-30.123Z_default_demo_<id>.cast`: sorts by time, names namespace and pod. */
function castFileName(started: Date, sr: StreamRequest, id: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9.-]/g, '_').slice(0, 63);
  return `${started.toISOString().replace(/:/g, '-')}_${safe(sr.namespace)}_${safe(sr.pod)}_${id}.cast`;
}

function title(sr: StreamRequest): string {
  const command = sr.query.getAll('command').join(' ');
  return `${sr.subresource} ${sr.namespace}/${sr.pod}${command ? `: ${command}` : ''}`;
}

const SUBRESOURCE = /^\/api(?:s\/[^/]+)?\/v[^/]+\/namespaces\/[^/]+\/[^/]+\/[^/]+\/([^/]+)\/?$/;

function pathAndSubresource(url: string | undefined): { path: string; subresource?: string } {
  const path = (url ?? '/').split('?')[0]!;
  const m = SUBRESOURCE.exec(path);
  return m ? { path, subresource: m[1] } : { path };
}
