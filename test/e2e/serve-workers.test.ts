/**
 * `kubeshim serve --workers 2` as a real process in front of the emulator: one `listening` line with
 * the real port of `--listen 127.0.0.1:0`, real kubectl sessions through the shared listener,
 * /metrics summed over the workers whichever worker answers, a worker that dies restarted, SIGTERM
 * draining an open session in every worker and leaving no process behind.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { childrenOf } from '../support/children.js';
import { httpGet } from '../support/http-get.js';
import { runKubectl } from '../support/kubectl.js';
import { runCli, type ServeProcess } from '../support/processes.js';
import { exitCode, serveRig } from '../support/serve-rig.js';
import { waitFor, withTimeout } from '../support/wait.js';

// a primary and its workers each load the TypeScript sources: more time on a busy machine
const rig = serveRig();
const serve = (args: string[]) => rig.serve(args, { readyTimeoutMs: 60_000 });

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const get = (url: string) => httpGet(url);

/** The sum of a metric's samples in a Prometheus text answer. */
function total(body: string, name: string): number {
  return body
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

const listeningLines = (s: ServeProcess) => s.lines().filter((l) => l['msg'] === 'listening');

test('two workers: one listening line with the real port, kubectl sessions, /metrics summed over both', async () => {
  const shim = await serve(['--workers', '2']);
  const lines = listeningLines(shim);
  assert.equal(lines.length, 1, shim.output());
  assert.equal(lines[0]!['workers'], 2);
  assert.notEqual(new URL(shim.url).port, '0');
  await waitFor('two workers', () => childrenOf(shim.child.pid!).length === 2, 5000);

  const kube = await rig.kubeFor(shim);
  const runs = [
    ['1.33', 'one'],
    ['1.28', 'two'],
    ['1.33', 'three'],
    ['1.28', 'four'],
    ['1.33', 'five'],
    ['1.33', 'six'],
  ] as const;
  for (const [version, word] of runs) {
    const r = await runKubectl(version, ['exec', 'demo', '--', 'echo', word], { env: kube.env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.toString(), `${word}\n`);
  }
  await waitFor('the session lines', () => shim.lines().filter((l) => l['msg'] === 'session').length === 6);
  // every answer, whichever worker gave it, counts the sessions of both
  for (let i = 0; i < 4; i++) {
    const m = await get(`${shim.url}/metrics`);
    assert.equal(m.status, 200);
    assert.equal(total(m.body, 'kubeshim_sessions_total'), runs.length, m.body);
    assert.equal(total(m.body, 'kubeshim_sessions_active'), 0);
  }
  assert.equal((await get(`${shim.url}/healthz`)).body, 'ok\n');
  assert.equal((await get(`${shim.url}/readyz`)).status, 200);
  assert.equal(listeningLines(shim).length, 1);
});

test('a worker that dies is restarted and logged; the port stays, sessions go on', async () => {
  const shim = await serve(['--workers', '2']);
  await waitFor('two workers', () => childrenOf(shim.child.pid!).length === 2, 5000);
  const [victim] = childrenOf(shim.child.pid!);
  process.kill(victim!, 'SIGKILL');
  await waitFor('the restart line', () =>
    shim.lines().some((l) => l['msg'] === 'worker died; restarting it'),
  );
  await waitFor(
    'a new worker',
    () => {
      const now = childrenOf(shim.child.pid!);
      return now.length === 2 && !now.includes(victim!);
    },
    10_000,
  );
  await waitFor('it listens', () => shim.lines().filter((l) => l['msg'] === 'worker listening').length >= 1);
  const kube = await rig.kubeFor(shim);
  for (const version of ['1.33', '1.28', '1.33'] as const) {
    const r = await runKubectl(version, ['exec', 'demo', '--', 'echo', 'still'], { env: kube.env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.toString(), 'still\n');
  }
  assert.equal(listeningLines(shim).length, 1);
});

test('SIGTERM drains an open session in a worker, exits 0 and leaves no process behind', async () => {
  const shim = await serve(['--workers', '2', '--shutdown-grace', '10s']);
  await waitFor('two workers', () => childrenOf(shim.child.pid!).length === 2, 5000);
  const workers = childrenOf(shim.child.pid!);
  const k = await rig.exec(shim, '1.33', 'echo started; sleep 1.5; echo finished');
  await waitFor('the session running', () => k.output().includes('started'), 15_000);
  const shimExited = exitCode(shim.child);
  shim.child.kill('SIGTERM');
  assert.equal(await withTimeout(k.exited, 8000, 'kubectl'), 0, k.output());
  assert.match(k.output(), /finished/);
  assert.equal(await withTimeout(shimExited, 8000, 'kubeshim to exit'), 0, shim.output());
  const msgs = shim.lines().map((l) => l['msg']);
  assert.ok(msgs.includes('stopping') && msgs.includes('stopped'), msgs.join(', '));
  assert.equal(msgs.filter((m) => m === 'session').length, 1);
  assert.equal(msgs.filter((m) => m === 'worker died; restarting it').length, 0);
  await waitFor('the workers to be gone', () => workers.every((pid) => !alive(pid)), 5000);
});

test('a second signal hurries every worker: the open session ends with a Failure status', async () => {
  const shim = await serve(['--workers', '2', '--shutdown-grace', '60s']);
  const k = await rig.exec(shim, '1.33', 'echo started; sleep 30');
  await waitFor('the session running', () => k.output().includes('started'), 15_000);
  const shimExited = exitCode(shim.child);
  shim.child.kill('SIGTERM');
  await waitFor('stopping', () => shim.lines().some((l) => l['msg'] === 'stopping'));
  shim.child.kill('SIGINT');
  assert.notEqual(await withTimeout(k.exited, 8000, 'kubectl'), 0);
  assert.match(k.output(), /kubeshim is shutting down/);
  assert.equal(await withTimeout(shimExited, 8000, 'kubeshim to exit'), 0, shim.output());
});

test('a worker that cannot start fails the start: exit 1, the reason on one line, no process left', async () => {
  // the listener's files are read where it starts: in each worker (the primary checks flags only)
  const r = await runCli(
    [
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--workers',
      '2',
      '--upstream',
      rig.emu.url,
      '--tls-cert',
      '/nonexistent/tls.crt',
      '--tls-key',
      '/nonexistent/tls.key',
    ],
    rig.env(),
  );
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout.toString(), /nonexistent/);
  assert.match(r.stderr, /^kubeshim serve: .*before it listened.*\n$/);
  assert.doesNotMatch(r.stdout.toString(), /"msg":"listening"/);
});

test('--workers must be a whole number from 1, or auto', async () => {
  for (const bad of ['0', 'two', '1.5']) {
    const r = await runCli(['serve', '--workers', bad], rig.env());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--workers must be a whole number from 1, or auto/);
  }
});
