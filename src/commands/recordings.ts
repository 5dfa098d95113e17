/**
 * `kubeshim recordings`: the recordings of `serve --record-dir`, listed with their metadata, or one
 * printed as text — its output stream with the timing stripped — for grep.
 */
import { constants } from 'node:fs';
import { type FileHandle, lstat, open, readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { describeIdentity, isIdentity } from '../record/identity.js';

/** A line of a recording longer than this is not one the recorder wrote: `show` stops there. */
const MAX_LINE = 16 * 1024 * 1024;
/** How many skipped files the list names on stderr before it only counts them. */
const NAME_SKIPPED = 5;

const USAGE = `Usage:
  kubeshim recordings --dir DIR [--output json]       list the recordings in DIR, oldest first
  kubeshim recordings show FILE|SESSION-ID [--dir DIR]  print one's output as text (no timing)

DIR is the --record-dir of kubeshim serve.
`;

export interface RecordingSummary {
  file: string;
  started: string;
  sessionId: string;
  subresource: string;
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  identity: string;
  client: string;
  upstream: string;
  /** The recording's last line: `exit code N`, or how the session ended. */
  ended: string;
  durationSeconds: number;
  bytes: number;
}

export async function recordingsCommand(argv: string[]): Promise<number> {
  let values: { dir?: string; output?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { dir: { type: 'string' }, output: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    }));
    if (values.output !== undefined && values.output !== 'json')
      throw new Error(`--output ${values.output}: only json is known`);
  } catch (err) {
    return usageError((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    if (positionals[0] === 'show') {
      if (positionals.length !== 2 || positionals[1] === '')
        return usageError('show takes one FILE or SESSION-ID');
      const fh = await openRecording(positionals[1]!, values.dir);
      try {
        await printOutput(fh.file, fh.handle);
      } finally {
        await fh.handle.close();
      }
      return 0;
    }
    if (positionals.length > 0) return usageError(`unknown argument '${positionals[0]}'`);
    if (values.dir === undefined)
      return usageError('--dir DIR is required (the --record-dir of kubeshim serve)');
    const skipped: Skipped[] = [];
    const list = await listRecordings(values.dir, skipped);
    process.stdout.write(values.output === 'json' ? `${JSON.stringify(list, null, 2)}\n` : table(list));
    if (skipped.length > 0)
      process.stderr.write(`kubeshim recordings: ${describeSkipped(values.dir, skipped)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`kubeshim recordings: ${visible(oneLine(err))}\n`);
    return 1;
  }
}

function usageError(message: string): number {
  process.stderr.write(`kubeshim recordings: ${message}; see 'kubeshim recordings --help'\n`);
  return 2;
}

/** A *.cast in the directory that the list leaves out, and why. */
export interface Skipped {
  name: string;
  why: 'not a regular file' | 'not a recording';
}

/**
 * The recordings in `dir`, oldest first (their names sort by time). Only regular files are read
 * (never a symlink, FIFO, device or directory); a file that is not a readable recording is left
 * out, and both go to `skipped` when it is given.
 */
export async function listRecordings(dir: string, skipped: Skipped[] = []): Promise<RecordingSummary[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`--dir ${dir}: ${describeErrno(err)}`);
  });
  const out: RecordingSummary[] = [];
  for (const name of names.filter((n) => n.endsWith('.cast')).sort()) {
    const file = join(dir, name);
    const st = await lstat(file).catch(() => undefined);
    if (st === undefined) continue; // gone since readdir
    if (!st.isFile()) {
      skipped.push({ name, why: 'not a regular file' });
      continue;
    }
    const summary = await summarize(file).catch(() => undefined);
    if (summary) out.push(summary);
    else skipped.push({ name, why: 'not a recording' });
  }
  return out;
}

/** One line: how many files were skipped and why, naming them when there are few. */
export function describeSkipped(dir: string, skipped: Skipped[]): string {
  const parts = (['not a regular file', 'not a recording'] as const).flatMap((why) => {
    const these = skipped.filter((s) => s.why === why).map((s) => s.name);
    if (these.length === 0) return [];
    const what = why === 'not a regular file' ? 'not regular files' : 'not recordings';
    const names = these.length <= NAME_SKIPPED ? ` (${these.join(', ')})` : '';
    return [`${these.length} ${these.length === 1 ? why : what}${names}`];
  });
  return `skipped ${skipped.length} *.cast in ${dir}: ${parts.join('; ')}`;
}

/** Opens `file` for reading: never through a symlink, never blocking on a FIFO; a regular file or an error. */
async function openRegular(file: string, followSymlinks: boolean): Promise<FileHandle> {
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | (followSymlinks ? 0 : constants.O_NOFOLLOW);
  const fh = await open(file, flags).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ELOOP') throw new Error(`${file} is a symlink: give the recording file itself`);
    throw new Error(`${file}: ${describeErrno(err)}`);
  });
  const st = await fh.stat().catch(async (err: Error) => {
    await fh.close();
    throw err;
  });
  if (!st.isFile()) {
    await fh.close();
    throw new Error(`${file} is not a regular file (${fileKind(st)}): recordings are regular files`);
  }
  return fh;
}

function fileKind(st: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'a device';
}

function describeErrno(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'not a directory';
    default:
      return err.message;
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Header and last line of a recording, read without reading all of it; undefined when it is not one. */
async function summarize(file: string): Promise<RecordingSummary | undefined> {
  const fh = await openRegular(file, false);
  try {
    const { size } = await fh.stat();
    const headBuf = Buffer.alloc(Math.min(size, 64 * 1024));
    await fh.read(headBuf, 0, headBuf.length, 0);
    const nl = headBuf.indexOf(10);
    if (nl < 0) return undefined;
    const header = JSON.parse(headBuf.subarray(0, nl).toString('utf8')) as unknown;
    if (!isRecord(header) || header['version'] !== 2) return undefined;
    const meta = isRecord(header['kubeshim']) ? header['kubeshim'] : {};
    const started = startedOf(meta['started'], header['timestamp']);
    if (started === undefined) return undefined;
    const tailLength = Math.min(size, 4096);
    const tailBuf = Buffer.alloc(tailLength);
    await fh.read(tailBuf, 0, tailLength, size - tailLength);
    const last = lastEvent(tailBuf.toString('utf8'));
    const ended =
      /\[kubeshim: (.*)\]/.exec(String(last?.[2] ?? ''))?.[1] ?? 'not ended (still open, or cut short)';
    return {
      file,
      started,
      sessionId: text(meta['sessionId']),
      subresource: text(meta['subresource']),
      namespace: text(meta['namespace']),
      pod: text(meta['pod']),
      container: text(meta['container']),
      command: Array.isArray(meta['command']) ? meta['command'].map(text) : [],
      identity: identityOf(meta['identity']),
      client: text(meta['client']),
      upstream: text(meta['upstream']),
      ended,
      durationSeconds: Array.isArray(last) && typeof last[0] === 'number' ? last[0] : 0,
      bytes: size,
    };
  } finally {
    await fh.close();
  }
}

/** A header field as text: strings and numbers as they are, anything else as JSON. */
function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v) ?? '';
}

function startedOf(started: unknown, timestamp: unknown): string | undefined {
  if (typeof started === 'string') return started;
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) return undefined;
  const date = new Date(timestamp * 1000);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** The identity as `describeIdentity` writes it, or `?` for one of a shape it does not know. */
function identityOf(v: unknown): string {
  if (v === undefined || v === null) return '';
  return isIdentity(v) ? describeIdentity(v) : '?';
}

function lastEvent(tail: string): [number, string, unknown] | undefined {
  const lines = tail.split('\n').filter((l) => l.startsWith('['));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i]!);
    } catch {
      // a line cut by the tail's start: try the one before
    }
  }
  return undefined;
}

/**
 * `s` with every control character (C0, DEL, C1) and bidirectional override written as an escape
 * (`\x1b`, `\u202e`): what a client chose must not move the cursor, retitle or clear the
 * terminal of whoever reads the list, nor hide a row.
 */
export function visible(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

function table(list: RecordingSummary[]): string {
  const rows = [
    ['STARTED', 'POD', 'WHAT', 'IDENTITY', 'ENDED', 'DURATION', 'SESSION'],
    ...list
      .map((r) => [
        r.started,
        `${r.namespace}/${r.pod}${r.container ? `:${r.container}` : ''}`,
        `${r.subresource}${r.command.length ? ` ${r.command.join(' ')}` : ''}`.slice(0, 40),
        r.identity,
        r.ended.slice(0, 40),
        `${r.durationSeconds.toFixed(1)}s`,
        r.sessionId,
      ])
      .map((row) => row.map(visible)),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return (
    rows
      .map((row) =>
        row
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/**
 * A recording named by its path, or by its session id within `dir`, opened. With `dir`, a path must
 * name a file directly in `dir`, and it is never read through a symlink; without, `what` is the
 * user's own path, as `cat` would read it. Either way only a regular file is read.
 */
async function openRecording(
  what: string,
  dir: string | undefined,
): Promise<{ file: string; handle: FileHandle }> {
  if (dir === undefined) {
    const exists = await lstat(what).catch(() => undefined);
    if (exists === undefined) throw new Error(`${what}: no such file (give --dir DIR to find a session id)`);
    return { file: what, handle: await openRegular(what, true) };
  }
  if (what.includes('/') || what.endsWith('.cast')) {
    const file = what.includes('/') ? what : join(dir, what);
    if (resolve(dirname(file)) !== resolve(dir))
      throw new Error(`${what} is not in --dir ${dir}: give a recording in DIR, or its session id`);
    return { file, handle: await openRegular(file, false) };
  }
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`--dir ${dir}: ${describeErrno(err)}`);
  });
  const found = names.find((n) => n.endsWith(`_${what}.cast`));
  if (found === undefined) throw new Error(`no recording of session ${what} in ${dir}`);
  const file = join(dir, found);
  return { file, handle: await openRegular(file, false) };
}

/**
 * Every output event's text, in order: the session as a terminal showed it, without timing. The file
 * is streamed line by line; a line longer than MAX_LINE stops it (the recorder writes none), and no
 * error quotes the file's content.
 */
async function printOutput(file: string, handle: FileHandle): Promise<void> {
  let lineNo = 0;
  const notCast = (why = 'is not an asciicast line') =>
    new Error(`${file} line ${lineNo} ${why}: is it a recording of kubeshim serve --record-dir?`);
  const handleLine = async (line: Buffer): Promise<void> => {
    lineNo++;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    if (lineNo === 1) {
      if (!isRecord(parsed) || parsed['version'] !== 2)
        throw new Error(`${file} is not an asciicast v2 recording (line 1 is not its header)`);
      return;
    }
    if (!Array.isArray(parsed) || typeof parsed[0] !== 'number' || typeof parsed[1] !== 'string')
      throw notCast();
    if (parsed[1] !== 'o') return;
    if (typeof parsed[2] !== 'string') throw notCast();
    if (!process.stdout.write(parsed[2]))
      await new Promise((resolve) => process.stdout.once('drain', resolve));
  };
  const guarded = async (line: Buffer): Promise<void> => {
    if (line.length === 0 && lineNo > 0) {
      lineNo++;
      return;
    }
    await handleLine(line);
  };
  let pending: Buffer[] = [];
  let pendingLength = 0;
  const chunk = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) break;
    let data = chunk.subarray(0, bytesRead);
    for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10)) {
      const tail = data.subarray(0, nl);
      if (pendingLength + tail.length > MAX_LINE) {
        lineNo++;
        throw notCast(`is longer than ${MAX_LINE / 1024 / 1024} MiB`);
      }
      const line = pending.length === 0 ? tail : Buffer.concat([...pending, tail]);
      pending = [];
      pendingLength = 0;
      await guarded(line);
      data = data.subarray(nl + 1);
    }
    if (data.length > 0) {
      if (pendingLength + data.length > MAX_LINE) {
        lineNo++;
        throw notCast(`is longer than ${MAX_LINE / 1024 / 1024} MiB`);
      }
      pending.push(Buffer.from(data));
      pendingLength += data.length;
    }
  }
  if (pendingLength > 0) await guarded(Buffer.concat(pending));
  if (lineNo === 0) throw new Error(`${file} is empty: not an asciicast v2 recording`);
}
