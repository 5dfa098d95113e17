/**
 * exec and attach, independent of the wire: the transports (SPDY, WebSocket) hand over the streams
 * the client asked for as Node streams and get back the Status to write on the error stream or
 * channel (docs/protocols.md §3.4). Output is piped with backpressure: a slow client pauses the process.
 */
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { exitCodeStatus, internalErrorStatus, type Status, successStatus } from '../k8s/status.js';
import type { NodeStreams } from '../remotecommand/node-streams.js';
import type { Container } from './container.js';
import type { Pod } from './pod.js';
import type { PodProcess } from './process.js';
import { readResizeStream } from './resize.js';

export interface CommandRequest {
  subresource: 'exec' | 'attach';
  pod: Pod;
  container: Container;
  /** exec only. */
  command: string[];
  tty: boolean;
}

export interface CommandResult {
  status: Status;
  /** The process's exit code, when there was a process and it exited. */
  exitCode?: number;
}

/** A terminal's size before the client said otherwise. */
const DEFAULT_SIZE = { cols: 80, rows: 24 };
/** How long a tty exec waits for the client's first resize before starting the process. */
const FIRST_RESIZE_WAIT_MS = 1000;
/**
 * What a node takes at least to start an exec'd process (the runtime enters the container first).
 * Without it, a command that exits at once answers before kubectl 1.30–1.32 has registered its
 * WebSocket streams, and that kubectl drops the answer (docs/protocols.md §3.3).
 */
const EXEC_START_MS = 25;

/** Run the command; `signal` aborts when the client went away (the process is killed). */
export async function runCommand(
  req: CommandRequest,
  streams: NodeStreams,
  signal: AbortSignal,
): Promise<CommandResult> {
  if (req.subresource === 'attach') {
    streams.resize?.resume(); // the main process has no terminal: sizes have nowhere to go
    await req.container.attach(streams, signal);
    return { status: successStatus() };
  }
  const size = req.tty ? await terminalSize(streams.resize, signal) : undefined;
  if (!req.tty) {
    streams.resize?.resume();
    await new Promise((resolve) => setTimeout(resolve, EXEC_START_MS));
  }
  if (signal.aborted) return { status: internalErrorStatus('client went away') };
  let proc: PodProcess;
  try {
    proc = req.pod.spawn(req.command, size?.initial);
  } catch (err) {
    return { status: internalErrorStatus(err instanceof Error ? err.message : String(err)) };
  }
  size?.follow((cols, rows) => proc.resize(cols, rows));
  const outputs: Promise<void>[] = [connectOutput(proc.stdout, streams.stdout)];
  if (proc.stderr) outputs.push(connectOutput(proc.stderr, streams.stderr));
  if (streams.stdin) streams.stdin.pipe(proc.stdin);
  else proc.stdin.end();
  const onAbort = () => {
    proc.kill();
    // the client is gone: let the output run dry instead of waiting for it to be read
    for (const out of [proc.stdout, proc.stderr]) {
      out?.unpipe();
      out?.resume();
    }
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const code = await proc.exited;
    await Promise.all(outputs);
    if (!signal.aborted) await Promise.all([flushed(streams.stdout), flushed(streams.stderr)]);
    return {
      status: code === 0 ? successStatus() : exitCodeStatus(code, req.command),
      exitCode: code,
    };
  } catch (err) {
    proc.kill();
    return { status: internalErrorStatus(err instanceof Error ? err.message : String(err)) };
  } finally {
    signal.removeEventListener('abort', onAbort);
    streams.stdin?.unpipe(proc.stdin);
  }
}

/** Pipe process output to the client (or discard it when not requested); resolves at its end. */
function connectOutput(source: Readable, sink: Writable | undefined): Promise<void> {
  if (sink) source.pipe(sink, { end: false });
  else source.resume();
  return finished(source, { writable: false }).catch(() => {});
}

/**
 * Resolves once everything written to `w` so far has been handed on: a zero-length write is queued
 * behind the rest, and its callback runs in order. (Every writer here treats it as "no data".)
 */
function flushed(w: Writable | undefined): Promise<void> {
  if (!w || w.destroyed || w.writableEnded) return Promise.resolve();
  return new Promise((resolve) => w.write(Buffer.alloc(0), () => resolve()));
}

interface TerminalSize {
  initial: { cols: number; rows: number };
  /** Later sizes go to `apply`. */
  follow(apply: (cols: number, rows: number) => void): void;
}

/**
 * The terminal size to start with: the client's first resize message (kubectl sends it right
 * after the streams exist), waited for briefly so that the process sees the real size at once.
 */
function terminalSize(resize: Readable | undefined, signal: AbortSignal): Promise<TerminalSize> {
  let apply: ((cols: number, rows: number) => void) | undefined;
  let initial = { ...DEFAULT_SIZE };
  const size: TerminalSize = {
    get initial() {
      return initial;
    },
    follow: (fn) => {
      apply = fn;
    },
  };
  if (!resize) return Promise.resolve(size);
  return new Promise((resolve) => {
    let waiting = true;
    const done = () => {
      if (!waiting) return;
      waiting = false;
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve(size);
    };
    const timer = setTimeout(done, FIRST_RESIZE_WAIT_MS);
    signal.addEventListener('abort', done, { once: true });
    resize.once('end', done);
    readResizeStream(resize, (cols, rows) => {
      if (waiting) {
        initial = { cols, rows };
        done();
      } else apply?.(cols, rows);
    });
  });
}
