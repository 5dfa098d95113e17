/**
 * The system under test: kubeshim's listener (startShim) as `serve` composes it — the bastion form
 * of the upstream target (no kubeconfig), metrics on, info-level JSON log — with the upstream
 * protocol forced (`spdy` or `websocket`) so that every session is translated. Its log is read here:
 * `sessions` tells how the sessions it carried ended, so a run that "measured" failures shows it.
 * It warms its hot paths up first, as `serve` does (src/warmup), unless `warm` is false.
 * With `record`, it records every exec session (`--record-dir` into a directory of its own, removed
 * when it stops, no size cap so that the whole stream is recorded); a recording that stopped counts
 * as a failed session.
 */
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observe/logger.js';
import { Metrics } from '../../src/observe/metrics.js';
import { Recorder, WARM_UP_RECORDING_BYTES } from '../../src/record/recorder.js';
import { startShim } from '../../src/server/listener.js';
import type { UpstreamMode } from '../../src/upstream/choice.js';
import { loadUpstreamTarget } from '../../src/upstream/target.js';
import { warmUp } from '../../src/warmup/warm-up.js';
import { serveWorker, workerParams } from '../lib/worker.js';

const { upstream, mode, record, warm } = workerParams<{
  upstream: string;
  mode: UpstreamMode;
  record?: boolean;
  warm?: boolean;
}>();

let outcomes: Record<string, number> = {};
let problems: string[] = [];
const logSink = new Writable({
  write(chunk: Buffer, _enc, callback) {
    const line = chunk.toString();
    if (line.includes('"msg":"session"') || line.includes('"level":40') || line.includes('"level":50')) {
      const entry = JSON.parse(line) as {
        msg: string;
        level: number;
        outcome?: string;
        closeReason?: string;
        reason?: string;
      };
      if (entry.msg === 'session') outcomes[entry.outcome ?? '?'] = (outcomes[entry.outcome ?? '?'] ?? 0) + 1;
      if (entry.msg === 'recording stopped')
        outcomes['recording-stopped'] = (outcomes['recording-stopped'] ?? 0) + 1;
      if (entry.level >= 40 && problems.length < 5)
        problems.push(`${entry.msg} ${entry.closeReason ?? entry.reason ?? ''}`.trim());
    }
    callback();
  },
});

// the bastion form: --upstream without a kubeconfig
const target = await loadUpstreamTarget({ upstream }, { HOME: '/nonexistent' });
const log = createLogger({ level: 'info', destination: logSink });
const recordDir = record ? await mkdtemp(join(tmpdir(), 'kubeshim-bench-rec-')) : undefined;
if (recordDir) process.on('exit', () => rmSync(recordDir, { recursive: true, force: true }));
const shim = await startShim({
  host: '127.0.0.1',
  port: 0,
  target,
  mode,
  log,
  metrics: new Metrics(),
  maxSessions: 0, // the idle scenario holds thousands
  recorder: recordDir
    ? await Recorder.create({
        recordDir,
        recordMaxBytes: Number.MAX_SAFE_INTEGER,
        log,
        warmUpBytes: warm === false ? 0 : WARM_UP_RECORDING_BYTES,
      })
    : undefined,
});

// as `serve` does before it announces its listener (src/warmup); `warm: false` for a cold process
if (warm !== false) await warmUp({ log });

serveWorker(
  { url: shim.url },
  {
    /** How the sessions since the last call ended, and the first few warnings. */
    sessions: async () => {
      const r = { outcomes, problems, active: shim.sessions.size };
      outcomes = {};
      problems = [];
      return r;
    },
  },
);
