/**
 * How every command speaks when it fails: one line on stderr that names the flag or input and says
 * what to do. A usage error (a flag that cannot be right) exits 2 and points at the command's
 * --help instead of reprinting it; a failure at run time exits 1. Never a stack trace.
 */
import { accessSync, constants } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { fileProblem } from '../server/flag-file.js';

/** A flag or argument that cannot be right, whatever the machine's state. */
export class UsageError extends Error {}

/** Write the one line for `err` and return the exit code. */
export function reportFailure(
  command: string,
  err: unknown,
  stderr: NodeJS.WritableStream = process.stderr,
): number {
  const message = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ').trim();
  const prefix = command === '' ? 'kubeshim' : `kubeshim ${command}`;
  if (err instanceof UsageError) {
    stderr.write(`${prefix}: ${message}; see '${prefix} --help'\n`);
    return 2;
  }
  stderr.write(`${prefix}: ${message}\n`);
  return 1;
}

/** node:util's parseArgs, strict, without positionals; its complaints reworded as usage errors. */
export function parseFlags<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(rewordParseError((err as Error).message));
  }
}

function rewordParseError(message: string): string {
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown flag ${unknown[1]}`;
  const missing = /^Option '(--[\w-]+)(?:, -\w)? <value>' argument missing/.exec(message);
  if (missing) return `${missing[1]} needs a value`;
  const noValue = /^Option '(--[\w-]+)' does not take an argument/.exec(message);
  if (noValue) return `${noValue[1]} takes no value`;
  const positional = /^Unexpected argument '([^']*)'/.exec(message);
  if (positional) return `unexpected argument '${positional[1]}' (flags start with --)`;
  return message.split('. ')[0] ?? message;
}

/** pino's levels, checked before a logger is made (pino's own complaint names no flag). */
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function parseLogLevel(value: string): string {
  if (!LOG_LEVELS.includes(value))
    throw new UsageError(`--log-level '${value}' is not a level: use one of ${LOG_LEVELS.join(', ')}`);
  return value;
}

/**
 * `--upstream URL`: the scheme is required. kubectl reads a bare host:port as https, but a shim that
 * guessed would send TLS to a plain port (or the reverse) and fail far from the typo.
 */
export function parseUpstreamFlag(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value))
    throw new UsageError(
      `--upstream '${value}' has no scheme: write https://${value} (or http://${value} for a plain-HTTP API server)`,
    );
  if (!/^https?:\/\//i.test(value))
    throw new UsageError(`--upstream '${value}': the scheme must be http:// or https://`);
  return value;
}

/** `--kubeconfig PATH` must name a readable file; said here with what to do instead. */
export function checkKubeconfigFlag(file: string | undefined): void {
  if (file === undefined) return;
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    throw new Error(
      `--kubeconfig ${file}: ${fileProblem(err as NodeJS.ErrnoException)}; give the path of your kubeconfig (or --upstream URL to go without one)`,
    );
  }
}
