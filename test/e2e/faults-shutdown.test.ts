/**
 * Graceful shutdown of `kubeshim serve` (a real process) with real kubectl sessions in flight:
 * on SIGTERM (or SIGINT, or SIGHUP) it stops accepting at once, lets sessions finish within
 * `--shutdown-grace`, then ends the ones left with a Failure status that says the proxy is shutting
 * down, and exits.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { exitCode, serveRig } from '../support/serve-rig.js';
import { waitFor, withTimeout } from '../support/wait.js';

const rig = serveRig();
const serve = (grace: string) => rig.serve(['--shutdown-grace', grace]);

function refused(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(Number(new URL(url).port), '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

test('SIGTERM: no new connections, sessions in flight finish within the grace period, then exit 0', async () => {
  const shim = await serve('10s');
  const sessions = [
    await rig.exec(shim, '1.33', 'echo started; sleep 1.5; echo finished'),
    await rig.exec(shim, '1.28', 'echo started; sleep 1.5; echo finished'),
  ];
  for (const s of sessions) await waitFor('sessions running', () => s.output().includes('started'), 15_000);
  const shimExited = exitCode(shim.child);
  shim.child.kill('SIGTERM');
  await waitFor('the listener to close', () => refused(shim.url), 1000);
  for (const s of sessions) {
    assert.equal(await withTimeout(s.exited, 5000, 'kubectl'), 0, s.output());
    assert.match(s.output(), /finished/);
  }
  assert.equal(await withTimeout(shimExited, 3000, 'kubeshim to exit'), 0);
  const msgs = shim.lines().map((l) => l['msg']);
  assert.ok(msgs.includes('stopping') && msgs.includes('stopped'), msgs.join(', '));
  assert.equal(msgs.filter((m) => m === 'session').length, 2);
});

test('sessions still open when the grace period ends get a Failure status saying so; kubectl exits non-zero', async () => {
  const shim = await serve('1s');
  const sessions = [
    await rig.exec(shim, '1.33', 'echo started; sleep 30'),
    await rig.exec(shim, '1.28', 'echo started; sleep 30'),
  ];
  for (const s of sessions) await waitFor('sessions running', () => s.output().includes('started'), 15_000);
  const shimExited = exitCode(shim.child);
  const signalledAt = performance.now();
  shim.child.kill('SIGTERM');
  for (const s of sessions) {
    const code = await withTimeout(s.exited, 5000, 'kubectl');
    const ms = performance.now() - signalledAt;
    assert.notEqual(code, 0);
    assert.match(s.output(), /kubeshim is shutting down/);
    assert.ok(ms >= 900 && ms < 2500, `kubectl ended ${ms.toFixed(0)} ms after SIGTERM`);
  }
  assert.equal(await withTimeout(shimExited, 4000, 'kubeshim to exit'), 0);
  const lines = shim.lines().filter((l) => l['msg'] === 'session');
  assert.equal(lines.length, 2);
  for (const l of lines) assert.match(String(l['closeReason']), /shutting down/);
});

test('SIGHUP (the terminal closed, the ssh session dropped) stops as SIGTERM does: a cut session is a Failure, never exit 0', async () => {
  const shim = await serve('1s');
  // kubectl before 1.30, relayed over SPDY, read the bare end of a killed shim as success
  const sessions = [
    await rig.exec(shim, '1.28', 'echo started; sleep 30'),
    await rig.exec(shim, '1.33', 'echo started; sleep 30'),
  ];
  for (const s of sessions) await waitFor('sessions running', () => s.output().includes('started'), 15_000);
  const shimExited = exitCode(shim.child);
  shim.child.kill('SIGHUP');
  for (const s of sessions) {
    assert.notEqual(await withTimeout(s.exited, 5000, 'kubectl'), 0, s.output());
    assert.match(s.output(), /kubeshim is shutting down/);
  }
  assert.equal(await withTimeout(shimExited, 4000, 'kubeshim to exit'), 0);
  assert.equal(shim.lines().find((l) => l['msg'] === 'stopping')?.['signal'], 'SIGHUP');
});

test('a second signal ends the grace period at once', async () => {
  const shim = await serve('60s');
  const s = await rig.exec(shim, '1.33', 'echo started; sleep 30');
  await waitFor('session running', () => s.output().includes('started'), 15_000);
  const shimExited = exitCode(shim.child);
  shim.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  const hurriedAt = performance.now();
  shim.child.kill('SIGINT');
  assert.notEqual(await withTimeout(s.exited, 3000, 'kubectl'), 0);
  assert.match(s.output(), /kubeshim is shutting down/);
  assert.equal(await withTimeout(shimExited, 4000, 'kubeshim to exit'), 0);
  assert.ok(performance.now() - hurriedAt < 3000);
});
