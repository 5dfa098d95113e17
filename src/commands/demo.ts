/**
 * `kubeshim demo`: an emulated cluster (a pre-1.29 `legacy` one unless told otherwise) on a free
 * port, the shim in front of it, a kubeconfig for the shim in `.kubeshim/demo.kubeconfig`, the
 * kubectl commands to try, and log lines per session until Ctrl-C or SIGTERM.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { type Emulator, startEmulator } from '../emulator/emulator.js';
import { GENERATIONS, type Generation, generationTraits, isGeneration } from '../emulator/generation.js';
import { createLogger, type Logger } from '../observe/logger.js';
import { parseListen } from '../server/listen-address.js';
import { type Serving, startServing } from '../server/serve.js';
import { parseFlags, parseLogLevel, reportFailure, UsageError } from './command-line.js';

const USAGE = `Usage: kubeshim demo [--generation ${GENERATIONS.join('|')}] [--listen HOST:PORT|PORT] [--log-level LEVEL]

  --generation   the cluster to emulate (default legacy: SPDY, no WebSocket v5, no tunnel)
  --listen       where the shim listens (default 127.0.0.1:0, a free port; PORT alone is
                 127.0.0.1:PORT); the cluster takes a free port
  --log-level    pino level (default info)
`;

export interface DemoOptions {
  generation: Generation;
  host: string;
  port: number;
  logger: Logger;
  /** Where `.kubeshim/demo.kubeconfig` goes. */
  dir: string;
}

export interface DemoCluster {
  /** The server kubectl should use: the shim. */
  url: string;
  /** The emulated API server behind the shim. */
  upstream: string;
  /** The kubeconfig written for it. */
  kubeconfig: string;
  emulator: Emulator;
  close(): Promise<void>;
}

/**
 * Start the demo: the emulated cluster on a free loopback port, the shim (auto) in front of it on
 * `host:port`, and a kubeconfig pointing at the shim.
 */
export async function startDemo(opts: DemoOptions): Promise<DemoCluster> {
  const emulator = await startEmulator({
    generation: opts.generation,
    host: '127.0.0.1',
    port: 0,
    logger: opts.logger,
  });
  let serving: Serving | undefined;
  try {
    // no kubeconfig of the user's: the demo cluster needs no credentials
    serving = await startServing(
      {
        listen: { host: opts.host, port: opts.port },
        mode: 'auto',
        upstream: emulator.url,
        log: opts.logger.child({ component: 'shim' }),
      },
      { HOME: '/nonexistent' },
    );
    const url = serving.shim.url;
    const kubeconfig = await writeKubeconfig(opts.dir, url);
    const shim = serving;
    return {
      url,
      upstream: emulator.url,
      kubeconfig,
      emulator,
      close: async () => {
        await shim.close();
        await emulator.close();
      },
    };
  } catch (err) {
    await serving?.close();
    await emulator.close();
    throw err;
  }
}

async function writeKubeconfig(dir: string, server: string): Promise<string> {
  const folder = join(dir, '.kubeshim');
  await mkdir(folder, { recursive: true });
  const path = join(folder, 'demo.kubeconfig');
  const yaml = `apiVersion: v1
kind: Config
clusters:
- name: kubeshim-demo
  cluster:
    server: ${server}
users:
- name: kubeshim-demo
  user: {}
contexts:
- name: kubeshim-demo
  context:
    cluster: kubeshim-demo
    user: kubeshim-demo
    namespace: default
current-context: kubeshim-demo
`;
  await writeFile(path, yaml, { mode: 0o600 });
  return path;
}

function instructions(demo: DemoCluster, generation: Generation, cwd: string): string {
  const pod = demo.emulator.cluster.pods[0]!;
  // a file of the user's to copy: README.md when there is one here, else the demo's own kubeconfig
  const sample = existsSync(join(cwd, 'README.md')) ? 'README.md' : relative(cwd, demo.kubeconfig);
  const base = sample.split('/').at(-1)!;
  const copy = base.replace(/(\.[^.]*)?$/, '.copy$1');
  return `
kubeshim demo: an emulated ${generation} cluster — ${generationTraits(generation).description}
  kubeshim    ${demo.url}   (the kubeconfig points here; it translates what the cluster cannot speak)
  API server  ${demo.upstream}
  kubeconfig  ${demo.kubeconfig}

Note: exec and attach run real processes on this machine, as you (${userInfo().username}), in
${pod.dir}. The pod is a directory, not a container.

Try, in another terminal:
  export KUBECONFIG=${demo.kubeconfig}
  kubectl get pods
  kubectl exec -it demo -- sh                  # a real local shell in the pod's directory, with a terminal
  echo hello | kubectl exec -i demo -- cat     # piped stdin
  kubectl exec demo -- sh -c 'exit 3'; echo $? # the exit code comes through
  kubectl cp ${sample} demo:${base}   # copy to the pod, and back:
  kubectl cp demo:${base} ./${copy}
  kubectl port-forward demo 8000:80            # then: curl http://127.0.0.1:8000/
  kubectl port-forward demo 8080:8080          # an echo server
  kubectl attach -i demo                       # the pod's main process echoes what you type
  kubectl logs -f demo

Each session is logged below: the shim's line says which protocols met (a kubectl ≥ 1.30 speaks
WebSocket v5, which this cluster refuses, so the shim translates it to SPDY), the emulator's says
what the cluster saw. Ctrl-C stops everything.

`;
}

/**
 * Log lines held back until release(), so that the banner comes first, then straight through.
 * Start-up writes a handful of lines; nothing else is written before the banner.
 */
class HeldLines extends Writable {
  private held: Buffer[] | undefined = [];

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.held) this.held.push(chunk);
    else process.stdout.write(chunk);
    done();
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const chunk of held) process.stdout.write(chunk);
  }
}

export async function demoCommand(argv: string[]): Promise<number> {
  try {
    return await demo(argv);
  } catch (err) {
    return reportFailure('demo', err);
  }
}

async function demo(argv: string[]): Promise<number> {
  const values = parseFlags(argv, {
    generation: { type: 'string', default: 'legacy' },
    listen: { type: 'string', default: '127.0.0.1:0' },
    'log-level': { type: 'string', default: 'info' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const generation = values.generation;
  if (!isGeneration(generation))
    throw new UsageError(`--generation '${generation}' is not one of ${GENERATIONS.join(', ')}`);
  let listen: { host: string; port: number };
  try {
    listen = parseListen(values.listen);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const held = new HeldLines();
  const logger = createLogger({
    level: parseLogLevel(values['log-level']),
    destination: process.stdout.isTTY ? undefined : held,
  });
  const cwd = process.cwd();
  const demo = await startDemo({ generation, host: listen.host, port: listen.port, logger, dir: cwd });
  process.stdout.write(instructions(demo, generation, cwd));
  held.release();
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGHUP', () => resolve('SIGHUP')); // the terminal closed
  });
  logger.info({ signal }, 'stopping the demo');
  await demo.close();
  return 0;
}
