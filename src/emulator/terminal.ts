/**
 * Pseudo-terminals for `exec -t`, from node-pty, an optional dependency: it compiles from source on
 * Linux, so an install without a compiler goes on without it. It is loaded on the first terminal,
 * never before, and its absence is an error that says how to get terminals.
 */
import { createRequire } from 'node:module';

/** The part of node-pty's API the emulator uses (its own typings may be absent). */
export interface Terminal {
  readonly pid: number;
  onData(listener: (data: string | Buffer) => void): unknown;
  onExit(listener: (e: { exitCode: number; signal?: number }) => void): unknown;
  write(data: string | Buffer): void;
  resize(cols: number, rows: number): void;
  pause(): void;
  resume(): void;
}

export interface TerminalModule {
  spawn(
    file: string,
    args: string[],
    options: {
      name: string;
      cols: number;
      rows: number;
      cwd: string;
      env: NodeJS.ProcessEnv;
      encoding: null;
    },
  ): Terminal;
}

const HOW_TO =
  'run `npm install node-pty` where kubeshim is installed, or `npm rebuild node-pty` if npm skipped its build ' +
  '(it compiles: python3, make and a C++ compiler), or exec without -t';

/** Thrown instead of a terminal when node-pty is not there or does not load. */
export class TerminalsUnavailableError extends Error {
  constructor(cause: unknown) {
    const code = (cause as { code?: unknown } | null)?.code;
    const why =
      code === 'MODULE_NOT_FOUND'
        ? 'which is not installed'
        : `which does not load (${cause instanceof Error ? cause.message.split('\n')[0] : String(cause)})`;
    super(`terminals (exec -t) need the optional module node-pty, ${why}: ${HOW_TO}`, { cause });
    this.name = 'TerminalsUnavailableError';
  }
}

/** node-pty as `load` returns it, or the reason it cannot be had. */
export function probeTerminals(load: () => unknown): TerminalModule | TerminalsUnavailableError {
  try {
    return load() as TerminalModule;
  } catch (err) {
    return new TerminalsUnavailableError(err);
  }
}

let loaded: TerminalModule | TerminalsUnavailableError | undefined;

/** node-pty, loaded on first use (once per process), or a TerminalsUnavailableError thrown. */
export function loadTerminals(): TerminalModule {
  // (in a single executable there is no module to load: that is an error like any other here)
  loaded ??= probeTerminals(() => createRequire(import.meta.url)('node-pty'));
  if (loaded instanceof TerminalsUnavailableError) throw loaded;
  return loaded;
}
