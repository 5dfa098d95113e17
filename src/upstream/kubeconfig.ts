/**
 * Finding, merging and reading kubeconfig files the way kubectl does, and picking one context.
 *
 * Parsing and the cluster/user/context model are @kubernetes/client-node's (`loadYaml`,
 * `KubeConfig.loadFromString`). What it does differently from kubectl, and is done here instead:
 * - merging a `$KUBECONFIG` list: client-node throws on a name defined twice; kubectl keeps the
 *   first file's entry, and the first file that sets `current-context` decides it;
 * - relative paths: client-node resolves `certificate-authority`, `client-certificate` and
 *   `client-key` against the file's folder but reads `token-file` relative to the working directory
 *   and leaves an exec `command` such as `./plugin` alone; kubectl resolves all of them;
 * - `tokenFile` (kubectl; client-node spells it `token-file`, both are read): client-node reads it once while parsing, untrimmed; kubectl re-reads it. The path
 *   is taken out here and handed to the caller (see credentials.ts).
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import type { Cluster, Context, KubeConfig, User } from '@kubernetes/client-node';
import { clientNode } from './client-node.js';

export interface KubeconfigOptions {
  /** --kubeconfig: this file only (it must exist). */
  kubeconfig?: string;
  /** --context: default the merged current-context. */
  context?: string;
}

/** One context of a loaded kubeconfig, with its cluster and user resolved. */
export interface KubeconfigSelection {
  /** The files read, in precedence order. */
  files: string[];
  /** client-node's view of the merged files; its current context is the selected one. */
  kc: KubeConfig;
  contextName: string;
  context: Context;
  cluster: Cluster;
  /** The context's user; `{ name: '' }` when the context names none. */
  user: User;
  /** Absolute `token-file` path of the user, which client-node would read only once. */
  tokenFile?: string;
  /** The user's `as`, `as-groups`, `as-uid` and `as-user-extra` (client-node reads only `as`). */
  impersonate: Impersonation;
}

export interface Impersonation {
  user?: string;
  groups: string[];
  uid?: string;
  extra: Record<string, string[]>;
}

/** The impersonation fields of a raw kubeconfig user, as kubectl reads them. */
function impersonation(user: Record<string, unknown> | undefined): Impersonation {
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const strings = (v: unknown) =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  const extra: Record<string, string[]> = {};
  const rawExtra = user?.['as-user-extra'];
  if (rawExtra && typeof rawExtra === 'object')
    for (const [k, v] of Object.entries(rawExtra as Record<string, unknown>)) extra[k] = strings(v);
  return { user: str(user?.['as']), groups: strings(user?.['as-groups']), uid: str(user?.['as-uid']), extra };
}

type Named = { name?: unknown; [k: string]: unknown };
interface RawConfig {
  clusters: Named[];
  users: Named[];
  contexts: Named[];
  'current-context'?: string;
}

/**
 * The kubeconfig files to read: --kubeconfig, else the existing files of $KUBECONFIG (missing ones are
 * skipped, as kubectl does), else ~/.kube/config if it exists. An empty list means there is none.
 */
export function kubeconfigFiles(opts: KubeconfigOptions, env: NodeJS.ProcessEnv = process.env): string[] {
  if (opts.kubeconfig) {
    const file = resolve(opts.kubeconfig);
    if (!readable(file)) throw new Error(`kubeconfig file ${file} does not exist or cannot be read`);
    return [file];
  }
  if (env.KUBECONFIG) {
    const listed = env.KUBECONFIG.split(delimiter).filter((f) => f !== '');
    return [...new Set(listed.map((f) => resolve(f)))].filter(readable);
  }
  const home = env.HOME || homedir();
  const file = join(home, '.kube', 'config');
  return readable(file) ? [file] : [];
}

/**
 * Read the kubeconfig files (see kubeconfigFiles) and select a context. Returns undefined when there
 * is no kubeconfig at all; throws a sentence for anything unusable.
 */
export function loadKubeconfig(
  opts: KubeconfigOptions,
  env: NodeJS.ProcessEnv = process.env,
): KubeconfigSelection | undefined {
  const files = kubeconfigFiles(opts, env);
  if (files.length === 0) return undefined;
  const merged: RawConfig = { clusters: [], users: [], contexts: [] };
  for (const file of files) mergeInto(merged, readRaw(file));

  const contextName = opts.context || merged['current-context'];
  const where = files.length === 1 ? files[0] : `${files.join(', ')} (merged)`;
  if (!contextName) throw new Error(`kubeconfig ${where} has no current-context; pass --context NAME`);

  // The token file is kept from client-node, which would read it once, relative to the working
  // directory. kubectl's field is `tokenFile`; client-node reads `token-file`: both are taken.
  const tokenFiles = new Map<string, string>();
  const impersonations = new Map<string, Impersonation>();
  for (const u of merged.users) {
    const user = u.user as Record<string, unknown> | undefined;
    impersonations.set(String(u.name), impersonation(user));
    const file = user?.['tokenFile'] ?? user?.['token-file'];
    if (user && typeof file === 'string') {
      tokenFiles.set(String(u.name), file);
      u.user = { ...user, tokenFile: undefined, 'token-file': undefined };
    }
  }

  const kc = new (clientNode().KubeConfig)();
  try {
    kc.loadFromString(JSON.stringify(merged));
  } catch (err) {
    throw new Error(`kubeconfig ${where} is not valid: ${(err as Error).message}`);
  }
  const context = kc.getContextObject(contextName);
  if (!context) {
    const known = kc.getContexts().map((c) => c.name);
    throw new Error(
      `context "${contextName}" is not in kubeconfig ${where}` +
        (known.length ? ` (contexts: ${known.join(', ')})` : ' (it defines no contexts)'),
    );
  }
  kc.setCurrentContext(contextName);
  const cluster = kc.getCluster(context.cluster);
  if (!cluster)
    throw new Error(`cluster "${context.cluster}" of context "${contextName}" is not in ${where}`);
  let user: User = { name: '' };
  if (context.user) {
    const found = kc.getUser(context.user);
    if (!found) throw new Error(`user "${context.user}" of context "${contextName}" is not in ${where}`);
    user = found;
  }
  return {
    files,
    kc,
    contextName,
    context,
    cluster,
    user,
    tokenFile: tokenFiles.get(user.name),
    impersonate: impersonations.get(user.name) ?? impersonation(undefined),
  };
}

/** True when the user entry authenticates by itself: the shim then injects its credentials. */
export function userHasCredentials(sel: KubeconfigSelection): boolean {
  const u = sel.user;
  return Boolean(
    u.token ||
      sel.tokenFile ||
      u.exec ||
      u.authProvider ||
      u.username ||
      u.certFile ||
      u.certData ||
      u.keyFile ||
      u.keyData,
  );
}

function readable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** One file's lists, with every relative path made absolute against the file's folder. */
function readRaw(file: string): RawConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read kubeconfig ${file}: ${(err as Error).message}`);
  }
  if (text.trim() === '') return { clusters: [], users: [], contexts: [] }; // kubectl: an empty config
  let doc: Record<string, unknown>;
  try {
    doc = clientNode().loadYaml<Record<string, unknown>>(text);
  } catch (err) {
    throw new Error(`kubeconfig ${file} is not valid YAML: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new Error(`kubeconfig ${file} is not a kubeconfig (expected a mapping)`);
  const list = (key: string): Named[] => (Array.isArray(doc[key]) ? (doc[key] as Named[]) : []);
  const dir = dirname(file);
  const abs = (obj: Record<string, unknown> | undefined, key: string) => {
    const v = obj?.[key];
    if (obj && typeof v === 'string' && v !== '' && !isAbsolute(v)) obj[key] = join(dir, v);
  };
  const clusters = list('clusters');
  for (const c of clusters) abs(c.cluster as Record<string, unknown> | undefined, 'certificate-authority');
  const users = list('users');
  for (const u of users) {
    const user = u.user as Record<string, unknown> | undefined;
    for (const key of ['client-certificate', 'client-key', 'tokenFile', 'token-file']) abs(user, key);
    // kubectl runs a command given with a path relative to the kubeconfig's folder; bare names use PATH
    const exec = user?.exec as Record<string, unknown> | undefined;
    if (typeof exec?.command === 'string' && exec.command.includes('/')) abs(exec, 'command');
  }
  const current = doc['current-context'];
  return {
    clusters,
    users,
    contexts: list('contexts'),
    'current-context': typeof current === 'string' && current !== '' ? current : undefined,
  };
}

/** kubectl's merge: the first file to define a name keeps it; the first current-context wins. */
function mergeInto(into: RawConfig, from: RawConfig): void {
  for (const key of ['clusters', 'users', 'contexts'] as const) {
    const seen = new Set(into[key].map((e) => e.name));
    for (const entry of from[key]) if (!seen.has(entry.name)) into[key].push(entry);
  }
  into['current-context'] ??= from['current-context'];
}
