/**
 * `kubeshim doctor`: the path to the upstream probed the way a user's kubectl travels it, one
 * protocol at a time, and the `--upstream-protocol` that follows from what passed.
 */
import type { UpstreamMode } from '../upstream/choice.js';
import { loadKubeconfig } from '../upstream/kubeconfig.js';
import { loadUpstreamTarget, type TargetOptions } from '../upstream/target.js';
import { holdQuiet, type IdleResult } from './idle.js';
import {
  PROBE_POD,
  type ProbeContext,
  type ProbeId,
  type ProbePod,
  type ProbeResult,
  probeDiscovery,
  probeExecSpdy,
  probeExecWebSocket,
  probePortForwardSpdy,
  probePortForwardTunnel,
} from './probes.js';

export interface DoctorOptions extends TargetOptions {
  pod?: string;
  namespace?: string;
  container?: string;
  /** Hold a quiet session this long on each passing path (needs a pod). */
  idleSeconds?: number;
  /** Per handshake, and for a status to come back. */
  timeoutMs: number;
}

export interface Recommendation {
  upstreamProtocol: UpstreamMode | undefined;
  reason: string;
}

/** One failure, with every probe that met it: identical failures are told once. */
export interface Finding {
  probes: ProbeId[];
  answer: string;
  why?: string;
}

export interface DoctorReport {
  /** The upstream as `serve` would reach it (never a secret). */
  upstream: string;
  /** The Via header of the upstream's answers when it names a kubeshim: one is on the path. */
  via?: string;
  pod: ProbePod;
  probes: ProbeResult[];
  recommendation: Recommendation;
  /** The failures, identical ones collapsed. */
  findings: Finding[];
  idle?: { seconds: number; results: IdleResult[] };
  /** At least one streaming path works (the exit code's 0). */
  ok: boolean;
}

export async function runDoctor(
  opts: DoctorOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<DoctorReport> {
  const target = await loadUpstreamTarget(opts, env);
  const pod: ProbePod = {
    namespace: opts.namespace ?? contextNamespace(opts, env) ?? 'default',
    name: opts.pod ?? PROBE_POD,
    container: opts.container,
    named: opts.pod !== undefined,
  };
  const ctx: ProbeContext = { target, pod, timeoutMs: opts.timeoutMs };
  const probes: ProbeResult[] = [];
  // one after the other, so that each round trip is its own
  for (const probe of [
    probeDiscovery,
    probeExecSpdy,
    probeExecWebSocket,
    probePortForwardTunnel,
    probePortForwardSpdy,
  ])
    probes.push(await probe(ctx));
  const discovery = probes[0]!;
  const sameConnectionFailure = (p: ProbeResult) =>
    p.verdict === 'fail' &&
    p.statusCode === undefined &&
    discovery.verdict === 'fail' &&
    discovery.statusCode === undefined;
  // a connection that fails before any answer fails the same way for every probe: discovery names why
  for (const [i, p] of probes.entries())
    if (i > 0 && sameConnectionFailure(p)) probes[i] = { ...p, answer: discovery.answer, why: discovery.why };
  const streaming = probes.filter((p) => p.id !== 'discovery');
  const report: DoctorReport = {
    upstream: target.describe(),
    via: discovery.via,
    pod,
    probes,
    recommendation: recommend(streaming),
    findings: findings(probes),
    ok: streaming.some((p) => p.verdict !== 'fail'),
  };
  if (opts.idleSeconds !== undefined && pod.named) {
    const passed = streaming.filter((p) => p.verdict === 'pass');
    report.idle = { seconds: opts.idleSeconds, results: await holdQuiet(ctx, passed, opts.idleSeconds) };
  }
  target.agent.destroy();
  return report;
}

function findings(probes: ProbeResult[]): Finding[] {
  const out: Finding[] = [];
  for (const p of probes) {
    if (p.verdict === 'pass' || !p.why) continue;
    const same = out.find((f) => f.answer === p.answer && f.why === p.why);
    if (same) same.probes.push(p.id);
    else out.push({ probes: [p.id], answer: p.answer, why: p.why });
  }
  return out;
}

/** The namespace of the context `serve` would use, as kubectl defaults it. */
function contextNamespace(opts: TargetOptions, env: NodeJS.ProcessEnv): string | undefined {
  try {
    return loadKubeconfig({ kubeconfig: opts.kubeconfig, context: opts.context }, env)?.context.namespace;
  } catch {
    return undefined; // loadUpstreamTarget has already said what is wrong with it
  }
}

/**
 * Which `--upstream-protocol` the shim should use, from the streaming probes. Both families carried:
 * auto relays each client's own protocol. One family only: force it, so that no session pays for a
 * refused first try. Mixed (exec over one, port-forward over the other): auto finds out per
 * subresource and remembers.
 */
export function recommend(streaming: ProbeResult[]): Recommendation {
  const works = (id: ProbeId) => streaming.find((p) => p.id === id)?.verdict !== 'fail';
  const proven = streaming.every((p) => p.verdict !== 'reached');
  const spdy = works('exec-spdy') && works('portforward-spdy');
  const websocket = works('exec-websocket') && works('portforward-websocket');
  const unproven = proven
    ? ''
    : ' (not proven without --pod: the upgrades reached the API server only as far as its pod lookup)';
  if (spdy && websocket)
    return {
      upstreamProtocol: 'auto',
      reason: `the path carries SPDY and WebSocket: auto relays each client's own protocol${unproven}`,
    };
  if (spdy)
    return {
      upstreamProtocol: 'spdy',
      reason: `the path carries SPDY and not WebSocket: WebSocket clients (kubectl 1.30+) are translated to SPDY${unproven}`,
    };
  if (websocket)
    return {
      upstreamProtocol: 'websocket',
      reason: `the path carries WebSocket and not SPDY: SPDY clients (kubectl before 1.30, client-go tools) are translated to WebSocket${unproven}`,
    };
  if (streaming.some((p) => p.verdict !== 'fail'))
    return {
      upstreamProtocol: 'auto',
      reason:
        'exec and port-forward pass over different protocols: auto tries one, falls back to the other and remembers',
    };
  return {
    upstreamProtocol: undefined,
    reason: 'no streaming path works from here: fix the failing hop first',
  };
}
