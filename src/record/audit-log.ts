/**
 * `--audit-log FILE|-`: one JSON line per API request through the shim. To a file (created 0600, or
 * made so, appended to) through a bounded background queue; `-` puts the lines on the log's own stream, as
 * lines whose `msg` is `audit`, whatever the log level (two writers on one stdout would mix lines).
 */
import type { Logger } from '../observe/logger.js';
import { FileSink, type QueueBudget } from './file-sink.js';

export type AuditEntry = Record<string, unknown>;

export interface AuditLog {
  write(entry: AuditEntry): void;
  close(): Promise<void>;
}

/** Lines queued for the audit file at most. */
const MAX_QUEUED = 16 * 1024 * 1024;

export async function openAuditLog(
  target: string,
  log: Logger,
  budget: QueueBudget,
  onFailure: (why: string) => void,
): Promise<AuditLog> {
  if (target === '-') {
    const out = log.child({}, { level: 'info' });
    return { write: (entry) => out.info(entry, 'audit'), close: async () => {} };
  }
  const sink = await FileSink.open(target, false, { budget, maxQueued: MAX_QUEUED, onFailure }).catch(
    (err: NodeJS.ErrnoException) => {
      throw new Error(`--audit-log ${target}: cannot open it (${err.code ?? err.message})`);
    },
  );
  return { write: (entry) => sink.write(`${JSON.stringify(entry)}\n`), close: () => sink.close() };
}
