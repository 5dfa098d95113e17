/**
 * One session as an asciicast v2 file (what `asciinema play` and `asciinema cat` read): a JSON
 * header line, then one `[seconds, type, data]` line per event — `o` for stdout and stderr, `i` for
 * stdin (only when asked: it can carry passwords), `r` for a terminal resize — and, last, an `o`
 * line saying how the session ended, so that a replay shows the exit status.
 *
 * Events come with their time (milliseconds since the session started) in batches, and are
 * turned into JSON lines by `flush` and handed to a FileSink whose queue is bounded; this runs on
 * the recording thread (cast-thread.ts), off the sessions' path. The header waits for the first
 * event, so that a terminal's first resize gives it its size. Past `maxBytes` (payload, plus a
 * line's overhead per event: about the file's size) one last line says the recording was
 * truncated, and only the end line follows.
 */
import { unlink } from 'node:fs/promises';
import { FileSink, type FileSinkOptions } from './file-sink.js';
import { JsonText, maxJsonLength } from './json-text.js';

export type CastEventKind = 'o' | 'e' | 'i' | 'r';

export interface CastHeader {
  /** Unix seconds at the session's start. */
  timestamp: number;
  title: string;
  kubeshim: Record<string, unknown>;
}

/** Rough size of one event line beyond its payload. */
const LINE_OVERHEAD = 24;
const DEFAULT_SIZE = { width: 80, height: 24 };
/**
 * Event lines of every recording are written into one slab at a time (bigger for a bigger chunk),
 * and queued as slices of it: memory follows the bytes waiting for the disk, not the number of
 * sessions recorded. A slab none of whose slices is queued any more is kept, a few at most, to be
 * written over again: a fresh one costs a page fault for every page of it (the bulk of what writing
 * the lines cost, beside the escaping).
 */
const SLAB = 1024 * 1024;
const SPARE_SLABS = 4;
let slab: Buffer = Buffer.alloc(0);
let slabAt = 0;
const spareSlabs: Buffer[] = [];
/** Slices of each slab queued for the disk, by the slab's memory. */
const queuedSlices = new Map<ArrayBufferLike, number>();

/** Queue `lines`, a slice of the slab, counted until the file sink releases it. */
function queueLines(sink: FileSink, lines: Buffer): void {
  // counted first: a blocking sink may write, and release, before write() returns
  queuedSlices.set(lines.buffer, (queuedSlices.get(lines.buffer) ?? 0) + 1);
  if (!sink.write(lines)) releaseLines(lines);
}

/** A cast's file sink says when a slice of a slab is written or dropped. */
function releaseLines(lines: Buffer): void {
  const left = queuedSlices.get(lines.buffer);
  if (left === undefined) return; // not a slab's: a header or an end line
  if (left > 1) queuedSlices.set(lines.buffer, left - 1);
  else {
    queuedSlices.delete(lines.buffer);
    if (lines.buffer !== slab.buffer) keepSlab(lines.buffer);
  }
}

function keepSlab(memory: ArrayBufferLike): void {
  if (memory.byteLength === SLAB && spareSlabs.length < SPARE_SLABS) spareSlabs.push(Buffer.from(memory));
}

export class CastRecording {
  // events not yet rendered, as parallel arrays (no object per chunk)
  private readonly times: number[] = [];
  private readonly kinds: CastEventKind[] = [];
  private readonly data: Buffer[] = [];
  /** Time of the latest event (ms since the start): lines never go back in time. */
  private last = 0;
  private headerWritten = false;
  private size = DEFAULT_SIZE;
  private payload = 0;
  private truncated = false;
  private ended = false;
  private readonly texts = { o: new JsonText(), e: new JsonText(), i: new JsonText() };

  private constructor(
    private readonly sink: FileSink,
    /** Written with the first line: until then it may still be replaced. */
    public header: CastHeader,
    private readonly maxBytes: number,
    /** Told once the cap is reached: from then on the session is not recorded. */
    private readonly onTruncated: (why: string) => void,
  ) {}

  /** Create the cast file `path` (0600, new), written through a FileSink with `opts`. */
  static async open(
    path: string,
    opts: FileSinkOptions,
    header: CastHeader,
    maxBytes: number,
  ): Promise<CastRecording> {
    const sink = await FileSink.open(path, true, {
      ...opts,
      released: (lines) => {
        opts.released?.(lines);
        releaseLines(lines);
      },
    });
    return new CastRecording(sink, header, maxBytes, opts.onFailure);
  }

  get path(): string {
    return this.sink.path;
  }

  /**
   * Take an event at `ms` since the session started: `o` stdout, `e` stderr (both written as
   * output), `i` stdin, `r` a resize message. Nothing is written before `flush`.
   */
  add(kind: CastEventKind, chunk: Buffer, ms: number): void {
    if (this.ended || this.truncated || !this.sink.ok || chunk.length === 0) return;
    this.last = Math.max(this.last, ms);
    if (this.payload + chunk.length > this.maxBytes) {
      this.truncated = true;
      this.flush();
      this.writeHeader();
      this.sink.write(this.line('o', `\r\n[kubeshim: recording truncated at ${this.maxBytes} bytes]\r\n`));
      // a recording stopped like any other: with --record-required the session ends, as when the disk fails
      this.onTruncated(
        `the session passed --record-max-bytes (${this.maxBytes} bytes); the rest is not recorded`,
      );
      return;
    }
    this.payload += chunk.length + LINE_OVERHEAD;
    this.times.push(this.last);
    this.kinds.push(kind);
    this.data.push(chunk);
  }

  /** The last line (how the session ended, at `ms` since it started), then close the file. */
  end(summary: string, ms: number): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      this.flush();
      this.last = Math.max(this.last, ms);
      if (this.sink.ok) {
        this.writeHeader();
        this.sink.write(this.line('o', `\r\n[kubeshim: ${summary}]\r\n`));
      }
    }
    return this.sink.close();
  }

  /** Nothing happened worth keeping (the upgrade was refused): close and delete the file. */
  async discard(): Promise<void> {
    this.ended = true;
    await this.sink.close();
    await unlink(this.sink.path).catch(() => {});
  }

  /** Write the events taken so far as lines. */
  flush(): void {
    const n = this.times.length;
    if (n === 0) return;
    if (!this.headerWritten) {
      const first = this.kinds.indexOf('r');
      const firstOutput = this.kinds.findIndex((k) => k !== 'r');
      if (first >= 0 && (firstOutput < 0 || first < firstOutput))
        this.size = terminalSize(this.data[first]!) ?? this.size;
      this.writeHeader();
    }
    let start = slabAt;
    for (let i = 0; i < n; i++) {
      const kind = this.kinds[i]!;
      const data = this.data[i]!;
      const t = seconds(this.times[i]!);
      if (kind === 'r') {
        const size = terminalSize(data);
        if (size) start = this.put(start, `[${t}, "r", "${size.width}x${size.height}"]\n`, 48);
        continue;
      }
      start = this.room(start, maxJsonLength(data.length) + 48);
      const before = slabAt;
      slabAt += slab.write(`[${t}, "${kind === 'i' ? 'i' : 'o'}", "`, slabAt, 'latin1');
      const textAt = slabAt;
      slabAt = this.texts[kind].write(data, slab, slabAt);
      // a chunk that was only the start of a character: nothing to show yet
      if (slabAt === textAt) slabAt = before;
      else slabAt += slab.write('"]\n', slabAt, 'latin1');
    }
    this.times.length = 0;
    this.kinds.length = 0;
    this.data.length = 0;
    if (slabAt > start) queueLines(this.sink, slab.subarray(start, slabAt));
  }

  /** Room for `bytes` more in the slab; a full slab's lines (from `start`) are queued first. */
  private room(start: number, bytes: number): number {
    if (slabAt + bytes <= slab.length) return start;
    if (slabAt > start) queueLines(this.sink, slab.subarray(start, slabAt));
    const full = slab;
    // not from Node's shared pool (allocUnsafeSlow): the slab's memory is its own, to be kept
    slab = (bytes <= SLAB ? spareSlabs.pop() : undefined) ?? Buffer.allocUnsafeSlow(Math.max(SLAB, bytes));
    slabAt = 0;
    if (!queuedSlices.has(full.buffer)) keepSlab(full.buffer);
    return 0;
  }

  private put(start: number, line: string, most: number): number {
    const at = this.room(start, most);
    slabAt += slab.write(line, slabAt, 'latin1');
    return at;
  }

  private writeHeader(): void {
    if (this.headerWritten) return;
    this.headerWritten = true;
    const { timestamp, title, kubeshim } = this.header;
    const header = { version: 2, ...this.size, timestamp, title, kubeshim };
    this.sink.write(`${JSON.stringify(header)}\n`);
  }

  private line(kind: 'o', text: string): string {
    return `[${seconds(this.last)}, "${kind}", ${JSON.stringify(text)}]\n`;
  }
}

function seconds(ms: number): number {
  return Math.round(ms * 1000) / 1e6;
}

/**
 * The size a resize message sets: `{"Width":80,"Height":24}`, one JSON object per line (what kubectl
 * sends); of several in one chunk the last one counts.
 */
function terminalSize(payload: Buffer): { width: number; height: number } | undefined {
  const ok = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0 && (n as number) < 10000;
  let size: { width: number; height: number } | undefined;
  for (const line of payload.toString('utf8').split('\n')) {
    try {
      const v = JSON.parse(line) as { Width?: unknown; Height?: unknown };
      if (ok(v.Width) && ok(v.Height)) size = { width: v.Width, height: v.Height };
    } catch {
      // not a size: ignored
    }
  }
  return size;
}
