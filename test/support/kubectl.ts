/**
 * Real kubectl binaries for end-to-end tests. Each environment gets its own HOME (kubectl caches
 * discovery there) and kubeconfig; every run is bounded by a timeout and killed if it overstays.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';

export const KUBECTL_VERSIONS = [
  '1.27',
  '1.28',
  '1.29',
  '1.30',
  '1.31',
  '1.32',
  '1.33',
  '1.34',
  '1.35',
  '1.36',
] as const;
export type KubectlVersion = (typeof KUBECTL_VERSIONS)[number];

/** Versions that come from npm packages (scripts/fetch-release-tools.sh), not from the machine. */
const FETCHED_VERSIONS: readonly KubectlVersion[] = ['1.34', '1.35', '1.36'];

let kubectlDir: string | undefined;

/** The folder holding kubectl.1.27 … kubectl.1.33: beside the `kubectl` on PATH. */
export function kubectlDirectory(): string {
  if (kubectlDir === undefined) {
    const onPath = execFileSync('sh', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).trim();
    kubectlDir = dirname(realpathSync(onPath));
  }
  return kubectlDir;
}

/** Where scripts/fetch-release-tools.sh caches kubectl 1.34–1.36 and helm. */
export function releaseToolsDirectory(): string {
  return process.env.KUBESHIM_TOOLS_DIR ?? join(homedir(), '.cache', 'kubeshim', 'tools');
}

export function kubectlPath(version: KubectlVersion): string {
  if (!FETCHED_VERSIONS.includes(version)) return join(kubectlDirectory(), `kubectl.${version}`);
  return fetchedTool(`kubectl.${version}`);
}

/** The real helm binary, fetched beside kubectl 1.36. */
export function helmPath(): string {
  return fetchedTool('helm');
}

function fetchedTool(name: string): string {
  const file = join(releaseToolsDirectory(), name);
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: run scripts/fetch-release-tools.sh (npm run ci does)`);
  }
  return file;
}

export interface KubeEnvOptions {
  /** PEM of the CA that signed the server certificate (https servers). */
  caData?: string;
  insecureSkipTlsVerify?: boolean;
  token?: string;
  clientCertData?: string;
  clientKeyData?: string;
  namespace?: string;
}

export interface KubeEnv {
  home: string;
  kubeconfig: string;
  /** Environment for a kubectl process: isolated HOME and KUBECONFIG, no proxies. */
  env: NodeJS.ProcessEnv;
  cleanup(): Promise<void>;
}

/** A private HOME and a kubeconfig pointing at `server`. */
export async function makeKubeEnv(server: string, opts: KubeEnvOptions = {}): Promise<KubeEnv> {
  const home = await mkdtemp(join(tmpdir(), 'kubeshim-home-'));
  const kubeconfig = join(home, 'kubeconfig');
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const cluster: string[] = [`    server: ${server}`];
  if (opts.caData) cluster.push(`    certificate-authority-data: ${b64(opts.caData)}`);
  if (opts.insecureSkipTlsVerify) cluster.push('    insecure-skip-tls-verify: true');
  const user: string[] = [];
  if (opts.token) user.push(`    token: ${opts.token}`);
  if (opts.clientCertData) user.push(`    client-certificate-data: ${b64(opts.clientCertData)}`);
  if (opts.clientKeyData) user.push(`    client-key-data: ${b64(opts.clientKeyData)}`);
  const yaml = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: test',
    '  cluster:',
    ...cluster,
    'users:',
    '- name: test',
    `  user: ${user.length ? '' : '{}'}`,
    ...user,
    'contexts:',
    '- name: test',
    '  context:',
    '    cluster: test',
    '    user: test',
    `    namespace: ${opts.namespace ?? 'default'}`,
    'current-context: test',
    '',
  ].join('\n');
  await writeFile(kubeconfig, yaml, { mode: 0o600 });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    KUBECONFIG: kubeconfig,
    LANG: 'C.UTF-8',
  };
  return { home, kubeconfig, env, cleanup: () => rm(home, { recursive: true, force: true }) };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  env: NodeJS.ProcessEnv;
  /** Extra variables (e.g. KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false). */
  extraEnv?: NodeJS.ProcessEnv;
  /** Piped to stdin, then stdin is closed. Without it stdin is closed at once. */
  input?: Buffer | string | Readable;
  timeoutMs?: number;
  cwd?: string;
}

/** Run a kubectl to completion (bounded). */
export function runKubectl(version: KubectlVersion, args: string[], opts: RunOptions): Promise<RunResult> {
  return runProcess(kubectlPath(version), args, opts);
}

export function runProcess(file: string, args: string[], opts: RunOptions): Promise<RunResult> {
  const child = spawn(file, args, {
    env: { ...opts.env, ...opts.extraEnv },
    cwd: opts.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return collect(child, opts);
}

export function collect(
  child: ChildProcess,
  opts: Pick<RunOptions, 'input' | 'timeoutMs'>,
): Promise<RunResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr?.on('data', (d: Buffer) => err.push(d));
  child.stdin?.on('error', () => {}); // the process may exit before reading all of it
  if (opts.input === undefined) child.stdin?.end();
  else if (typeof opts.input === 'string' || Buffer.isBuffer(opts.input)) child.stdin?.end(opts.input);
  else if (child.stdin) opts.input.pipe(child.stdin);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `process timed out after ${timeoutMs} ms: ${child.spawnargs.join(' ')}\nstderr: ${Buffer.concat(err).toString()}`,
        ),
      );
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() });
    });
  });
}

/**
 * Run a kubectl inside script(1), which gives it a pseudo-terminal of the given size (for `-t`).
 * The terminal's output (stdout and stderr merged, with CRLF) comes back as stdout.
 */
export function runKubectlWithTty(
  version: KubectlVersion,
  args: string[],
  opts: RunOptions & { cols: number; rows: number },
): Promise<RunResult> {
  const quoted = [kubectlPath(version), ...args].map(shellQuote).join(' ');
  const inner = `stty cols ${opts.cols} rows ${opts.rows} 2>/dev/null; exec ${quoted}`;
  return runProcess('script', ['-qfec', inner, '/dev/null'], opts);
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Start a long-running kubectl (port-forward); the caller kills it with `stop()`. */
export function startKubectl(
  version: KubectlVersion,
  args: string[],
  opts: Pick<RunOptions, 'env' | 'extraEnv'>,
): { child: ChildProcess; output: () => string; stop: () => Promise<void> } {
  const child = spawn(kubectlPath(version), args, {
    env: { ...opts.env, ...opts.extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      child.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill('SIGTERM');
    });
  return { child, output: () => text, stop };
}

/**
 * The WebSocket subprotocol kubectl says it negotiated, from its `-v=9` log: 1.36 logs a structured
 * line (`"Subprotocol negotiated" protocol="v5.channel.k8s.io"`), earlier versions a sentence
 * (`The subprotocol is v5.channel.k8s.io`).
 */
export function negotiatedSubprotocol(verboseLog: string): string | undefined {
  const m =
    /"Subprotocol negotiated" protocol="([^"]*)"/.exec(verboseLog) ??
    /The subprotocol is (\S+)/.exec(verboseLog);
  return m?.[1];
}
