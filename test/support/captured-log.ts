/** A debug-level logger whose JSON lines the test reads back as objects. */
import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '../../src/observe/logger.js';

export interface CapturedLog {
  log: Logger;
  /** Every line so far, parsed. */
  lines: Record<string, unknown>[];
}

export function capturedLogger(): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const sink = new PassThrough();
  let partial = '';
  sink.on('data', (d: Buffer) => {
    partial += d.toString();
    for (let nl = partial.indexOf('\n'); nl >= 0; nl = partial.indexOf('\n')) {
      lines.push(JSON.parse(partial.slice(0, nl)));
      partial = partial.slice(nl + 1);
    }
  });
  return { log: createLogger({ level: 'debug', destination: sink, pretty: false }), lines };
}
