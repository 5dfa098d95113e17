import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/** Paths that may carry credentials; pino replaces their values before a line is written. */
const REDACT = [
  'headers.authorization',
  'headers["proxy-authorization"]',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'token',
  'password',
  'clientKey',
  'clientKeyData',
  'clientCertificateData',
  'certificateAuthorityData',
];

export interface LoggerOptions {
  level?: string;
  /** Force pretty or JSON output; default: pretty when stdout is a terminal. */
  pretty?: boolean;
  /** Destination for JSON lines (default stdout). */
  destination?: NodeJS.WritableStream;
}

/**
 * The process logger: JSON lines on stdout (the contract in docs/design.md), or
 * pino-pretty when a person is watching a terminal.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = { level: opts.level ?? 'info', redact: { paths: REDACT, censor: '[redacted]' } };
  const wantPretty = opts.pretty ?? (opts.destination === undefined && process.stdout.isTTY === true);
  if (wantPretty)
    return pino(options, pretty({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l' }));
  if (opts.destination) return pino(options, opts.destination);
  return pino(options, pino.destination({ dest: 1, sync: true }));
}

/** A logger that writes nothing, for library use and tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
