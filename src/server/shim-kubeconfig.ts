/**
 * The kubeconfig whose server is the shim, built from the listener's flags: for `kubeshim
 * kubeconfig` (commands/kubeconfig.ts) and for `serve --secure-local` (secure-local.ts).
 *
 * The context is named `<source context>@kubeshim` (its cluster and user too), so that it never
 * collides with the source's own names when both files are in $KUBECONFIG; the namespace is the
 * source context's. When that context's user has credentials, the shim injects them, so the user
 * holds only a placeholder token: no token, key or plugin from the source is copied. With the
 * listener's --token-file, the user holds that token instead (the shim checks it and never sends
 * it upstream). In the bastion form (--upstream, no kubeconfig) or with a source user without
 * credentials, the clients' own credentials pass through the shim, and the user entry is left for
 * the user to fill in.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { replacePrivately } from '../io/private-file.js';
import { clientNode } from '../upstream/client-node.js';
import { loadKubeconfig, userHasCredentials } from '../upstream/kubeconfig.js';
import { fileProblem, readFlagFile } from './flag-file.js';
import { parseListen } from './listen-address.js';
import { readCertificate } from './tls-files.js';

/**
 * The user's token when the shim injects credentials. Not a secret: kubectl prompts for a password
 * when a TLS server's user has no credential at all, and the shim drops the client's Authorization.
 */
export const PLACEHOLDER_TOKEN = 'kubeshim-injects-credentials';

export interface ShimKubeconfigOptions {
  listen?: string;
  tlsCert?: string;
  /** Used with tlsCert only (the kubeconfig command refuses it alone). */
  ca?: string;
  /** The listener's --token-file: its token goes in the user entry. */
  tokenFile?: string;
  /** The listener's --client-ca: clients need a certificate, which is not made here. */
  clientCa?: string;
  kubeconfig?: string;
  context?: string;
  upstream?: string;
}

/** A kubeconfig as kubectl reads it (the fields written here). */
export interface KubeconfigObject {
  apiVersion: 'v1';
  kind: 'Config';
  clusters: { name: string; cluster: Record<string, string> }[];
  contexts: { name: string; context: Record<string, string> }[];
  users: { name: string; user: Record<string, string> }[];
  'current-context': string;
}

export interface ShimKubeconfig {
  config: KubeconfigObject;
  /** The context (and cluster and user) name. */
  name: string;
  /** Comment lines for the written file: what the user entry is. */
  comments: string[];
  /** Notes for the person running the command (stderr). */
  notes: string[];
}

/** The kubeconfig object for a shim with these listener flags, and what to tell the user. */
export function buildShimKubeconfig(
  opts: ShimKubeconfigOptions,
  env: NodeJS.ProcessEnv = process.env,
): ShimKubeconfig {
  const notes: string[] = [];
  const server = shimUrl(opts);
  const caData = opts.tlsCert ? certificateAuthority(opts.tlsCert, opts.ca, server, notes) : undefined;

  const source = loadKubeconfig({ kubeconfig: opts.kubeconfig, context: opts.context }, env);
  if (!source && !opts.upstream) {
    throw new Error(
      'no kubeconfig found (--kubeconfig, $KUBECONFIG, ~/.kube/config): pass --kubeconfig PATH or --upstream URL',
    );
  }
  const name = source ? `${source.contextName}@kubeshim` : 'kubeshim';
  const namespace = source?.context.namespace;
  const injects = source !== undefined && userHasCredentials(source);

  let user: Record<string, string>;
  let comments: string[];
  if (opts.tokenFile !== undefined) {
    const token = readFlagFile('--token-file', opts.tokenFile).toString('utf8').trim();
    if (token === '') throw new Error(`--token-file ${opts.tokenFile} is empty`);
    user = { token };
    comments = ["The token is the shim's own (--token-file): it checks it and never sends it upstream."];
    if (!opts.tlsCert)
      notes.push('--token-file without --tls-cert: kubectl sends bearer tokens only over https');
  } else if (injects) {
    user = { token: PLACEHOLDER_TOKEN };
    comments = [
      `kubeshim adds the credentials of context "${source.contextName}" itself and drops the token below,`,
      'a placeholder that is here only so that kubectl does not prompt for a password.',
    ];
  } else {
    user = {};
    comments = [
      'Your credentials pass through kubeshim to the API server: fill them in, for example',
      '  token: <bearer token>',
      'or an exec plugin (client certificates end at the shim TLS listener and do not pass):',
      '  exec: {apiVersion: client.authentication.k8s.io/v1, command: <plugin>, interactiveMode: IfAvailable}',
    ];
  }
  if (opts.clientCa !== undefined) {
    readFlagFile('--client-ca', opts.clientCa);
    notes.push(
      `the shim wants a client certificate signed by ${opts.clientCa}: add client-certificate and client-key to user ${name}`,
    );
  }
  const config: KubeconfigObject = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name,
        cluster: { server: server.origin, ...(caData ? { 'certificate-authority-data': caData } : {}) },
      },
    ],
    contexts: [{ name, context: { cluster: name, user: name, ...(namespace ? { namespace } : {}) } }],
    users: [{ name, user }],
    'current-context': name,
  };
  return { config, name, comments, notes };
}

/** The YAML of a built kubeconfig, with its comments on top (`writer`: the command that wrote it). */
export function renderKubeconfig(built: ShimKubeconfig, writer = 'kubeshim kubeconfig'): string {
  const header = [
    `kubeconfig for kubeshim at ${built.config.clusters[0]!.cluster['server']}, written by '${writer}'`,
    ...built.comments,
  ];
  return `${header.map((l) => `# ${l}`).join('\n')}\n${clientNode().dumpYaml(built.config)}`;
}

/**
 * Write a kubeconfig readable by its owner only (`flag`: the flag that named the file); a missing
 * directory is created only for --merge (kubectl's own place).
 */
export function writePrivate(file: string, text: string, flag = '--output', createDirectory = false): void {
  const dir = dirname(file);
  if (!existsSync(dir)) {
    if (!createDirectory)
      throw new Error(
        `${flag} ${file}: the directory ${dir} does not exist; create it first (mkdir -p ${dir})`,
      );
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } else if (!statSync(dir).isDirectory()) {
    throw new Error(`${file}: ${dir} is not a directory`);
  }
  try {
    replacePrivately(file, text);
  } catch (err) {
    throw new Error(`${file}: ${fileProblem(err as NodeJS.ErrnoException)}`);
  }
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
  const cert = readCertificate('--tls-cert', certFile);
  const host = server.hostname.replace(/^\[|\]$/g, '');
  if (!(isIP(host) ? cert.checkIP(host) : cert.checkHost(host)))
    notes.push(`${certFile} does not name ${host}: kubectl will refuse the shim's certificate`);
  if (caFile) {
    const pem = readFileSync(caFile, 'utf8');
    const ca = readCertificate('--ca', caFile);
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey))
      notes.push(`${certFile} is not signed by ${caFile}: kubectl will refuse the shim's certificate`);
    return Buffer.from(pem).toString('base64');
  }
  if (cert.checkIssued(cert) && cert.verify(cert.publicKey))
    return Buffer.from(cert.toString()).toString('base64');
  notes.push(`no --ca: kubectl will check ${certFile} against the system's trusted CAs`);
  return undefined;
}
