/** The emulated cluster's objects: its pods and namespaces, and the resource version they share. */
import type { Pod } from './pod.js';

const BUILTIN_NAMESPACES = ['default', 'kube-node-lease', 'kube-public', 'kube-system'];

export class Cluster {
  readonly createdAt = new Date();
  private rv = 1000;

  constructor(readonly pods: readonly Pod[]) {}

  /** The current resource version (every watch tick advances it). */
  get resourceVersion(): string {
    return String(this.rv);
  }

  nextResourceVersion(): string {
    this.rv++;
    return String(this.rv);
  }

  findPod(namespace: string, name: string): Pod | undefined {
    return this.pods.find((p) => p.namespace === namespace && p.name === name);
  }

  /** Pods of one namespace, or of all when `namespace` is undefined. */
  podsIn(namespace: string | undefined): Pod[] {
    return this.pods.filter((p) => namespace === undefined || p.namespace === namespace);
  }

  get namespaces(): string[] {
    return [...new Set([...BUILTIN_NAMESPACES, ...this.pods.map((p) => p.namespace)])].sort();
  }

  namespaceJSON(name: string): Record<string, unknown> {
    return {
      kind: 'Namespace',
      apiVersion: 'v1',
      metadata: {
        name,
        uid: `00000000-0000-4000-8000-${Buffer.from(name).toString('hex').padEnd(12, '0').slice(0, 12)}`,
        resourceVersion: this.resourceVersion,
        creationTimestamp: this.createdAt.toISOString(),
        labels: { 'kubernetes.io/metadata.name': name },
      },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    };
  }
}
