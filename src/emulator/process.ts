/**
 * The real local processes behind a pod: argv run through `sh` (so a missing program is sh's exit
 * 127 and its message on stderr, as close to a container runtime's answer as a shell gets), in the
 * pod's working directory, in a process group of its own so that everything it started can be
 * killed. With a terminal the process gets a pseudo-terminal (node-pty, optional: see terminal.ts);
 * otherwise three pipes.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { Readable, Writable } from 'node:stream';
import { loadTerminals } from './terminal.js';

export interface PodProcess {
  readonly pid: number;
  /** Input. Ending it closes the pipe, or types ^D on a terminal (there is no half-close of a pty). */
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** null with a terminal: the pty merges stderr into stdout. */
  readonly stderr: Readable | null;
  resize(cols: number, rows: number): void;
  /** The exit code (128 + signal number when killed), once the process ended and its output was read. */
  readonly exited: Promise<number>;
  /** SIGKILL to the whole process group. */
  kill(): void;
}

export interface SpawnOptions {
  argv: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Allocate a terminal of this size (throws TerminalsUnavailableError without node-pty). */
  tty?: { cols: number; rows: number };
}

/** `sh -c 'exec "$@"' sh argv…`: argv exactly as given, looked up on PATH by the shell. */
function shellArgs(argv: readonly string[]): string[] {
  return ['-c', 'exec "$@"', 'sh', ...argv];
}

export function spawnProcess(opts: SpawnOptions): PodProcess {
  return opts.tty ? spawnPty(opts, opts.tty) : spawnPipes(opts);
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function exitCode(code: number | null, signal: NodeJS.Signals | number | null | undefined): number {
  if (code !== null && code !== undefined && !signal) return code;
  const n = typeof signal === 'number' ? signal : signal ? constants.signals[signal] : 0;
  return 128 + (n ?? 0);
}

function spawnPipes(opts: SpawnOptions): PodProcess {
  const child = spawn('sh', shellArgs(opts.argv), {
    cwd: opts.cwd,
    env: opts.env,
    stdio: 'pipe',
    detached: true,
  });
  // the process may exit before it read all its input: EPIPE is not our error
  child.stdin.on('error', () => {});
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(exitCode(code, signal)));
  });
  return {
    pid: child.pid ?? -1,
    stdin: child.stdin,
    stdout: child.stdout,
    stderr: child.stderr,
    resize: () => {},
    exited,
    kill: () => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null)
        killGroup(child.pid);
    },
  };
}

function spawnPty(opts: SpawnOptions, size: { cols: number; rows: number }): PodProcess {
  const term = loadTerminals().spawn('sh', shellArgs(opts.argv), {
    name: 'xterm',
    cols: size.cols,
    rows: size.rows,
    cwd: opts.cwd,
    env: opts.env,
    encoding: null,
  });
  let done = false;
  const stdout = new Readable({
    highWaterMark: 64 * 1024,
    read: () => term.resume(),
  });
  // with `encoding: null` node-pty hands over Buffers (its typings say string)
  term.onData((data: string | Buffer) => {
    if (!stdout.push(data)) term.pause();
  });
  const stdin = new Writable({
    write(chunk: Buffer, _enc, callback) {
      if (!done) term.write(chunk);
      callback();
    },
    final(callback) {
      if (!done) term.write('\x04');
      callback();
    },
  });
  const exited = new Promise<number>((resolve) => {
    // node-pty reports the exit once the terminal's output has been read to the end
    term.onExit(({ exitCode: code, signal }) => {
      done = true;
      stdout.push(null);
      resolve(exitCode(code, signal));
    });
  });
  return {
    pid: term.pid,
    stdin,
    stdout,
    stderr: null,
    resize: (cols, rows) => {
      if (done || cols <= 0 || rows <= 0) return;
      try {
        term.resize(cols, rows);
      } catch {
        // the terminal closed before node-pty reported the exit (EBADF): nothing left to size
      }
    },
    exited,
    kill: () => {
      if (!done) killGroup(term.pid);
    },
  };
}
