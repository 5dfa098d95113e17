/**
 * `kubeshim serve --workers N` as the user runs it (the command line, in a process of its own), with
 * the upstream protocol forced so that every session is translated. This worker only starts it,
 * reads its log (`session` lines: how the sessions ended) and stops it; the runner counts the CPU
 * of the whole process tree (primary and workers).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { V8_MEMORY_FLAGS } from '../../src/server/memory-settings.js';
import type { UpstreamMode } from '../../src/upstream/choice.js';
import { mallocEnv } from '../lib/proc.js';
import { serveWorker, workerParams } from '../lib/worker.js';

const { upstream, mode, workers } = workerParams<{ upstream: string; mode: UpstreamMode; workers: number }>();
// compiled beside the compiled bench (bench/lib/build.ts), or the source run through tsx
const compiled = extname(fileURLToPath(import.meta.url)) === '.js';
const cli = fileURLToPath(new URL(`../../src/cli.${compiled ? 'js' : 'ts'}`, import.meta.url));

const child = spawn(
  process.execPath,
  [
    ...(compiled ? [] : ['--import', 'tsx']),
    // with --serve-settings: what serve gives itself on a Node that can re-execute (Node 20 cannot)
    ...process.execArgv.filter((f) => (V8_MEMORY_FLAGS as readonly string[]).includes(f)),
    cli,
    'serve',
    '--listen',
    '127.0.0.1:0',
    '--upstream',
    upstream,
    '--upstream-protocol',
    mode,
    '--workers',
    String(workers),
    '--max-sessions',
    '0',
  ],
  {
    env: { PATH: process.env.PATH, HOME: '/nonexistent', ...mallocEnv() },
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);

// the runner gave up on this worker: take kubeshim along
process.once('SIGTERM', () => {
  child.kill('SIGKILL');
  process.exit(1);
});

let outcomes: Record<string, number> = {};
let problems: string[] = [];
let url: string | undefined;
let rest = '';
const listening = new Promise<string>((resolve, reject) => {
  child.once('exit', (code) => reject(new Error(`kubeshim serve exited ${code} before it listened`)));
  child.stdout.on('data', (d: Buffer) => {
    const lines = (rest + d.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as {
        msg: string;
        level: number;
        outcome?: string;
        url?: string;
        closeReason?: string;
      };
      if (entry.msg === 'listening' && entry.url) {
        url = entry.url;
        resolve(url);
      } else if (entry.msg === 'session') {
        outcomes[entry.outcome ?? '?'] = (outcomes[entry.outcome ?? '?'] ?? 0) + 1;
      }
      if (entry.level >= 40 && problems.length < 5)
        problems.push(`${entry.msg} ${entry.closeReason ?? ''}`.trim());
    }
  });
});

async function openSessions(): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('kubeshim_sessions_active{'))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

serveWorker(
  { url: await listening, pid: child.pid },
  {
    /** How the sessions since the last call ended, the first few warnings, and how many are open (summed over the workers). */
    sessions: async () => {
      const r = { outcomes, problems, active: await openSessions() };
      outcomes = {};
      problems = [];
      return r;
    },
  },
  async () => {
    child.kill('SIGTERM');
    await once(child, 'exit');
  },
);
