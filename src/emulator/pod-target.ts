/**
 * What the apiserver checks before any streaming request goes anywhere (docs/protocols.md §1.1): the pod
 * exists (404), the container is valid (400), the options parse (400). Shared by plain requests
 * (which then get "Upgrade request required") and upgrades.
 */
import type { Status } from '../k8s/status.js';
import type { ExecStreams } from '../k8s/stream-request.js';
import { badRequest, notFound } from './api-errors.js';
import type { Cluster } from './cluster.js';
import { Container } from './container.js';
import type { Pod } from './pod.js';

export interface CommandTarget {
  subresource: 'exec' | 'attach';
  pod: Pod;
  container: Container;
  command: string[];
  wants: ExecStreams;
}

export interface PortForwardTarget {
  subresource: 'portforward';
  pod: Pod;
  /** `ports=` values as given (the kubelet parses them, §4.2). */
  ports: string[];
}

/** The pod (port-forward) or container (exec, attach) a streaming request names, checked. */
export type PodTarget = CommandTarget | PortForwardTarget;

/** Go's strconv.ParseBool. */
function parseBool(query: URLSearchParams, name: string): boolean | Status {
  const v = query.get(name);
  if (v === null) return false;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return badRequest(`strconv.ParseBool: parsing "${v}": invalid syntax`);
}

export function resolvePodTarget(
  cluster: Cluster,
  namespace: string,
  name: string,
  subresource: 'exec' | 'attach' | 'portforward',
  query: URLSearchParams,
): PodTarget | Status {
  const pod = cluster.findPod(namespace, name);
  if (!pod) return notFound('pods', name);
  if (subresource === 'portforward') return { subresource, pod, ports: query.getAll('ports') };
  const container = pod.resolveContainer(query.get('container') ?? undefined);
  if (!(container instanceof Container)) return container;
  const flags: Record<keyof ExecStreams, boolean> = {
    stdin: false,
    stdout: false,
    stderr: false,
    tty: false,
  };
  for (const key of Object.keys(flags) as (keyof ExecStreams)[]) {
    const v = parseBool(query, key);
    if (typeof v !== 'boolean') return v;
    flags[key] = v;
  }
  const command = query.getAll('command');
  if (subresource === 'exec' && command.length === 0)
    return badRequest('you must specify at least one command for the container');
  return { subresource, pod, container, command, wants: flags };
}

export function isStatus(v: unknown): v is Status {
  return typeof v === 'object' && v !== null && 'status' in v && 'metadata' in v;
}
