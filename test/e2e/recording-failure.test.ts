/**
 * When the recording cannot be written any more, mid-session: with --record-required the open
 * session ends with a Failure status saying that recording stopped and new sessions are refused
 * with a Status saying why; without it the session goes on, and a warning and a metric say so.
 *
 * What is simulated: the record directory is deleted (with the session's file in it) and a plain
 * file put where it was. We run as root, for whom permissions change nothing; an unlinked file
 * still takes writes, so the recorder checks after each write that its file is still linked, and a
 * new session's file cannot be created under a path that is now a file (ENOTDIR). A full disk
 * (ENOSPC) takes the same path as any failed write (test/unit/record.test.ts writes to /dev/full).
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import type { Generation } from '../../src/emulator/index.js';
import { silentLogger } from '../../src/observe/logger.js';
import { Metrics } from '../../src/observe/metrics.js';
import { type KubectlVersion, runKubectl } from '../support/kubectl.js';
import { readCast, recordingChain } from '../support/recording.js';
import { waitFor } from '../support/wait.js';

interface Cell {
  name: string;
  generation: Generation;
  version: KubectlVersion;
}

const CELLS: Cell[] = [
  { name: 'translated (WebSocket client → SPDY upstream)', generation: 'spdy', version: '1.36' },
  { name: 'SPDY relay', generation: 'spdy', version: '1.27' },
  { name: 'WebSocket relay', generation: 'websocket', version: '1.36' },
];

async function failureCount(metrics: Metrics): Promise<number> {
  const m = await metrics.registry.getSingleMetric('kubeshim_recording_failures_total')?.get();
  return (m?.values ?? []).reduce((n, v) => n + v.value, 0);
}

for (const required of [true, false]) {
  for (const cell of CELLS) {
    describe(`${required ? '--record-required' : 'recording optional'}, ${cell.name}, kubectl ${cell.version}`, () => {
      const metrics = new Metrics();
      const chain = recordingChain(() => ({
        emulator: { generation: cell.generation, logger: silentLogger() },
        recorder: { recordRequired: required, registry: metrics.registry },
      }));

      test('the record directory is replaced by a file mid-session', async () => {
        const input = new PassThrough();
        const running = runKubectl(cell.version, ['exec', '-i', 'demo', '--', 'cat'], {
          env: chain.kube.env,
          input,
          timeoutMs: 30_000,
        });
        input.write('before\n');
        const [file] = await waitFor('the recording', async () => {
          const casts = await chain.rec.casts();
          return casts.length === 1 &&
            (await readCast(casts[0]!)).events.some((e) => String(e[2]).includes('before'))
            ? casts
            : undefined;
        });
        assert.ok(file);
        await rm(chain.rec.dir, { recursive: true });
        await writeFile(chain.rec.dir, 'not a directory');
        input.write('after\n');
        if (!required) {
          await waitFor('the warning', () => chain.rec.logs().find((l) => l['msg'] === 'recording stopped'));
          input.end();
        }
        const r = await running;
        if (required) {
          assert.notEqual(r.code, 0, 'the session ended with a failure');
          assert.match(r.stderr, /recording stopped: the file was removed/);
        } else {
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout.toString(), 'before\nafter\n');
        }
        const warning = chain.rec.logs().find((l) => l['msg'] === 'recording stopped');
        assert.match(String(warning?.['reason']), /the file was removed/);
        assert.ok((await failureCount(metrics)) >= 1);
        await waitFor('no session in flight', () => chain.shim.sessions.size === 0);
        const line = chain.shim.sessionLines().at(-1)!;
        assert.equal(line['recordingStopped'], 'the file was removed', JSON.stringify(line));
        if (required) assert.equal(line['outcome'], 'error', JSON.stringify(line));
      });

      test(`a new session is ${required ? 'refused with a Status saying why' : 'carried, unrecorded'}`, async () => {
        const before = await failureCount(metrics);
        const auditBefore = (await chain.rec.audit()).length;
        const r = await runKubectl(cell.version, ['exec', '-i', 'demo', '--', 'cat'], {
          env: chain.kube.env,
          input: 'new\n',
          timeoutMs: 30_000,
        });
        if (required) {
          assert.notEqual(r.code, 0);
          assert.match(
            r.stderr,
            /cannot record this session and recording is required: cannot create its recording \(ENOTDIR\)/,
          );
          assert.doesNotMatch(r.stderr, /\.cast/, 'where recordings are kept is not told');
        } else {
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.stdout.toString(), 'new\n');
        }
        // (kubectl 1.30+ tries SPDY after a refused WebSocket upgrade: a second refusal)
        assert.ok((await failureCount(metrics)) > before);
        // the session's line is written when it ends, which may be just after kubectl exited
        const audit = await waitFor('the audit line of the new session', async () =>
          (await chain.rec.audit()).slice(auditBefore).find((a) => a['subresource'] === 'exec'),
        );
        assert.equal(audit['status'], required ? 503 : 101, JSON.stringify(audit));
      });
    });
  }
}
