/**
 * An emulated pod: its API object, its working directory (where exec'd processes run), its
 * containers' main processes, the servers behind its ports, and its log. Everything it started is
 * stopped by `stop()`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Status } from '../k8s/status.js';
import type { Logger } from '../observe/logger.js';
import { badRequest } from './api-errors.js';
import { Container, MAIN_COMMAND } from './container.js';
import { PodLog } from './pod-log.js';
import { type PodPortSpec, type PortServer, startPortServer } from './pod-ports.js';
import { type PodProcess, spawnProcess } from './process.js';
import { TerminalsUnavailableError } from './terminal.js';

export interface PodDefinition {
  name: string;
  /** Default `default`. */
  namespace?: string;
  /** Container names; default one container named like the pod. */
  containers?: string[];
  ports?: PodPortSpec[];
}

/** The demo pod's ports: a web server, an echo server, and one where nothing listens. */
export const DEMO_PORTS: readonly PodPortSpec[] = [
  { name: 'http', containerPort: 80, serve: 'http' },
  { name: 'echo', containerPort: 8080, serve: 'echo' },
  { name: 'nothing', containerPort: 9999, serve: 'none' },
];

export const DEMO_POD: PodDefinition = {
  name: 'demo',
  namespace: 'default',
  containers: ['demo'],
  ports: [...DEMO_PORTS],
};

export const NODE_NAME = 'emulated-node';
const IMAGE = 'kubeshim.local/emulated:latest';

export interface PodOptions {
  /** Parent of the pod's working directory. */
  baseDir: string;
  /** Heartbeat line interval of the pod log. */
  logIntervalMs: number;
  /** Where a refused terminal is told. */
  logger: Logger;
}

export class Pod {
  readonly namespace: string;
  readonly uid = randomUUID();
  /** The CRI's id for the pod sandbox (what its port-forward errors name). */
  readonly sandboxId = randomBytes(32).toString('hex');
  readonly createdAt = new Date();
  readonly containers: Container[];
  readonly ports: readonly PodPortSpec[];
  readonly log: PodLog;
  private readonly processes = new Set<PodProcess>();

  private constructor(
    readonly name: string,
    namespace: string,
    readonly dir: string,
    containerNames: string[],
    ports: PodPortSpec[],
    private readonly servers: Map<number, PortServer>,
    logIntervalMs: number,
    private readonly logger: Logger,
  ) {
    this.namespace = namespace;
    this.ports = ports;
    this.log = new PodLog(logIntervalMs);
    this.containers = containerNames.map((c) => new Container(c, () => this.spawn(MAIN_COMMAND), this.log));
  }

  static async start(def: PodDefinition, opts: PodOptions): Promise<Pod> {
    const namespace = def.namespace ?? 'default';
    const dir = join(opts.baseDir, namespace, def.name);
    await mkdir(dir, { recursive: true });
    const ports = def.ports ?? [];
    const servers = new Map<number, PortServer>();
    for (const p of ports) {
      if (p.serve !== 'none') servers.set(p.containerPort, await startPortServer(p.serve, def.name));
    }
    const containers = def.containers ?? [def.name];
    return new Pod(def.name, namespace, dir, containers, ports, servers, opts.logIntervalMs, opts.logger);
  }

  /** The local port standing for a pod port, if something listens there. */
  localPort(containerPort: number): number | undefined {
    return this.servers.get(containerPort)?.port;
  }

  /** The container a request names, or the apiserver's 400 (`streamLocation`). */
  resolveContainer(name: string | undefined): Container | Status {
    if (!name) {
      if (this.containers.length === 1) return this.containers[0]!;
      const names = this.containers.map((c) => c.name).join(' ');
      return badRequest(`a container name must be specified for pod ${this.name}, choose one of: [${names}]`);
    }
    return (
      this.containers.find((c) => c.name === name) ??
      badRequest(`container ${name} is not valid for pod ${this.name}`)
    );
  }

  /** Run argv in the pod's directory; the process is killed when the pod stops. */
  spawn(argv: readonly string[], tty?: { cols: number; rows: number }): PodProcess {
    let proc: PodProcess;
    try {
      proc = spawnProcess({
        argv,
        cwd: this.dir,
        env: {
          PATH: process.env.PATH,
          HOME: this.dir,
          HOSTNAME: this.name,
          LANG: 'C.UTF-8',
        },
        tty,
      });
    } catch (err) {
      // the client reads the message in its Failure status; whoever runs the emulator reads it here
      if (err instanceof TerminalsUnavailableError)
        this.logger.warn({ pod: this.name, command: argv }, err.message);
      throw err;
    }
    this.processes.add(proc);
    const forget = () => this.processes.delete(proc);
    proc.exited.then(forget, forget);
    return proc;
  }

  async stop(): Promise<void> {
    for (const c of this.containers) c.stop();
    for (const p of this.processes) p.kill();
    this.log.stop();
    await Promise.all([...this.servers.values()].map((s) => s.close()));
  }

  /** The v1 Pod object: Running and Ready. */
  toJSON(resourceVersion: string): Record<string, unknown> {
    const created = this.createdAt.toISOString();
    return {
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        uid: this.uid,
        resourceVersion,
        creationTimestamp: created,
        labels: { app: this.name },
      },
      spec: {
        containers: this.containers.map((c) => ({
          name: c.name,
          image: IMAGE,
          command: [...MAIN_COMMAND],
          ports: this.ports.map((p) => ({ name: p.name, containerPort: p.containerPort, protocol: 'TCP' })),
          resources: {},
          stdin: true,
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
        })),
        restartPolicy: 'Always',
        terminationGracePeriodSeconds: 30,
        dnsPolicy: 'ClusterFirst',
        nodeName: NODE_NAME,
        serviceAccountName: 'default',
        schedulerName: 'default-scheduler',
        enableServiceLinks: true,
        preemptionPolicy: 'PreemptLowerPriority',
        priority: 0,
      },
      status: {
        phase: 'Running',
        conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({
          type,
          status: 'True',
          lastProbeTime: null,
          lastTransitionTime: created,
        })),
        hostIP: '127.0.0.1',
        hostIPs: [{ ip: '127.0.0.1' }],
        podIP: '127.0.0.1',
        podIPs: [{ ip: '127.0.0.1' }],
        startTime: created,
        containerStatuses: this.containers.map((c) => ({
          name: c.name,
          state: { running: { startedAt: c.startedAt.toISOString() } },
          lastState: {},
          ready: true,
          restartCount: c.restartCount,
          image: IMAGE,
          imageID: `${IMAGE}@sha256:${'0'.repeat(64)}`,
          containerID: `containerd://${this.sandboxId.slice(0, 8)}${c.name}`,
          started: true,
        })),
        qosClass: 'BestEffort',
      },
    };
  }
}
