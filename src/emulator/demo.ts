/**
 * `kubeshim demo`: an emulated cluster (a pre-1.29 `legacy` one unless told otherwise) on a free
 * port, the shim in front of it, a kubeconfig for the shim in `.kubeshim/demo.kubeconfig`, the
 * kubectl commands to try, and log lines per session until Ctrl-C or SIGTERM.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, type Logger } from '../observe/logger.js';
import { parseListen } from '../server/listen-address.js';
import { type Serving, startServing } from '../server/serve.js';
import { type Emulator, startEmulator } from './emulator.js';
import { GENERATIONS, type Generation, generationTraits, isGeneration } from './generation.js';

const USAGE = `Usage: kubeshim demo [--generation ${GENERATIONS.join('|')}] [--listen HOST:PORT] [--log-level LEVEL]

  --generation   the cluster to emulate (default legacy: SPDY, no WebSocket v5, no tunnel)
  --listen       where the shim listens (default 127.0.0.1:0, a free port); the cluster takes a free port
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

function instructions(demo: DemoCluster, generation: Generation): string {
  return `
kubeshim demo: an emulated ${generation} cluster — ${generationTraits(generation).description}
  kubeshim    ${demo.url}   (the kubeconfig points here; it translates what the cluster cannot speak)
  API server  ${demo.upstream}
  kubeconfig  ${demo.kubeconfig}

Try, in another terminal:
  export KUBECONFIG=${demo.kubeconfig}
  kubectl get pods
  kubectl exec -it demo -- sh                  # a real local shell in the pod's directory, with a terminal
  echo hello | kubectl exec -i demo -- cat     # piped stdin
  kubectl exec demo -- sh -c 'exit 3'; echo $? # the exit code comes through
  kubectl cp ./README.md demo:README.md        # copy to the pod, and back:
  kubectl cp demo:README.md ./README.copy.md
  kubectl port-forward demo 8000:80            # then: curl http://127.0.0.1:8000/
  kubectl port-forward demo 8080:8080          # an echo server
  kubectl attach -i demo                       # the pod's main process echoes what you type
  kubectl logs -f demo

Each session is logged below: the shim's line says which protocols met (a kubectl ≥ 1.30 speaks
WebSocket v5, which this cluster refuses, so the shim translates it to SPDY), the emulator's says
what the cluster saw. Ctrl-C stops everything.

`;
}

export async function demoCommand(argv: string[]): Promise<number> {
  let values: { generation: string; listen: string; 'log-level': string; help?: boolean };
  try {
    values = parseArgs({
      args: argv,
      options: {
        generation: { type: 'string', default: 'legacy' },
        listen: { type: 'string', default: '127.0.0.1:0' },
        'log-level': { type: 'string', default: 'info' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values as typeof values;
  } catch (err) {
    process.stderr.write(`kubeshim demo: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!isGeneration(values.generation)) {
    process.stderr.write(`kubeshim demo: unknown generation '${values.generation}'\n\n${USAGE}`);
    return 2;
  }
  let listen: { host: string; port: number };
  try {
    listen = parseListen(values.listen);
  } catch (err) {
    process.stderr.write(`kubeshim demo: ${(err as Error).message}\n`);
    return 2;
  }
  const logger = createLogger({ level: values['log-level'] });
  const demo = await startDemo({
    generation: values.generation,
    host: listen.host,
    port: listen.port,
    logger,
    dir: process.cwd(),
  });
  process.stdout.write(instructions(demo, values.generation));
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  logger.info({ signal }, 'stopping the demo');
  await demo.close();
  return 0;
}
