/**
 * `kubeshim serve` re-executes itself with glibc's MALLOC_TRIM_THRESHOLD_ set where Node has
 * process.execve (22.15+): on Node 24 the process that wrote `listening` is the one started (same
 * PID), its environment has the setting, its workers inherit it, stderr stays clean and SIGTERM still
 * stops it gracefully. On this machine's Node 20 nothing changes. A value already set is kept.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { REPO } from '../support/processes.js';
import { waitFor, withTimeout } from '../support/wait.js';

const TOOLS = process.env.KUBESHIM_TOOLS_DIR ?? join(homedir(), '.cache/kubeshim/tools');

/** Node 24 from the tools cache, fetched by scripts/fetch-node.sh when missing. */
function node24(): string {
  const file = join(TOOLS, 'node-24');
  if (!existsSync(file)) execFileSync(join(REPO, 'scripts/fetch-node.sh'), ['24'], { stdio: 'inherit' });
  return file;
}

const stops: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const s of stops) await s();
});

interface Started {
  pid: number;
  listening: Record<string, unknown>;
  stderr: () => string;
  lines: () => Record<string, unknown>[];
  exited: Promise<number | null>;
}

async function serve(node: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Started> {
  const child = spawn(
    node,
    ['--import', 'tsx', join(REPO, 'src/cli.ts'), 'serve', '--listen', '127.0.0.1:0', ...args],
    {
      cwd: REPO,
      env: { PATH: process.env.PATH, HOME: '/nonexistent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  stops.push(async () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    await exited;
  });
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const listening = await waitFor(
    'the listening line',
    () => {
      if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${out}${err}`);
      return lines().find((l) => l['msg'] === 'listening');
    },
    60_000,
  );
  return { pid: child.pid!, listening, stderr: () => err, lines, exited };
}

function environ(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

const UPSTREAM = ['--upstream', 'http://127.0.0.1:9'];

test('Node 24: same PID, the setting in its environment and its workers, clean stderr, SIGTERM exits 0', async () => {
  const s = await serve(node24(), [...UPSTREAM, '--workers', '2']);
  assert.equal(s.listening['pid'], s.pid);
  assert.ok(environ(s.pid).includes('MALLOC_TRIM_THRESHOLD_=67108864'), environ(s.pid).join(' '));
  // the workers run the same script (tsx's esbuild service may be a child of the primary too)
  const workers = childrenOf(s.pid).filter((c) => cmdline(c).includes('src/cli.ts'));
  assert.equal(workers.length, 2, childrenOf(s.pid).map(cmdline).join('\n'));
  for (const w of workers) assert.ok(environ(w).includes('MALLOC_TRIM_THRESHOLD_=67108864'));
  process.kill(s.pid, 'SIGTERM');
  assert.equal(await withTimeout(s.exited, 20_000, 'serve to exit'), 0);
  assert.ok(s.lines().some((l) => l['msg'] === 'stopped'));
  assert.equal(s.stderr(), '');
});

test('Node 24: a value already set is kept', async () => {
  const s = await serve(node24(), UPSTREAM, { MALLOC_TRIM_THRESHOLD_: '1048576' });
  assert.ok(environ(s.pid).includes('MALLOC_TRIM_THRESHOLD_=1048576'));
  process.kill(s.pid, 'SIGTERM');
  assert.equal(await withTimeout(s.exited, 20_000, 'serve to exit'), 0);
});

test('Node 20 (no process.execve): serve runs as it was started, without the setting', async () => {
  assert.equal(
    typeof (process as { execve?: unknown }).execve,
    'undefined',
    'this test wants a Node < 22.15',
  );
  const s = await serve(process.execPath, UPSTREAM);
  assert.equal(s.listening['pid'], s.pid);
  assert.ok(!environ(s.pid).some((e) => e.startsWith('MALLOC_TRIM_THRESHOLD_=')));
  process.kill(s.pid, 'SIGTERM');
  assert.equal(await withTimeout(s.exited, 20_000, 'serve to exit'), 0);
});
