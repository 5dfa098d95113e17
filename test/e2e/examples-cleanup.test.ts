/**
 * Examples and the README's way of running from a checkout leave nothing behind: each runs in a
 * process group of its own, and once it is over (ended by itself, or stopped as a user stops it)
 * no process of that group is left. A leftover is listed and then killed, so that a failure does
 * not leak into later tests.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { kubectlPath } from '../support/kubectl.js';
import { REPO, requireProgram } from '../support/processes.js';
import { waitFor, withTimeout } from '../support/wait.js';

/** Processes whose process group is `pgid`, with their command lines. */
function groupMembers(pgid: number): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // the fields after the command name (in parentheses): state, ppid, pgrp, …
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' || Number(fields[2]) !== pgid) continue;
      out.push({
        pid: Number(entry),
        cmd: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' '),
      });
    } catch {
      // gone while we looked
    }
  }
  return out;
}

/** Run `argv` in a new process group; `stop` (optional) decides when and how to end it. */
async function runInGroup(
  argv: string[],
  env: NodeJS.ProcessEnv,
  stop?: (output: () => string, pid: number) => Promise<void>,
): Promise<{ code: number | null; output: string; pgid: number }> {
  const child = spawn(argv[0]!, argv.slice(1), {
    env,
    cwd: REPO,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code, signal) => r(code ?? (signal ? 128 : null))),
  );
  const pgid = child.pid!;
  try {
    if (stop) await stop(() => output, pgid);
    const code = await withTimeout(exited, 90_000, `${argv.join(' ')} to end`);
    return { code, output, pgid };
  } catch (err) {
    process.kill(-pgid, 'SIGKILL');
    throw err;
  }
}

/** Nothing of the group is left once `grace` is over; leftovers are killed and named. */
async function assertNothingLeft(pgid: number, what: string): Promise<void> {
  try {
    await waitFor(`${what} to leave no process`, () => groupMembers(pgid).length === 0, 5000);
  } catch {
    const left = groupMembers(pgid);
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
    assert.fail(
      `${what} left ${left.length} processes running:\n${left.map((p) => `  ${p.pid} ${p.cmd}`).join('\n')}`,
    );
  }
}

const ENV = { PATH: process.env.PATH, HOME: '/nonexistent', KUBECTL: '' };

test('examples/two-shims.sh: nothing is left when it ends by itself', async () => {
  requireProgram('nginx');
  const r = await runInGroup([join(REPO, 'examples/two-shims.sh')], { ...ENV, KUBECTL: kubectlPath('1.27') });
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /hello through two shims/);
  await assertNothingLeft(r.pgid, 'two-shims.sh');
});

test('examples/two-shims.sh with KEEP=1: nothing is left after SIGTERM', async () => {
  requireProgram('nginx');
  const r = await runInGroup(
    [join(REPO, 'examples/two-shims.sh')],
    { ...ENV, KUBECTL: kubectlPath('1.27'), KEEP: '1' },
    async (output, pid) => {
      await waitFor('it to run', () => output().includes('Ctrl-C here stops everything'), 60_000);
      process.kill(pid, 'SIGTERM'); // the script only, as `kill PID` does
    },
  );
  assert.equal(r.code, 130, r.output);
  await assertNothingLeft(r.pgid, 'two-shims.sh (KEEP=1, SIGTERM)');
});

test("the README's way from a checkout: `node --import tsx src/cli.ts serve &` then `kill $!` stops it", async () => {
  const script = [
    'node --import tsx src/cli.ts serve --listen 127.0.0.1:0 --upstream http://127.0.0.1:1 > "$LOG" 2>&1 &',
    'for i in $(seq 200); do grep -q \'"msg":"listening"\' "$LOG" && break; sleep 0.1; done',
    'grep -q \'"msg":"listening"\' "$LOG" || exit 3',
    'kill $!',
    'wait $!',
  ].join('\n');
  const dir = mkdtempSync(join(tmpdir(), 'kubeshim-readme-'));
  try {
    const log = join(dir, 'serve.log');
    const r = await runInGroup(['sh', '-c', script], { ...ENV, LOG: log });
    assert.equal(r.code, 0, `${r.output}\n${readFileSync(log, 'utf8')}`);
    assert.match(readFileSync(log, 'utf8'), /"msg":"stopped"/);
    await assertNothingLeft(r.pgid, 'node --import tsx src/cli.ts serve');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
