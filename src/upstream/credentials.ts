/**
 * The credentials a kubeconfig user puts on every upstream request, with kubectl's caching.
 *
 * From @kubernetes/client-node: running exec credential plugins (ExecAuth: spawn with the
 * configured env, parse, cache until `expirationTimestamp`) and the legacy auth-provider plugins
 * (oidc, azure, gcp) through `KubeConfig.applyToHTTPSOptions`. Filled in here, where client-node
 * differs from kubectl:
 * - exec: one plugin run for concurrent requests (client-node starts one per request while nothing
 *   is cached); a credential without `expirationTimestamp` is kept until invalidate() (client-node
 *   runs the plugin again on every request); `KUBERNETES_EXEC_INFO` is set for the plugin (cluster
 *   info when `provideClusterInfo`); the answer's apiVersion and kind are checked; failures are
 *   sentences naming the plugin and its `installHint`, never quoting what it printed (below);
 * - token-file: re-read once a minute and after invalidate(), trimmed (client-node reads it once);
 * - invalidate(): what client-go does on a 401, so the next request gets fresh credentials.
 * Exec plugins that return a client certificate instead of a token are refused with a clear error:
 * the upstream agent's TLS identity is fixed when it is built.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { RequestOptions } from 'node:https';
import type { Cluster, KubeConfig, User } from '@kubernetes/client-node';
import { clientNode, execAuth } from './client-node.js';
import type { Impersonation, KubeconfigSelection } from './kubeconfig.js';

export interface CredentialSource {
  /** What kind of credential, for logs (never the secret): `token`, `exec plugin aws`, … */
  readonly kind: string;
  /** Headers for the next upstream request ({} when none); Impersonate-Group may repeat. */
  headers(): Promise<AuthHeaders>;
  /** Forget cached credentials (the upstream answered 401): re-read files, re-run plugins. */
  invalidate(): void;
}

/** Credential headers; a header given several values (Impersonate-Group) is sent once per value. */
export type AuthHeaders = Record<string, string | string[]>;

/**
 * What a client (or an unauthenticated probe) is told when credentials cannot be had; the shim's
 * log has the sentence that says which source failed and how.
 */
export const CREDENTIALS_UNAVAILABLE =
  "kubeshim could not get its upstream credentials (the shim's log says why)";

/** kubectl re-reads a token file about once a minute (client-go's cached file token source). */
export const TOKEN_FILE_REFRESH_MS = 60_000;

const EXEC_API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'];

/** The credential source for the selected user; `server` is the effective upstream URL. */
export function credentialSource(sel: KubeconfigSelection, server: URL): CredentialSource {
  const extra = impersonationHeaders(sel.impersonate);
  const base = baseSource(sel, server);
  if (Object.keys(extra).length === 0) return base;
  const who = sel.impersonate.user ?? `groups ${sel.impersonate.groups.join(',')}`;
  return {
    kind: `${base.kind}, impersonating ${who}`,
    headers: async () => ({ ...(await base.headers()), ...extra }),
    invalidate: () => base.invalidate(),
  };
}

/**
 * The kubeconfig's `as`, `as-groups`, `as-uid`, `as-user-extra` as kubectl sends them:
 * Impersonate-User, one Impersonate-Group per group, Impersonate-Uid, and
 * Impersonate-Extra-<key> per extra (the key %-escaped where it is not a header token character).
 */
export function impersonationHeaders(imp: Impersonation): AuthHeaders {
  const h: AuthHeaders = {};
  if (imp.user) h['Impersonate-User'] = imp.user;
  if (imp.groups.length > 0) h['Impersonate-Group'] = [...imp.groups];
  if (imp.uid) h['Impersonate-Uid'] = imp.uid;
  for (const [key, values] of Object.entries(imp.extra))
    if (values.length > 0) h[`Impersonate-Extra-${headerKeyEscape(key)}`] = [...values];
  return h;
}

/** RFC 7230 token characters, except `%` which starts an escape. */
const TOKEN_CHAR = /^[!#$&'*+\-.^_`|~0-9A-Za-z]$/;

function headerKeyEscape(key: string): string {
  let out = '';
  for (const byte of Buffer.from(key, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += TOKEN_CHAR.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function baseSource(sel: KubeconfigSelection, server: URL): CredentialSource {
  const { user } = sel;
  if (sel.tokenFile) return new TokenFileCredentials(sel.tokenFile);
  if (user.token) return fixed('token', { Authorization: `Bearer ${user.token.trim()}` });
  if (user.exec) return new ExecPluginCredentials(user, sel.cluster, server);
  if (user.authProvider) return new AuthProviderCredentials(user);
  if (user.username) {
    const basic = Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64');
    return fixed('basic', { Authorization: `Basic ${basic}` });
  }
  const cert = user.certFile || user.certData;
  return fixed(cert ? 'client certificate' : 'none', {});
}

function fixed(kind: string, headers: Record<string, string>): CredentialSource {
  return { kind, headers: async () => ({ ...headers }), invalidate: () => {} };
}

class TokenFileCredentials implements CredentialSource {
  readonly kind = 'token-file';
  private token: string;
  private readAt: number;

  constructor(private readonly file: string) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read token-file ${file}: ${(err as Error).message}`);
    }
    this.token = nonEmptyToken(text, file);
    this.readAt = Date.now();
  }

  async headers(): Promise<AuthHeaders> {
    if (Date.now() - this.readAt >= TOKEN_FILE_REFRESH_MS) {
      try {
        this.token = nonEmptyToken(await readFile(this.file, 'utf8'), this.file);
        this.readAt = Date.now();
      } catch {
        // As client-go: keep the token read last; the next request tries the file again.
      }
    }
    return { Authorization: `Bearer ${this.token}` };
  }

  invalidate(): void {
    this.readAt = Number.NEGATIVE_INFINITY;
  }
}

function nonEmptyToken(text: string, file: string): string {
  const token = text.trim();
  if (token === '') throw new Error(`token-file ${file} is empty`);
  return token;
}

/** What ExecAuth's credential runner returns (client.authentication.k8s.io ExecCredential). */
interface ExecCredential {
  apiVersion?: string;
  kind?: string;
  status?: {
    token?: string;
    clientCertificateData?: string;
    clientKeyData?: string;
    expirationTimestamp?: string;
  };
}

/** ExecAuth.getCredential is private in client-node's typings; it is the runner we need (see top). */
interface ExecRunner {
  getCredential(user: User): Promise<ExecCredential | null>;
}

function execRunner(): ExecRunner {
  const runner = new (execAuth())() as unknown as Partial<ExecRunner>;
  if (typeof runner.getCredential !== 'function')
    throw new Error('this version of @kubernetes/client-node has no ExecAuth.getCredential');
  return runner as ExecRunner;
}

interface ExecConfig {
  command?: string;
  args?: string[];
  env?: { name: string; value: string }[] | null;
  apiVersion?: string;
  installHint?: string;
  provideClusterInfo?: boolean;
  interactiveMode?: string;
}

class ExecPluginCredentials implements CredentialSource {
  readonly kind: string;
  private readonly command: string;
  private readonly apiVersion: string;
  private readonly installHint: string | undefined;
  /** The user as ExecAuth sees it: the configured env plus KUBERNETES_EXEC_INFO. */
  private readonly runAs: User;
  private runner = execRunner();
  private cached: { token: string; expiresAt: number } | undefined;
  private pending: Promise<string> | undefined;

  constructor(user: User, cluster: Cluster, server: URL) {
    const exec = user.exec as ExecConfig;
    if (!exec.command) throw new Error(`exec plugin of user "${user.name}" has no command`);
    this.command = exec.command;
    this.kind = `exec plugin ${exec.command}`;
    this.installHint = exec.installHint;
    if (!exec.apiVersion || !EXEC_API_VERSIONS.includes(exec.apiVersion))
      throw new Error(
        `exec plugin "${exec.command}" of user "${user.name}" has apiVersion "${exec.apiVersion ?? ''}"; ` +
          `supported: ${EXEC_API_VERSIONS.join(', ')}`,
      );
    this.apiVersion = exec.apiVersion;
    if (exec.interactiveMode === 'Always')
      throw new Error(
        `exec plugin "${exec.command}" needs a terminal (interactiveMode: Always), which a proxy cannot give it`,
      );
    const info = {
      apiVersion: exec.apiVersion,
      kind: 'ExecCredential',
      spec: {
        interactive: false,
        ...(exec.provideClusterInfo ? { cluster: clusterInfo(cluster, server) } : {}),
      },
    };
    const env = [...(exec.env ?? []), { name: 'KUBERNETES_EXEC_INFO', value: JSON.stringify(info) }];
    this.runAs = { ...user, exec: { ...exec, env } };
  }

  async headers(): Promise<AuthHeaders> {
    const c = this.cached;
    if (c && Date.now() < c.expiresAt) return { Authorization: `Bearer ${c.token}` };
    this.pending ??= this.run().finally(() => {
      this.pending = undefined;
    });
    return { Authorization: `Bearer ${await this.pending}` };
  }

  invalidate(): void {
    this.cached = undefined;
    this.runner = execRunner(); // a fresh ExecAuth: its own cache would hand back the same credential
  }

  private async run(): Promise<string> {
    let cred: ExecCredential | null;
    try {
      cred = await this.runner.getCredential(this.runAs);
    } catch (err) {
      throw this.failure(err as Error & { code?: string });
    }
    const name = `exec plugin "${this.command}"`;
    if (cred?.kind !== 'ExecCredential' || cred.apiVersion !== this.apiVersion || !cred.status)
      throw new Error(`${name} did not print an ExecCredential of apiVersion ${this.apiVersion}`);
    const { token, clientCertificateData, expirationTimestamp } = cred.status;
    if (!token) {
      throw new Error(
        clientCertificateData
          ? `${name} returned a client certificate; kubeshim supports only token credentials from exec plugins`
          : `${name} returned no token`,
      );
    }
    const expiresAt = expirationTimestamp ? Date.parse(expirationTimestamp) : Number.POSITIVE_INFINITY;
    if (Number.isNaN(expiresAt))
      throw new Error(`${name} returned an invalid expirationTimestamp "${expirationTimestamp}"`);
    this.cached = { token, expiresAt };
    return token;
  }

  private failure(err: Error & { code?: string }): Error {
    const name = `exec plugin "${this.command}"`;
    const hint = this.installHint ? `\n${this.installHint.trim()}` : '';
    if (err.code === 'ENOENT' || err.code === 'EACCES')
      return new Error(`${name} could not be started (${err.code})${hint}`);
    // What a plugin prints can hold a token or a password (a prompt's echo, a debug line), so none
    // of it is quoted, not even in the log: V8's JSON errors quote the text they failed on, and
    // ExecAuth rejects with the plugin's stderr as the message when it exits non-zero.
    const yourself = `run "${this.command}" yourself to see what it printed (kubeshim never logs it)`;
    if (err instanceof SyntaxError) return new Error(`${name} did not print valid JSON: ${yourself}${hint}`);
    const said =
      err.message.trim() === '' ? 'nothing on stderr' : `${Buffer.byteLength(err.message)} bytes on stderr`;
    return new Error(`${name} failed (${said}): ${yourself}${hint}`);
  }
}

/** spec.cluster of KUBERNETES_EXEC_INFO (client.authentication.k8s.io Cluster). */
function clusterInfo(cluster: Cluster, server: URL): Record<string, unknown> {
  let caData = cluster.caData;
  if (!caData && cluster.caFile) {
    try {
      caData = readFileSync(cluster.caFile).toString('base64');
    } catch {
      caData = undefined; // the TLS setup reports an unreadable CA file
    }
  }
  return {
    server: server.href.replace(/\/$/, ''),
    'tls-server-name': cluster.tlsServerName,
    'insecure-skip-tls-verify': cluster.skipTLSVerify || undefined,
    'certificate-authority-data': caData,
    'proxy-url': cluster.proxyUrl,
  };
}

/** Legacy auth-provider plugins (oidc, azure, gcp): client-node applies them to request options. */
class AuthProviderCredentials implements CredentialSource {
  readonly kind: string;
  private readonly kc: KubeConfig = new (clientNode().KubeConfig)();

  constructor(user: User) {
    this.kind = `auth-provider ${String((user.authProvider as { name?: unknown }).name ?? '')}`;
    // Only the user matters here; the cluster is a placeholder that is never contacted.
    this.kc.loadFromClusterAndUser(
      { name: 'auth', server: 'https://auth.invalid', skipTLSVerify: false },
      { name: user.name, authProvider: user.authProvider },
    );
  }

  async headers(): Promise<AuthHeaders> {
    const opts: RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    const auth = (opts.headers as Record<string, string> | undefined)?.Authorization;
    return auth ? { Authorization: auth } : {};
  }

  invalidate(): void {}
}
