/**
 * The plain (non-upgrade) API: enough for kubectl around exec, attach, cp, port-forward and logs.
 * Discovery (/version, /api, /api/v1, /apis), namespaces and pods (get, list, watch), pod logs
 * (with follow), a fast 404 for OpenAPI, and the apiserver's Status errors.
 *
 * Watch: ADDED for each pod (unless the client resumes from a resourceVersion), then a MODIFIED
 * event per pod every `watchIntervalMs`, one JSON line each, until the client leaves or
 * `timeoutSeconds` passes. Logs: see pod-log.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Status } from '../k8s/status.js';
import { responseAnswer } from './answer.js';
import { methodNotAllowed, notFound, pathNotFound, upgradeRequired } from './api-errors.js';
import type { Cluster } from './cluster.js';
import { Container } from './container.js';
import type { GenerationTraits } from './generation.js';
import { NODE_NAME, type Pod } from './pod.js';
import { isStatus, resolvePodTarget } from './pod-target.js';
import type { Route } from './routes.js';

export interface ApiContext {
  cluster: Cluster;
  traits: GenerationTraits;
  /** host:port clients reach us at (for /api's serverAddressByClientCIDRs). */
  serverAddress: () => string;
  watchIntervalMs: number;
}

const GROUP_VERSION = 'v1';

function versionInfo(gitVersion: string): Record<string, string> {
  const [major, minor] = gitVersion.replace(/^v/, '').split('.');
  return {
    major: major!,
    minor: minor!,
    gitVersion,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2025-01-01T00:00:00Z',
    goVersion: 'go1.23.8',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

const SUBRESOURCE_KINDS: [string, string, string[]][] = [
  ['pods/attach', 'PodAttachOptions', ['create', 'get']],
  ['pods/exec', 'PodExecOptions', ['create', 'get']],
  ['pods/log', 'Pod', ['get']],
  ['pods/portforward', 'PodPortForwardOptions', ['create', 'get']],
];

function resourceList(): Record<string, unknown> {
  return {
    kind: 'APIResourceList',
    groupVersion: GROUP_VERSION,
    resources: [
      {
        name: 'namespaces',
        singularName: 'namespace',
        namespaced: false,
        kind: 'Namespace',
        verbs: ['get', 'list'],
        shortNames: ['ns'],
      },
      {
        name: 'pods',
        singularName: 'pod',
        namespaced: true,
        kind: 'Pod',
        verbs: ['get', 'list', 'watch'],
        shortNames: ['po'],
        categories: ['all'],
      },
      ...SUBRESOURCE_KINDS.map(([name, kind, verbs]) => ({
        name,
        singularName: '',
        namespaced: true,
        kind,
        verbs,
      })),
    ],
  };
}

function list(kind: string, resourceVersion: string, items: unknown[]): Record<string, unknown> {
  return { kind, apiVersion: 'v1', metadata: { resourceVersion }, items };
}

/** What a plain request gets: a JSON body, a Status, or a response written over time. */
type Reply = { code: number; body: unknown } | ((res: ServerResponse) => void);

const ok = (body: unknown): Reply => ({ code: 200, body });
const status = (s: Status): Reply => ({ code: s.code ?? 500, body: s });

export function handleApiRequest(
  ctx: ApiContext,
  route: Route,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const isRead = req.method === 'GET' || req.method === 'HEAD';
  // the streaming subresources answer POST too (with a Status: they need an upgrade)
  const streaming = route.kind === 'podSubresource' && route.subresource !== 'log';
  const r = isRead || streaming ? reply(ctx, route, req) : status(methodNotAllowed());
  if (typeof r === 'function') r(res);
  else responseAnswer(res).json(r.code, r.body);
}

function reply(ctx: ApiContext, route: Route, req: IncomingMessage): Reply {
  const query = new URL(req.url ?? '/', 'http://emulator').searchParams;
  const { cluster } = ctx;
  switch (route.kind) {
    case 'version':
      return ok(versionInfo(ctx.traits.gitVersion));
    case 'health':
      return (res) => {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('ok');
      };
    case 'api':
      return ok({
        kind: 'APIVersions',
        versions: [GROUP_VERSION],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: ctx.serverAddress() }],
      });
    case 'apiV1':
      return ok(resourceList());
    case 'apis':
      return ok({ kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
    case 'openapi':
    case 'unknown':
      return status(pathNotFound());
    case 'namespaces':
      return ok(
        list(
          'NamespaceList',
          cluster.resourceVersion,
          cluster.namespaces.map((n) => cluster.namespaceJSON(n)),
        ),
      );
    case 'namespace':
      if (!cluster.namespaces.includes(route.name)) return status(notFound('namespaces', route.name));
      return ok(cluster.namespaceJSON(route.name));
    case 'pods': {
      const pods = selectPods(cluster.podsIn(route.namespace), query.get('fieldSelector'));
      if (isTrue(query.get('watch'))) return (res) => watchPods(ctx, pods, query, res);
      if (wantsTable(req)) return ok(podTable(pods, cluster.resourceVersion));
      return ok(
        list(
          'PodList',
          cluster.resourceVersion,
          pods.map((p) => p.toJSON(cluster.resourceVersion)),
        ),
      );
    }
    case 'pod': {
      const pod = cluster.findPod(route.namespace, route.name);
      if (!pod) return status(notFound('pods', route.name));
      return ok(
        wantsTable(req) ? podTable([pod], cluster.resourceVersion) : pod.toJSON(cluster.resourceVersion),
      );
    }
    case 'podSubresource': {
      if (route.subresource === 'log') {
        const pod = cluster.findPod(route.namespace, route.name);
        if (!pod) return status(notFound('pods', route.name));
        const container = pod.resolveContainer(query.get('container') ?? undefined);
        if (!(container instanceof Container)) return status(container);
        return (res) => podLog(pod, query, res);
      }
      if (req.method !== 'GET' && req.method !== 'POST') return status(methodNotAllowed());
      const target = resolvePodTarget(cluster, route.namespace, route.name, route.subresource, query);
      return status(isStatus(target) ? target : upgradeRequired());
    }
  }
}

/** kubectl get asks for server-side printing (`Accept: application/json;as=Table;…`). */
function wantsTable(req: IncomingMessage): boolean {
  return /;\s*as=Table/.test(req.headers.accept ?? '');
}

const POD_COLUMNS = [
  ['Name', 'name', 0],
  ['Ready', '', 0],
  ['Status', '', 0],
  ['Restarts', '', 0],
  ['Age', '', 0],
  ['IP', '', 1],
  ['Node', '', 1],
] as const;

/** The Table kubectl prints for pods (NAME READY STATUS RESTARTS AGE, wide: IP NODE). */
function podTable(pods: Pod[], resourceVersion: string): Record<string, unknown> {
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: POD_COLUMNS.map(([name, format, priority]) => ({
      name,
      type: 'string',
      format,
      description: '',
      priority,
    })),
    rows: pods.map((p) => {
      const pod = p.toJSON(resourceVersion);
      const restarts = p.containers.reduce((n, c) => n + c.restartCount, 0);
      return {
        cells: [
          p.name,
          `${p.containers.length}/${p.containers.length}`,
          'Running',
          String(restarts),
          age(p.createdAt),
          '127.0.0.1',
          NODE_NAME,
        ],
        object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: pod['metadata'] },
      };
    }),
  };
}

/** A duration the way kubectl shows ages: 45s, 12m, 3h, 2d. */
function age(since: Date): string {
  const s = Math.max(0, Math.floor((Date.now() - since.getTime()) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function isTrue(v: string | null): boolean {
  return v === 'true' || v === '1';
}

/** `metadata.name=x` and `metadata.namespace=x` field selectors (what kubectl uses on pods). */
function selectPods(pods: Pod[], fieldSelector: string | null): Pod[] {
  if (!fieldSelector) return pods;
  return pods.filter((p) =>
    fieldSelector.split(',').every((term) => {
      const m = /^([\w.]+)(==?|!=)(.*)$/.exec(term.trim());
      if (!m) return true;
      const value =
        m[1] === 'metadata.name' ? p.name : m[1] === 'metadata.namespace' ? p.namespace : undefined;
      if (value === undefined) return true;
      return m[2] === '!=' ? value !== m[3] : value === m[3];
    }),
  );
}

function watchPods(ctx: ApiContext, pods: Pod[], query: URLSearchParams, res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  const send = (type: string, pod: Pod, rv: string) =>
    res.write(`${JSON.stringify({ type, object: pod.toJSON(rv) })}\n`);
  const from = query.get('resourceVersion');
  if (!from || from === '0') for (const p of pods) send('ADDED', p, ctx.cluster.resourceVersion);
  const tick = setInterval(() => {
    const rv = ctx.cluster.nextResourceVersion();
    for (const p of pods) send('MODIFIED', p, rv);
  }, ctx.watchIntervalMs);
  const timeout = Number(query.get('timeoutSeconds'));
  const stop = setTimeout(() => res.end(), timeout > 0 ? timeout * 1000 : 2 ** 31 - 1);
  res.once('close', () => {
    clearInterval(tick);
    clearTimeout(stop);
  });
}

function podLog(pod: Pod, query: URLSearchParams, res: ServerResponse): void {
  const tailParam = query.get('tailLines');
  const tail = tailParam !== null && /^\d+$/.test(tailParam) ? Number(tailParam) : undefined;
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private' });
  const lines = pod.log.lines(tail);
  if (lines.length > 0) res.write(`${lines.join('\n')}\n`);
  if (!isTrue(query.get('follow'))) {
    res.end();
    return;
  }
  // one write per line, at once: `logs -f` must see each line as it is logged
  const unfollow = pod.log.follow((line) => res.write(`${line}\n`));
  res.once('close', unfollow);
}
