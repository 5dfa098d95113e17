/**
 * `kubeshim serve` gives itself V8's memory flags in the same re-execution that sets glibc's trim
 * threshold (src/server/memory-settings.ts; Node 22.15+): on Node 24 the process that wrote
 * `listening` is the one started and runs with the flags, also when the trim threshold was already
 * in its environment (the container image sets it). A size given in NODE_OPTIONS is kept.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { V8_MEMORY_FLAGS } from '../../src/server/memory-settings.js';
import { REPO, startServe } from '../support/processes.js';

const TOOLS = process.env.KUBESHIM_TOOLS_DIR ?? join(homedir(), '.cache/kubeshim/tools');

/** Node 24 from the tools cache, fetched by scripts/fetch-node.sh when missing. */
function node24(): string {
  const file = join(TOOLS, 'node-24');
  if (!existsSync(file)) execFileSync(join(REPO, 'scripts/fetch-node.sh'), ['24'], { stdio: 'inherit' });
  return file;
}

const command = () => [node24(), '--import', 'tsx', join(REPO, 'src/cli.ts')];

function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
}

async function serveOn24(env: NodeJS.ProcessEnv): Promise<string[]> {
  const s = await startServe(
    ['--upstream', 'http://127.0.0.1:9'],
    { PATH: process.env.PATH, HOME: '/nonexistent', ...env },
    { command: command(), readyTimeoutMs: 60_000 },
  );
  try {
    assert.equal(s.lines().find((l) => l['msg'] === 'listening')?.['pid'], s.child.pid);
    return cmdline(s.child.pid!);
  } finally {
    assert.equal(await s.stop(), 0);
  }
}

const hasAll = (args: string[]) => V8_MEMORY_FLAGS.every((f) => args.includes(f));

test('Node 24: serve runs with its V8 memory flags, same PID', async () => {
  const args = await serveOn24({});
  assert.ok(hasAll(args), args.join(' '));
});

test('Node 24: also when MALLOC_TRIM_THRESHOLD_ is already set', async () => {
  const args = await serveOn24({ MALLOC_TRIM_THRESHOLD_: '1048576' });
  assert.ok(hasAll(args), args.join(' '));
});

test('Node 24: a size given in NODE_OPTIONS is kept, the other flag still added', async () => {
  const args = await serveOn24({ NODE_OPTIONS: '--max-semi-space-size=32' });
  assert.ok(!args.some((a) => a.startsWith('--max-semi-space-size')), args.join(' '));
  assert.ok(args.includes('--initial-old-space-size=64'), args.join(' '));
});
