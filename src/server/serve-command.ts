/** `kubeshim serve`: flags of the contract (design.md) → startServing; runs until SIGINT/SIGTERM. */
import { parseArgs } from 'node:util';
import { createLogger } from '../observe/logger.js';
import { parseListen } from './listen-address.js';
import { type ServeConfig, startServing } from './serve.js';
import type { UpstreamMode } from './stream-handler.js';

const USAGE = `Usage: kubeshim serve [flags]

  --listen HOST:PORT          where to listen (default 127.0.0.1:8001; port 0 picks a free port)
  --upstream URL              API server URL (default: the kubeconfig context's server)
  --kubeconfig PATH           upstream TLS and credentials (default $KUBECONFIG, then ~/.kube/config)
  --context NAME              kubeconfig context (default: current-context)
  --upstream-protocol MODE    auto | spdy | websocket (default auto)
  --tls-cert FILE --tls-key FILE   serve HTTPS
  --log-level LEVEL           pino level (default info)
  --port-forward-stats        count port-forward connections and their bytes (reads relayed SPDY frames)
`;

const MODES: UpstreamMode[] = ['auto', 'spdy', 'websocket'];

/** Parsed flags, or the exit code when they are not usable (a message was written). */
function parseServeArgs(argv: string[]): (Omit<ServeConfig, 'log'> & { logLevel: string }) | number {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        listen: { type: 'string', default: '127.0.0.1:8001' },
        upstream: { type: 'string' },
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        'upstream-protocol': { type: 'string', default: 'auto' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'log-level': { type: 'string', default: 'info' },
        'port-forward-stats': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const mode = values['upstream-protocol'] as UpstreamMode;
    if (!MODES.includes(mode)) throw new Error(`--upstream-protocol must be one of ${MODES.join(', ')}`);
    return {
      listen: parseListen(values.listen),
      mode,
      upstream: values.upstream,
      kubeconfig: values.kubeconfig,
      context: values.context,
      tlsCert: values['tls-cert'],
      tlsKey: values['tls-key'],
      logLevel: values['log-level'],
      portForwardStats: values['port-forward-stats'],
    };
  } catch (err) {
    process.stderr.write(`kubeshim serve: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
}

export async function serveCommand(argv: string[]): Promise<number> {
  const parsed = parseServeArgs(argv);
  if (typeof parsed === 'number') return parsed;
  const { logLevel, ...config } = parsed;
  const log = createLogger({ level: logLevel });
  const serving = await startServing({ ...config, log }).catch((err: Error) => {
    log.fatal({ err: err.message }, 'cannot start');
    return undefined;
  });
  if (serving === undefined) return 1;
  log.info(
    { url: serving.shim.url, upstream: serving.target.describe(), upstreamProtocol: config.mode },
    'listening',
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log.info({ signal }, 'stopping');
  await serving.close();
  return 0;
}
