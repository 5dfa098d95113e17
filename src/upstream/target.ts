/**
 * Where the upstream API server is and how to reach it, the way `kubectl proxy` does: from the
 * kubeconfig (--kubeconfig, else $KUBECONFIG merged, else ~/.kube/config; --context, else the
 * current context), or from `--upstream URL` alone (the bastion sidecar form: no kubeconfig, the
 * clients' own credentials pass through).
 *
 * TLS material and proxy agents come from @kubernetes/client-node (`applyToHTTPSOptions`: CA
 * file/data, insecure-skip-tls-verify, tls-server-name, client certificate file/data, and hpagent
 * (CONNECT) / socks-proxy-agent for `proxy-url`). Filled in here: agents without a proxy are built
 * with keepAlive (client-node's are not pooled); a plain `http:` server works without
 * insecure-skip-tls-verify (client-node refuses it); the TLS material is checked once at load, so
 * that a bad CA or a certificate/key mismatch is an error now rather than on every connection.
 * Credentials: credentials.ts; kubeconfig files and contexts: kubeconfig.ts.
 */
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { createSecureContext } from 'node:tls';
import { clientNode } from './client-node.js';
import { type AuthHeaders, type CredentialSource, credentialSource } from './credentials.js';
import { type KubeconfigSelection, loadKubeconfig, userHasCredentials } from './kubeconfig.js';

export interface UpstreamTarget {
  /** API server base URL (http: or https:), path prefix kept (a server URL may have one). */
  readonly url: URL;
  /**
   * Agent for every upstream connection, plain and upgrade (http.request and ws both take it):
   * TLS from the kubeconfig (CA, insecure-skip-tls-verify, tls-server-name, client certificate) and
   * its proxy-url (http/https CONNECT, socks5). Without a proxy it pools with keepAlive; upgraded
   * sockets leave the pool. Its `options.rejectUnauthorized` is false only for
   * insecure-skip-tls-verify.
   */
  readonly agent: http.Agent;
  /**
   * Credentials for the next upstream request: Authorization (token, token-file re-read every
   * minute, exec plugin v1/v1beta1 cached until its expirationTimestamp, auth-provider, basic) and
   * Impersonate-User from the kubeconfig's `as`. Resolves {} when the shim injects nothing. Rejects
   * with a sentence when a plugin fails.
   */
  authHeaders(): Promise<AuthHeaders>;
  /**
   * Forget cached credentials, as client-go does when the upstream answers 401: the next
   * authHeaders() re-reads the token file or re-runs the exec plugin. (Addition to the brief.)
   */
  invalidateCredentials(): void;
  /**
   * True when the shim supplies credentials (the kubeconfig user has a token, token-file, exec or
   * auth-provider plugin, basic auth or a client certificate): the client's own Authorization must
   * then be dropped, never forwarded. False in the bastion form (--upstream without kubeconfig) and
   * for a kubeconfig user without credentials: the client's Authorization passes through.
   */
  readonly injectsCredentials: boolean;
  /** One line for logs: server URL, context name, auth kind, proxy (never a secret). */
  describe(): string;
  /**
   * Whose identity the shim lends, for the `listening` line: `injected from context "X" (auth: …)`
   * or `pass-through` (each client's own credentials go upstream).
   */
  readonly credentials: string;
}

/**
 * What the listener needs of the upstream: where to dial, and whose credentials to send there.
 * An UpstreamTarget is one; tests hand in a bare URL and agent with no credentials.
 */
export type CredentialedUpstream = Pick<
  UpstreamTarget,
  'url' | 'agent' | 'authHeaders' | 'injectsCredentials'
> &
  Partial<Pick<UpstreamTarget, 'invalidateCredentials'>>;

export interface TargetOptions {
  /** --upstream: the API server URL; with a kubeconfig it replaces only the cluster's server. */
  upstream?: string;
  /** --kubeconfig */
  kubeconfig?: string;
  /** --context */
  context?: string;
}

/**
 * The upstream from the command-line options and the environment ($KUBECONFIG, $HOME). Throws a
 * sentence for a missing file, an unknown context, unreadable or unusable TLS material, a bad URL.
 */
export async function loadUpstreamTarget(
  opts: TargetOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<UpstreamTarget> {
  const override = opts.upstream ? serverUrl(opts.upstream, '--upstream') : undefined;
  const sel = loadKubeconfig(opts, env);
  if (!sel) {
    if (!override) {
      throw new Error(
        'no kubeconfig found (--kubeconfig, $KUBECONFIG, ~/.kube/config): pass --kubeconfig PATH or --upstream URL',
      );
    }
    if (opts.context) throw new Error(`--context ${opts.context} needs a kubeconfig, and none was found`);
    return passThroughTarget(override);
  }
  const url = override ?? serverUrl(sel.cluster.server, `server of cluster "${sel.cluster.name}"`);
  const agent = await kubeconfigAgent(sel, url);
  const creds = credentialSource(sel, url);
  return kubeconfigTarget(sel, url, agent, creds);
}

function kubeconfigTarget(
  sel: KubeconfigSelection,
  url: URL,
  agent: http.Agent,
  creds: CredentialSource,
): UpstreamTarget {
  const proxy = sel.cluster.proxyUrl ? `, via proxy ${withoutUserinfo(sel.cluster.proxyUrl)}` : '';
  const line = `${url.href} (context "${sel.contextName}", auth: ${creds.kind}${proxy})`;
  const injects = userHasCredentials(sel);
  return {
    url,
    agent,
    injectsCredentials: injects,
    credentials: injects
      ? `injected from context "${sel.contextName}" (auth: ${creds.kind})`
      : 'pass-through',
    authHeaders: () => creds.headers(),
    invalidateCredentials: () => creds.invalidate(),
    describe: () => line,
  };
}

/** The bastion form: system CAs, no credentials of our own. */
function passThroughTarget(url: URL): UpstreamTarget {
  const agent =
    url.protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  const line = `${url.href} (no kubeconfig: clients' credentials pass through)`;
  return {
    url,
    agent,
    injectsCredentials: false,
    credentials: 'pass-through',
    authHeaders: async () => ({}),
    invalidateCredentials: () => {},
    describe: () => line,
  };
}

/** A server URL as kubectl takes it: a bare host:port means https. */
function serverUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value.includes('://') ? value : `https://${value}`);
  } catch {
    throw new Error(`${what} is not a URL: ${value}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new Error(`${what} must be an http:// or https:// URL (got ${url.protocol}//)`);
  // a URL is logged and shown: credentials belong in a kubeconfig user (username/password, token)
  if (url.username !== '' || url.password !== '')
    throw new Error(
      `${what} carries a user name or password: put credentials in a kubeconfig user instead (the URL is logged)`,
    );
  return url;
}

async function kubeconfigAgent(sel: KubeconfigSelection, url: URL): Promise<http.Agent> {
  const { cluster, user, contextName } = sel;
  if (url.protocol === 'http:' && !cluster.proxyUrl) return new http.Agent({ keepAlive: true });

  // client-node's TLS options for this cluster (with the effective server) and only the user's TLS
  // identity: its credentials are credentials.ts's business, and would run plugins here.
  const tlsOnly = new (clientNode().KubeConfig)();
  tlsOnly.loadFromClusterAndUser(
    { ...cluster, server: url.href.replace(/\/$/, '') },
    {
      name: user.name || 'user',
      certFile: user.certFile,
      certData: user.certData,
      keyFile: user.keyFile,
      keyData: user.keyData,
    },
  );
  const o: https.RequestOptions = {};
  try {
    await tlsOnly.applyToHTTPSOptions(o);
  } catch (err) {
    throw new Error(`cannot load the TLS settings of context "${contextName}": ${(err as Error).message}`);
  }
  checkTlsMaterial(sel, o);
  if (cluster.proxyUrl) return o.agent as http.Agent;

  const tls: https.AgentOptions = { keepAlive: true };
  if (o.ca) tls.ca = o.ca;
  if (o.cert) tls.cert = o.cert;
  if (o.key) tls.key = o.key;
  if (o.servername) tls.servername = o.servername;
  if (o.rejectUnauthorized === false) tls.rejectUnauthorized = false;
  return new https.Agent(tls);
}

/** Parse the CA and the client certificate and key now, so that bad material fails at start-up. */
function checkTlsMaterial(sel: KubeconfigSelection, o: https.RequestOptions): void {
  const { cluster, user } = sel;
  if (o.ca) {
    const source = cluster.caFile ? `file ${cluster.caFile}` : 'data';
    try {
      new X509Certificate(o.ca as Buffer);
    } catch (err) {
      throw new Error(
        `certificate-authority ${source} of cluster "${cluster.name}" is not a PEM certificate: ${(err as Error).message}`,
      );
    }
  }
  if (Boolean(o.cert) !== Boolean(o.key))
    throw new Error(`user "${user.name}" has a client certificate or key without the other`);
  if (o.cert && o.key) {
    try {
      createSecureContext({ cert: o.cert, key: o.key });
    } catch (err) {
      throw new Error(
        `client certificate and key of user "${user.name}" are not usable: ${(err as Error).message}`,
      );
    }
  }
}

function withoutUserinfo(proxyUrl: string): string {
  try {
    const u = new URL(proxyUrl);
    u.username = '';
    u.password = '';
    return u.href.replace(/\/$/, '');
  } catch {
    return '(unparsable proxy-url)';
  }
}
