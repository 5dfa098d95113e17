/**
 * `kubeshim kubeconfig`: print a kubeconfig whose server is the shim, for kubectl and other clients.
 *
 * The context name and namespace come from the source kubeconfig's selected context (the one
 * `serve` would use). When that context's user has credentials, the shim injects them, so the
 * printed user holds only a placeholder token: no token, key or plugin from the source is copied. In the bastion
 * form (--upstream, no kubeconfig) or with a source user without credentials, the clients' own
 * credentials pass through the shim, and the user entry is left for the user to fill in.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { loadKubeconfig, userHasCredentials } from '../upstream/kubeconfig.js';
import { parseListen } from './listen-address.js';

const HELP = `Usage: kubeshim kubeconfig [flags]

Print a kubeconfig whose server is kubeshim. Give the flags you give to 'kubeshim serve'.

  --listen HOST:PORT   where the shim listens (default 127.0.0.1:8001)
  --tls-cert FILE      the shim serves HTTPS with this certificate
  --ca FILE            CA that signed --tls-cert, embedded as certificate-authority-data
                       (default: --tls-cert itself when it is self-signed)
  --kubeconfig PATH    source kubeconfig (default $KUBECONFIG, ~/.kube/config)
  --context NAME       source context (default its current context): name and namespace are copied
  --upstream URL       the bastion form, without a kubeconfig: clients bring their own credentials
  --output FILE        write the kubeconfig to FILE (mode 0600) instead of stdout
  --tls-key, --upstream-protocol, --log-level   accepted, as for serve, and not used
`;

/**
 * The user's token when the shim injects credentials. Not a secret: kubectl prompts for a password
 * when a TLS server's user has no credential at all, and the shim drops the client's Authorization.
 */
export const PLACEHOLDER_TOKEN = 'kubeshim-injects-credentials';

export interface CommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

export interface ShimKubeconfigOptions {
  listen?: string;
  tlsCert?: string;
  ca?: string;
  kubeconfig?: string;
  context?: string;
  upstream?: string;
}

/** The command: parse flags, render, write. Returns the exit code; throws a sentence on failure. */
export async function kubeconfigCommand(
  argv: string[],
  io: CommandIO = { stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        listen: { type: 'string' },
        'tls-cert': { type: 'string' },
        ca: { type: 'string' },
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        upstream: { type: 'string' },
        output: { type: 'string' },
        'tls-key': { type: 'string' },
        'upstream-protocol': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.stderr.write(`kubeshim kubeconfig: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const str = (k: string) => values[k] as string | undefined;
  const { yaml, notes } = renderShimKubeconfig(
    {
      listen: str('listen'),
      tlsCert: str('tls-cert'),
      ca: str('ca'),
      kubeconfig: str('kubeconfig'),
      context: str('context'),
      upstream: str('upstream'),
    },
    io.env,
  );
  for (const note of notes) io.stderr.write(`kubeshim kubeconfig: ${note}\n`);
  const output = str('output');
  if (output) {
    writeFileSync(output, yaml, { mode: 0o600 });
    io.stderr.write(`kubeshim kubeconfig: wrote ${output}\n`);
  } else {
    io.stdout.write(yaml);
  }
  return 0;
}

/** The kubeconfig text, and notes for the person running the command (stderr). */
export function renderShimKubeconfig(
  opts: ShimKubeconfigOptions,
  env: NodeJS.ProcessEnv = process.env,
): { yaml: string; notes: string[] } {
  if (opts.ca && !opts.tlsCert)
    throw new Error('--ca is for --tls-cert; without it the shim serves plain http');
  const notes: string[] = [];
  const server = shimUrl(opts);
  const caData = opts.tlsCert ? certificateAuthority(opts.tlsCert, opts.ca, server, notes) : undefined;

  const source = loadKubeconfig({ kubeconfig: opts.kubeconfig, context: opts.context }, env);
  if (!source && !opts.upstream) {
    throw new Error(
      'no kubeconfig found (--kubeconfig, $KUBECONFIG, ~/.kube/config): pass --kubeconfig PATH or --upstream URL',
    );
  }
  const contextName = source?.contextName ?? 'kubeshim';
  const namespace = source?.context.namespace;
  const injects = source !== undefined && userHasCredentials(source);

  const lines = [
    `# kubeconfig for kubeshim at ${server.origin}, written by 'kubeshim kubeconfig'`,
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: kubeshim',
    '  cluster:',
    `    server: ${scalar(server.origin)}`,
    ...(caData ? [`    certificate-authority-data: ${caData}`] : []),
    'contexts:',
    `- name: ${scalar(contextName)}`,
    '  context:',
    '    cluster: kubeshim',
    '    user: kubeshim',
    ...(namespace ? [`    namespace: ${scalar(namespace)}`] : []),
    `current-context: ${scalar(contextName)}`,
    'users:',
    '- name: kubeshim',
    ...(injects
      ? [
          `  # kubeshim adds the credentials of context ${JSON.stringify(contextName)} itself and drops this`,
          '  # placeholder, which is here only so that kubectl does not prompt for a password.',
          '  user:',
          `    token: ${PLACEHOLDER_TOKEN}`,
        ]
      : [
          '  # Your credentials pass through kubeshim to the API server: fill them in, for example',
          '  #   token: <bearer token>',
          '  # or an exec plugin (client certificates end at the shim TLS listener and do not pass):',
          '  #   exec: {apiVersion: client.authentication.k8s.io/v1, command: <plugin>, interactiveMode: IfAvailable}',
          '  user: {}',
        ]),
    '',
  ];
  return { yaml: lines.join('\n'), notes };
}

/** http(s)://HOST:PORT of the shim; a wildcard listen address is reached on the loopback. */
function shimUrl(opts: ShimKubeconfigOptions): URL {
  const { host, port } = parseListen(opts.listen ?? '127.0.0.1:8001');
  if (port === 0)
    throw new Error('--listen with port 0 picks a port at start-up; give the port the shim listens on');
  const reach = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const hostPart = isIP(reach) === 6 ? `[${reach}]` : reach;
  return new URL(`${opts.tlsCert ? 'https' : 'http'}://${hostPart}:${port}`);
}

/** base64 PEM for certificate-authority-data: --ca, else a self-signed --tls-cert; else none. */
function certificateAuthority(
  certFile: string,
  caFile: string | undefined,
  server: URL,
  notes: string[],
): string | undefined {
  const cert = readCertificate(certFile, '--tls-cert');
  const host = server.hostname.replace(/^\[|\]$/g, '');
  if (!(isIP(host) ? cert.checkIP(host) : cert.checkHost(host)))
    notes.push(`${certFile} does not name ${host}: kubectl will refuse the shim's certificate`);
  if (caFile) {
    const pem = readFileSync(caFile, 'utf8');
    const ca = readCertificate(caFile, '--ca');
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey))
      notes.push(`${certFile} is not signed by ${caFile}: kubectl will refuse the shim's certificate`);
    return Buffer.from(pem).toString('base64');
  }
  if (cert.checkIssued(cert) && cert.verify(cert.publicKey))
    return Buffer.from(cert.toString()).toString('base64');
  notes.push(`no --ca: kubectl will check ${certFile} against the system's trusted CAs`);
  return undefined;
}

function readCertificate(file: string, flag: string): X509Certificate {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new Error(`${flag} ${file} cannot be read: ${(err as Error).message}`);
  }
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new Error(`${flag} ${file} is not a PEM certificate: ${(err as Error).message}`);
  }
}

/** A YAML scalar: plain when it can only read as a string, else a JSON string (JSON strings are YAML). */
function scalar(s: string): string {
  const plain = /^[A-Za-z][\w./:@-]*$/.test(s) && !/^(true|false|null|yes|no|on|off|y|n)$/i.test(s);
  return plain ? s : JSON.stringify(s);
}
