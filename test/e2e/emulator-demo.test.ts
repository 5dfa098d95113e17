/**
 * `kubeshim demo` as a newcomer runs it: a legacy cluster on a free port, a kubeconfig in
 * `.kubeshim/`, the commands to try, one log line per session, and a clean stop on Ctrl-C.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { runKubectl, runProcess } from '../support/kubectl.js';
import { waitFor, withTimeout } from '../support/wait.js';

const CLI = resolve('src/cli.ts');
const TSX = resolve('node_modules/.bin/tsx');

let cwd: string;
let home: string;
before(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'kubeshim-demo-'));
  home = await mkdtemp(join(tmpdir(), 'kubeshim-demo-home-'));
});
after(async () => {
  await rm(cwd, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
});

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => child.once('exit', (code) => r(code)));
}

test('demo: kubeconfig, instructions, sessions logged, Ctrl-C stops it', async () => {
  const child = spawn(TSX, [CLI, 'demo', '--listen', '127.0.0.1:0'], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const done = exited(child);
  try {
    const kubeconfig = join(cwd, '.kubeshim', 'demo.kubeconfig');
    await waitFor('the instructions', () => out.includes('Ctrl-C stops everything'), 20_000);
    assert.ok(existsSync(kubeconfig));
    for (const cmd of [
      'kubectl exec -it demo',
      'kubectl cp',
      'kubectl port-forward',
      `KUBECONFIG=${kubeconfig}`,
    ])
      assert.ok(out.includes(cmd), cmd);
    assert.match(out, /"generation":"legacy"/);
    // the banner first: no JSON line before it
    const firstJson = stdout.split('\n').findIndex((l) => l.startsWith('{'));
    const banner = stdout.split('\n').findIndex((l) => l.startsWith('kubeshim demo:'));
    assert.ok(
      banner >= 0 && (firstJson === -1 || banner < firstJson),
      `banner before any JSON line:\n${stdout}`,
    );
    assert.match(
      out,
      new RegExp(`exec and attach run real processes on this machine, as you \\(${userInfo().username}\\)`),
    );
    // the cp hint names a file that exists here (this directory has no README.md), and works as written
    const cp = /^ {2}kubectl cp (\S+) (demo:\S+)/m.exec(out);
    assert.ok(cp, 'a kubectl cp hint');
    assert.ok(existsSync(join(cwd, cp[1]!)), `${cp[1]} exists`);
    const copied = await runKubectl('1.36', ['cp', cp[1]!, cp[2]!], {
      env: { PATH: process.env.PATH, HOME: home, KUBECONFIG: kubeconfig },
      cwd,
      timeoutMs: 20_000,
    });
    assert.equal(copied.code, 0, copied.stderr);

    const env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: kubeconfig };
    const r = await runKubectl('1.33', ['exec', '-i', 'demo', '--', 'cat'], {
      env,
      input: 'demo\n',
      timeoutMs: 20_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'demo\n');
    await waitFor('the session line', () => /"msg":"session"/.test(out), 5000);
    const line = JSON.parse(out.split('\n').find((l) => l.includes('"msg":"session"'))!);
    assert.equal(line.protocol, 'v4.channel.k8s.io', 'a legacy cluster: kubectl 1.33 fell back to SPDY');

    child.kill('SIGINT');
    assert.equal(await withTimeout(done, 10_000, 'demo to stop'), 0);
    assert.match(out, /emulator stopped/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('demo: a bad flag is a usage error', async () => {
  const r = await runProcess(TSX, [CLI, 'demo', '--generation', 'ancient'], {
    env: process.env,
    cwd,
    timeoutMs: 20_000,
  });
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    "kubeshim demo: --generation 'ancient' is not one of legacy, spdy, modern, websocket; see 'kubeshim demo --help'\n",
  );
});
