/**
 * `kubeshim recordings`: the recordings of `serve --record-dir`, listed with their metadata, or one
 * printed as text — its output stream with the timing stripped — for grep.
 */
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { describeIdentity, type Identity } from '../record/identity.js';

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
      if (positionals.length !== 2) return usageError('show takes one FILE or SESSION-ID');
      await printOutput(await resolveRecording(positionals[1]!, values.dir));
      return 0;
    }
    if (positionals.length > 0) return usageError(`unknown argument '${positionals[0]}'`);
    if (values.dir === undefined)
      return usageError('--dir DIR is required (the --record-dir of kubeshim serve)');
    const list = await listRecordings(values.dir);
    process.stdout.write(values.output === 'json' ? `${JSON.stringify(list, null, 2)}\n` : table(list));
    return 0;
  } catch (err) {
    process.stderr.write(`kubeshim recordings: ${(err as Error).message}\n`);
    return 1;
  }
}

function usageError(message: string): number {
  process.stderr.write(`kubeshim recordings: ${message}; see 'kubeshim recordings --help'\n`);
  return 2;
}

/** The recordings in `dir`, oldest first (their names sort by time). */
export async function listRecordings(dir: string): Promise<RecordingSummary[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`--dir ${dir}: ${err.code === 'ENOENT' ? 'no such directory' : err.message}`);
  });
  const out: RecordingSummary[] = [];
  for (const name of names.filter((n) => n.endsWith('.cast')).sort()) {
    const summary = await summarize(join(dir, name)).catch(() => undefined);
    if (summary) out.push(summary);
  }
  return out;
}

/** Header and last line of a recording, read without reading all of it. */
async function summarize(file: string): Promise<RecordingSummary | undefined> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const headBuf = Buffer.alloc(Math.min(size, 64 * 1024));
    await fh.read(headBuf, 0, headBuf.length, 0);
    const nl = headBuf.indexOf(10);
    if (nl < 0) return undefined;
    const header = JSON.parse(headBuf.subarray(0, nl).toString('utf8')) as Record<string, unknown>;
    const meta = (header['kubeshim'] ?? {}) as Record<string, unknown>;
    const tailLength = Math.min(size, 4096);
    const tailBuf = Buffer.alloc(tailLength);
    await fh.read(tailBuf, 0, tailLength, size - tailLength);
    const last = lastEvent(tailBuf.toString('utf8'));
    const ended =
      /\[kubeshim: (.*)\]/.exec(String(last?.[2] ?? ''))?.[1] ?? 'not ended (still open, or cut short)';
    return {
      file,
      started: String(meta['started'] ?? new Date(Number(header['timestamp']) * 1000).toISOString()),
      sessionId: String(meta['sessionId'] ?? ''),
      subresource: String(meta['subresource'] ?? ''),
      namespace: String(meta['namespace'] ?? ''),
      pod: String(meta['pod'] ?? ''),
      container: String(meta['container'] ?? ''),
      command: Array.isArray(meta['command']) ? meta['command'].map(String) : [],
      identity: meta['identity'] ? describeIdentity(meta['identity'] as Identity) : '',
      client: String(meta['client'] ?? ''),
      upstream: String(meta['upstream'] ?? ''),
      ended,
      durationSeconds: typeof last?.[0] === 'number' ? last[0] : 0,
      bytes: size,
    };
  } finally {
    await fh.close();
  }
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

function table(list: RecordingSummary[]): string {
  const rows = [
    ['STARTED', 'POD', 'WHAT', 'IDENTITY', 'ENDED', 'DURATION', 'SESSION'],
    ...list.map((r) => [
      r.started,
      `${r.namespace}/${r.pod}${r.container ? `:${r.container}` : ''}`,
      `${r.subresource}${r.command.length ? ` ${r.command.join(' ')}` : ''}`.slice(0, 40),
      r.identity,
      r.ended.slice(0, 40),
      `${r.durationSeconds.toFixed(1)}s`,
      r.sessionId,
    ]),
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

/** A recording named by its path, or by its session id within `dir`. */
async function resolveRecording(what: string, dir: string | undefined): Promise<string> {
  if ((await stat(what).catch(() => undefined))?.isFile()) return what;
  if (dir === undefined) throw new Error(`${what}: no such file (give --dir DIR to find a session id)`);
  const names = await readdir(dir).catch(() => [] as string[]);
  const found = names.find((n) => n.endsWith(`_${what}.cast`));
  if (found === undefined) throw new Error(`no recording of session ${what} in ${dir}`);
  return join(dir, found);
}

/** Every output event's text, in order: the session as a terminal showed it, without timing. */
async function printOutput(file: string): Promise<void> {
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let first = true;
  for await (const line of lines) {
    if (first) {
      first = false;
      const header = JSON.parse(line) as { version?: unknown };
      if (header.version !== 2) throw new Error(`${file}: not an asciicast v2 recording`);
      continue;
    }
    if (line === '') continue;
    const [, kind, data] = JSON.parse(line) as [number, string, string];
    if (kind === 'o' && !process.stdout.write(data))
      await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
}
