/**
 * Real processes for end-to-end tests: `kubeshim serve` and other commands run from src/ through
 * tsx, and the proxies of the examples (nginx, HAProxy) on free ports. Every start is bounded by a
 * timeout and every process is stopped by the caller (t.after / finally).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { type RunResult, runProcess } from './kubectl.js';
import { freePort, waitFor } from './wait.js';

export const REPO = resolve(import.meta.dirname, '../..');
const CLI = join(REPO, 'src/cli.ts');
const NODE_ARGS = ['--import', 'tsx', CLI];

/** `kubeshim <args>` to completion (bounded), from the repository. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<RunResult> {
  return runProcess(process.execPath, [...NODE_ARGS, ...args], { env, timeoutMs, cwd: REPO });
}

export interface Running {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then SIGKILL after 3 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

function track(child: ChildProcess): Running {
  let text = '';
  child.stdout?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    output: () => text,
    stop: () => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
      child.kill('SIGTERM');
      return exited.finally(() => clearTimeout(kill));
    },
  };
}

export interface ServeProcess extends Running {
  /** From the `listening` line. */
  url: string;
  /** stdout lines that are JSON, parsed. */
  lines(): Record<string, unknown>[];
}

/**
 * `kubeshim serve --listen 127.0.0.1:0 <args>` as a real process, once it wrote its `listening` line.
 * `command` runs something else than src/ through tsx: an installed `kubeshim`, `kubectl shim`, …
 */
export interface StartServeOptions {
  command?: readonly string[];
  /** How long it may take to write its `listening` line (a primary and its workers take longer). */
  readyTimeoutMs?: number;
}

export async function startServe(
  args: string[],
  env: NodeJS.ProcessEnv,
  { command = [process.execPath, ...NODE_ARGS], readyTimeoutMs = 20_000 }: StartServeOptions = {},
): Promise<ServeProcess> {
  const [file, ...pre] = command as [string, ...string[]];
  const child = spawn(file, [...pre, 'serve', '--listen', '127.0.0.1:0', ...args], {
    env,
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const running = track(child);
  const lines = () =>
    running
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  try {
    const url = await waitFor(
      'the listening line of kubeshim serve',
      () => {
        if (child.exitCode !== null)
          throw new Error(`kubeshim serve exited ${child.exitCode}: ${running.output()}`);
        return lines().find((l) => l['msg'] === 'listening')?.['url'] as string | undefined;
      },
      readyTimeoutMs,
    );
    return { ...running, url, lines };
  } catch (err) {
    await running.stop();
    throw err;
  }
}

/** The path of a program the tests need, or an error saying how to install it. Never a skip. */
export function requireProgram(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  throw new Error(`${name} is not installed: run scripts/install-test-deps.sh (CI installs it)`);
}

export interface ProxyProcess extends Running {
  port: number;
  url: string;
}

/**
 * nginx or HAProxy in the foreground on a free port, with the configuration `config(port)` returns
 * (an example file with its addresses substituted), in a temporary directory removed at stop.
 */
export async function startProxy(
  kind: 'nginx' | 'haproxy',
  config: (port: number) => string,
): Promise<ProxyProcess> {
  const program = requireProgram(kind);
  const dir = await mkdtemp(join(tmpdir(), `kubeshim-${kind}-`));
  const port = await freePort();
  const file = join(dir, kind === 'nginx' ? 'nginx.conf' : 'haproxy.cfg');
  await writeFile(file, config(port));
  const args =
    kind === 'nginx'
      ? ['-e', 'stderr', '-p', dir, '-c', file, '-g', `daemon off; pid ${join(dir, 'nginx.pid')};`]
      : ['-db', '-f', file];
  // Output to a file, not a pipe: node's pipes are sockets, on which nginx cannot open /dev/stdout.
  const log = join(dir, 'output.log');
  const fd = openSync(log, 'w');
  const child = spawn(program, args, { cwd: dir, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const running = { ...track(child), output: () => readFileSync(log, 'utf8') };
  const stop = async () => {
    const code = await running.stop();
    await rm(dir, { recursive: true, force: true });
    return code;
  };
  try {
    await waitFor(`${kind} to listen on ${port}`, async () => {
      if (child.exitCode !== null) throw new Error(`${kind} exited ${child.exitCode}: ${running.output()}`);
      return accepts(port);
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { ...running, stop, port, url: `http://127.0.0.1:${port}` };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
