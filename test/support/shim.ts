/** An in-process shim in front of a test upstream, with its log lines captured as objects. */

import http from 'node:http';
import { type Shim, type ShimOptions, startShim } from '../../src/server/listener.js';
import type { UpstreamMode } from '../../src/upstream/choice.js';
import { capturedLogger } from './captured-log.js';

export interface TestShim extends Shim {
  /** Every log line so far, parsed. */
  logs(): Record<string, unknown>[];
  /** The contract's closing `session` lines so far. */
  sessionLines(): Record<string, unknown>[];
}

export async function startTestShim(
  upstream: string,
  mode: UpstreamMode,
  extra: Partial<ShimOptions> = {},
): Promise<TestShim> {
  const { log, lines } = capturedLogger();
  const agent = new http.Agent({ keepAlive: true });
  const shim = await startShim({
    host: '127.0.0.1',
    port: 0,
    mode,
    log,
    target: { url: new URL(upstream), agent, authHeaders: async () => ({}), injectsCredentials: false },
    ...extra,
  });
  return {
    ...shim,
    close: async () => {
      await shim.close();
      agent.destroy();
    },
    logs: () => lines,
    sessionLines: () => lines.filter((l) => l['msg'] === 'session'),
  };
}
