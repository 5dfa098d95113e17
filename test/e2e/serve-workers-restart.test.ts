/**
 * `kubeshim serve --workers 2` when the replacement of a dead worker cannot start (its --token-file
 * was moved away, as a secret rotation might): the primary stays alive with no worker, says on one
 * line per failure why and when it tries again, and once the file is back a worker starts and serves.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { childrenOf } from '../support/children.js';
import { httpGet } from '../support/http-get.js';
import { REPO, startServe } from '../support/processes.js';
import { exitCode, serveRig } from '../support/serve-rig.js';
import { freePort, waitFor, withTimeout } from '../support/wait.js';

const rig = serveRig();

const get = (url: string, token: string) =>
  httpGet(url, { headers: { authorization: `Bearer ${token}` }, timeoutMs: 5000 });

test('every worker dead and no replacement can start: the primary stays, retries, and serves again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kubeshim-workers-restart-'));
  const tokenFile = join(dir, 'token');
  const moved = join(dir, 'token.moved');
  const token = 'restart-test-token';
  writeFileSync(tokenFile, `${token}\n`);
  // a process group of its own (setsid execs in place: the child is the primary), killed whole at the end
  const command = ['setsid', process.execPath, '--import', 'tsx', join(REPO, 'src/cli.ts')];
  // a port of its own: with every worker gone, node:cluster closes the shared listener, and a
  // replacement of `--listen 127.0.0.1:0` would get another port
  const port = await freePort();
  const shim = await startServe(
    [
      '--upstream',
      rig.emu.url,
      '--listen',
      `127.0.0.1:${port}`,
      '--no-warm-up',
      '--workers',
      '2',
      '--token-file',
      tokenFile,
    ],
    rig.env(),
    { command, readyTimeoutMs: 60_000 },
  );
  const primary = shim.child.pid!;
  const msgs = () => shim.lines().map((l) => l['msg']);
  const count = (msg: string) => msgs().filter((m) => m === msg).length;
  try {
    // the workers, as the primary names them
    const workers = await waitFor(
      'two workers listening',
      () => {
        const pids = shim
          .lines()
          .filter((l) => l['msg'] === 'worker listening')
          .map((l) => l['workerPid'] as number);
        return pids.length === 2 && pids.every((p) => childrenOf(primary).includes(p)) && pids;
      },
      10_000,
    );
    renameSync(tokenFile, moved);
    for (const w of workers) process.kill(w, 'SIGKILL');
    await waitFor('both deaths logged', () => count('worker died; restarting it') >= 2, 10_000);
    // each slot's replacement fails at least twice (after 1 s, then 2 s): the backoff goes on
    await waitFor('failed restarts logged', () => count('worker could not start; retrying it') >= 4, 30_000);
    assert.equal(shim.child.exitCode, null, shim.output());
    assert.equal(shim.child.signalCode, null);
    assert.ok(
      workers.every((w) => !childrenOf(primary).includes(w)),
      'the killed workers are gone',
    );
    const failures = shim.lines().filter((l) => l['msg'] === 'worker could not start; retrying it');
    for (const f of failures) {
      assert.equal(f['level'], 50, JSON.stringify(f));
      assert.match(String(f['reason']), /token\.?|token-file/, JSON.stringify(f));
      assert.match(String(f['retryIn']), /^\d+ s$/, JSON.stringify(f));
      assert.equal(typeof f['workerPid'], 'number');
    }
    // the backoff doubles per slot: 1 s, then 2 s, …
    const retries = shim
      .lines()
      .filter((l) => 'retryIn' in l)
      .map((l) => l['retryIn']);
    assert.ok(retries.includes('1 s') && retries.includes('2 s'), retries.join(', '));
    assert.equal(count('listening'), 1);
    assert.equal(shim.url, `http://127.0.0.1:${port}`);

    renameSync(moved, tokenFile);
    const healthy = await waitFor(
      '/healthz answering again',
      () =>
        get(`${shim.url}/healthz`, token).then(
          (r) => r.status === 200 && r,
          () => false as const,
        ),
      40_000,
      200,
    );
    assert.equal(healthy.body, 'ok\n');
    assert.ok(count('worker listening') >= 3, msgs().join(', '));
    assert.equal(count('worker listens elsewhere'), 0);
    // one "pid" (the primary's) per line; the worker's is workerPid
    for (const line of shim
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"worker ')))
      assert.equal(line.split('"pid":').length, 2, line);
    await waitFor('two workers again', () => count('worker listening') >= 4, 40_000);

    // and a graceful stop still ends it with 0
    const exited = exitCode(shim.child);
    shim.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited, 15_000, 'kubeshim to exit'), 0, shim.output());
  } finally {
    try {
      process.kill(-primary, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
