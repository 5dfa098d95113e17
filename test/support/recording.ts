/**
 * Recording for end-to-end tests: a Recorder writing into a fresh directory, its log lines captured,
 * and the real `asciinema cat` to read a recording back (it wants a terminal: script(1) gives it one).
 */

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { type EmulatorOptions, startEmulator } from '../../src/emulator/index.js';
import { Recorder, type RecorderOptions } from '../../src/record/recorder.js';
import type { ShimOptions } from '../../src/server/listener.js';
import { capturedLogger } from './captured-log.js';
import { type KubeEnv, type KubeEnvOptions, makeKubeEnv, runProcess, shellQuote } from './kubectl.js';
import { requireProgram } from './processes.js';
import { startTestShim, type TestShim } from './shim.js';

export interface TestRecorder {
  recorder: Recorder;
  dir: string;
  auditFile: string;
  /** The recorder's own log lines (warnings when recording stops). */
  logs(): Record<string, unknown>[];
  /** The audit log's lines so far. */
  audit(): Promise<Record<string, unknown>[]>;
  /** The .cast files so far, sorted by name (by time). */
  casts(): Promise<string[]>;
  cleanup(): Promise<void>;
}

type TestRecorderOptions = Omit<RecorderOptions, 'log' | 'recordDir' | 'auditLog'>;

export async function startTestRecorder(opts: TestRecorderOptions = {}): Promise<TestRecorder> {
  const root = await mkdtemp(join(tmpdir(), 'kubeshim-rec-'));
  const dir = join(root, 'casts');
  const auditFile = join(root, 'audit.log');
  const { log, lines } = capturedLogger();
  const recorder = await Recorder.create({ ...opts, log, recordDir: dir, auditLog: auditFile });
  return {
    recorder,
    dir,
    auditFile,
    logs: () => lines,
    audit: async () =>
      (await readFile(auditFile, 'utf8'))
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    casts: async () =>
      (await readdir(dir).catch(() => []))
        .filter((f) => f.endsWith('.cast'))
        .sort()
        .map((f) => join(dir, f)),
    cleanup: async () => {
      await recorder.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** kubectl → a shim that records (mode `auto`) → the emulator. */
export interface RecordingChain {
  rec: TestRecorder;
  shim: TestShim;
  kube: KubeEnv;
}

export interface RecordingChainOptions {
  emulator: EmulatorOptions;
  recorder?: TestRecorderOptions;
  shim?: Omit<Partial<ShimOptions>, 'recorder'>;
  /** The kubectl home's, for the shim. */
  kube?: KubeEnvOptions;
}

/**
 * Inside a `describe`: a recording chain started before its tests (`options` is read then) and closed
 * after them. The fields are set once the block's `before` ran.
 */
export function recordingChain(options: () => RecordingChainOptions): RecordingChain {
  const chain = {} as RecordingChain;
  let close = async () => {};
  before(async () => {
    const o = options();
    const emulator = await startEmulator(o.emulator);
    const rec = await startTestRecorder(o.recorder);
    const shim = await startTestShim(emulator.url, 'auto', { ...o.shim, recorder: rec.recorder });
    const kube = await makeKubeEnv(shim.url, o.kube);
    Object.assign(chain, { rec, shim, kube });
    close = async () => {
      await kube.cleanup();
      await shim.close();
      await emulator.close();
      await rec.cleanup();
    };
  });
  after(() => close());
  return chain;
}

/** What the real `asciinema cat FILE` prints (inside script(1): it reads keys from /dev/tty). */
export async function asciinemaCat(file: string): Promise<string> {
  const asciinema = requireProgram('asciinema');
  const r = await runProcess(
    'script',
    ['-qec', `${shellQuote(asciinema)} cat ${shellQuote(file)}`, '/dev/null'],
    { env: { PATH: process.env.PATH, HOME: tmpdir(), LANG: 'C.UTF-8' }, timeoutMs: 20_000 },
  );
  if (r.code !== 0) throw new Error(`asciinema cat ${file}: exit ${r.code}: ${r.stdout} ${r.stderr}`);
  return r.stdout.toString();
}

/** The parsed lines of a .cast file: its header and its events (none yet: an empty header). */
export async function readCast(
  file: string,
): Promise<{ header: Record<string, unknown>; events: [number, string, string][] }> {
  const [first, ...rest] = (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
  return { header: first === undefined ? {} : JSON.parse(first), events: rest.map((l) => JSON.parse(l)) };
}
