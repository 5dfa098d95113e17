/**
 * `kubeshim kubeconfig`: a kubeconfig whose server is the shim, for kubectl and other clients
 * (built by server/shim-kubeconfig.ts): printed, written to a file (--output), or merged into the
 * user's kubeconfig (--merge).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { dumpYaml, loadYaml } from '@kubernetes/client-node';
import { parseListen } from '../server/listen-address.js';
import {
  buildShimKubeconfig,
  type KubeconfigObject,
  renderKubeconfig,
  writePrivate,
} from '../server/shim-kubeconfig.js';
import {
  checkKubeconfigFlag,
  parseFlags,
  parseUpstreamFlag,
  reportFailure,
  UsageError,
} from './command-line.js';

const HELP = `Usage: kubeshim kubeconfig [flags]

Print a kubeconfig whose server is kubeshim. Give it the flags you give to 'kubeshim serve'.

  --listen HOST:PORT|PORT   where the shim listens (default 127.0.0.1:8001)
  --tls-cert FILE           the shim serves HTTPS with this certificate
  --ca FILE                 CA that signed --tls-cert, embedded as certificate-authority-data
                            (default: --tls-cert itself when it is self-signed)
  --token-file FILE         the shim wants this bearer token: it goes in the user entry
  --client-ca FILE          the shim wants client certificates: add yours to the user entry
  --kubeconfig PATH         source kubeconfig (default $KUBECONFIG, ~/.kube/config)
  --context NAME            source context (default its current context): the new context is
                            NAME@kubeshim, with NAME's namespace
  --upstream URL            the bastion form, without a kubeconfig: clients bring their own credentials
  --output FILE             write the kubeconfig to FILE (mode 0600) instead of stdout
  --merge                   add the context to your kubeconfig ($KUBECONFIG's first file, else
                            ~/.kube/config), replacing an earlier one of the same name
  --tls-key, --upstream-protocol, --log-level and serve's other flags are accepted and not used
`;

export interface CommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

const SERVE_FLAGS_NOT_USED = [
  'tls-key',
  'upstream-protocol',
  'log-level',
  'accept-hosts',
  'accept-paths',
  'reject-paths',
  'insecure-listen-anywhere',
  'port-forward-stats',
] as const;

/** The command: parse flags, build, write. Returns the exit code. */
export async function kubeconfigCommand(
  argv: string[],
  io: CommandIO = { stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  try {
    return kubeconfig(argv, io);
  } catch (err) {
    return reportFailure('kubeconfig', err, io.stderr);
  }
}

function kubeconfig(argv: string[], io: CommandIO): number {
  const str = { type: 'string' } as const;
  const values = parseFlags(argv, {
    listen: str,
    'tls-cert': str,
    ca: str,
    'token-file': str,
    'client-ca': str,
    kubeconfig: str,
    context: str,
    upstream: str,
    output: str,
    merge: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
    ...Object.fromEntries(
      SERVE_FLAGS_NOT_USED.map((f) => [
        f,
        f === 'insecure-listen-anywhere' || f === 'port-forward-stats' ? { type: 'boolean' } : str,
      ]),
    ),
  }) as Record<string, string | boolean | undefined>;
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const text = (k: string) => values[k] as string | undefined;
  const output = text('output');
  if (output !== undefined && values.merge) throw new UsageError('--output and --merge: choose one');
  let upstream: string | undefined;
  let listen: string | undefined;
  try {
    upstream = parseUpstreamFlag(text('upstream'));
    listen = text('listen');
    if (listen !== undefined) parseListen(listen);
  } catch (err) {
    throw err instanceof UsageError ? err : new UsageError((err as Error).message);
  }
  checkKubeconfigFlag(text('kubeconfig'));
  if (text('ca') && !text('tls-cert'))
    throw new UsageError('--ca is for --tls-cert; without it the shim serves plain http');
  const built = buildShimKubeconfig(
    {
      listen,
      tlsCert: text('tls-cert'),
      ca: text('ca'),
      tokenFile: text('token-file'),
      clientCa: text('client-ca'),
      kubeconfig: text('kubeconfig'),
      context: text('context'),
      upstream,
    },
    io.env,
  );
  for (const note of built.notes) io.stderr.write(`kubeshim kubeconfig: ${note}\n`);
  if (values.merge) {
    const file = mergeTarget(io.env);
    mergeInto(file, built.config);
    io.stderr.write(
      `kubeshim kubeconfig: wrote context ${built.name} into ${file}; use it with 'kubectl --context ${built.name}' or 'kubectl config use-context ${built.name}'\n`,
    );
    return 0;
  }
  const yaml = renderKubeconfig(built);
  if (output) {
    writePrivate(output, yaml);
    io.stderr.write(`kubeshim kubeconfig: wrote ${output}\n`);
  } else {
    io.stdout.write(yaml);
  }
  return 0;
}

/** Where --merge writes, as kubectl chooses the file it changes: $KUBECONFIG's first, else ~/.kube/config. */
function mergeTarget(env: NodeJS.ProcessEnv): string {
  const first = (env['KUBECONFIG'] ?? '').split(delimiter).find((f) => f !== '');
  return first ?? join(env['HOME'] ?? homedir(), '.kube', 'config');
}

/** Add the entries to `file` (created when missing), replacing entries of the same names. */
function mergeInto(file: string, add: KubeconfigObject): void {
  let existing: Partial<KubeconfigObject> & Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      existing = (loadYaml(readFileSync(file, 'utf8')) ?? {}) as typeof existing;
    } catch (err) {
      throw new Error(
        `--merge: ${file} is not valid YAML, left as it is: ${(err as Error).message.split('\n')[0]}`,
      );
    }
    if (typeof existing !== 'object' || Array.isArray(existing))
      throw new Error(`--merge: ${file} is not a kubeconfig, left as it is`);
  }
  const replace = <T extends { name: string }>(list: T[] | undefined, entries: T[]): T[] => [
    ...(list ?? []).filter((e) => !entries.some((n) => n.name === e.name)),
    ...entries,
  ];
  const merged = {
    ...existing,
    apiVersion: existing.apiVersion ?? 'v1',
    kind: existing.kind ?? 'Config',
    clusters: replace(existing.clusters, add.clusters),
    contexts: replace(existing.contexts, add.contexts),
    users: replace(existing.users, add.users),
    'current-context': existing['current-context'] || add['current-context'],
  };
  writePrivate(file, dumpYaml(merged), '--merge', true);
}
