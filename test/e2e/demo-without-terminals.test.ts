/**
 * `kubeshim demo` where node-pty is not installed (an install without a compiler): exec without a
 * terminal works, and `kubectl exec -t` is told, in the session and in the demo's log, how to get one.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runKubectl, runKubectlWithTty } from '../support/kubectl.js';
import { REPO } from '../support/processes.js';
import { waitFor, withTimeout } from '../support/wait.js';

const HIDE_NODE_PTY = join(REPO, 'test/fixtures/hide-node-pty.cjs');

test('demo without node-pty: exec works, exec -t says how to get terminals', async () => {
  const cwd = await mkdtemp(join(tmpdir(), 'kubeshim-noterm-'));
  const child = spawn(
    process.execPath,
    [
      '--require',
      HIDE_NODE_PTY,
      '--import',
      import.meta.resolve('tsx'),
      join(REPO, 'src/cli.ts'),
      'demo',
      '--listen',
      '127.0.0.1:0',
    ],
    { cwd, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise((r) => child.once('exit', r));
  try {
    await waitFor(
      'the demo instructions',
      () => {
        if (child.exitCode !== null) throw new Error(`demo exited ${child.exitCode}: ${out}`);
        return out.includes('Ctrl-C stops everything');
      },
      20_000,
    );
    const env = { PATH: process.env.PATH, HOME: cwd, KUBECONFIG: join(cwd, '.kubeshim', 'demo.kubeconfig') };

    const plain = await runKubectl('1.33', ['exec', '-i', 'demo', '--', 'cat'], {
      env,
      input: 'no pty needed\n',
      timeoutMs: 20_000,
    });
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout.toString(), 'no pty needed\n');

    const tty = await runKubectlWithTty('1.33', ['exec', '-it', 'demo', '--', 'sh'], {
      env,
      cols: 80,
      rows: 24,
      timeoutMs: 20_000,
    });
    const said = tty.stdout.toString();
    assert.notEqual(tty.code, 0, said);
    assert.match(said, /terminals \(exec -t\) need the optional module node-pty, which is not installed/);
    assert.match(said, /npm install node-pty/);
    await waitFor('the warning in the demo log', () => /"level":40.*npm install node-pty/.test(out), 5000);
    const warning = JSON.parse(out.split('\n').find((l) => l.includes('npm install node-pty'))!);
    assert.equal(warning.pod, 'demo');
    assert.deepEqual(warning.command, ['sh']);
  } finally {
    child.kill('SIGINT');
    await withTimeout(exited, 10_000, 'demo to stop').catch(() => child.kill('SIGKILL'));
    await rm(cwd, { recursive: true, force: true });
  }
});
