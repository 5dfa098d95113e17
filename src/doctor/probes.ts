/**
 * The doctor's probes: each sends what kubectl sends for one protocol (docs/protocols.md §2.1, §2.2,
 * §4.3) through the upstream target — its TLS, proxy and credentials, as `serve` would use them —
 * and reads the answer with diagnose.ts. With a pod, a probe that gets its 101 also proves the
 * session: `true` runs and its status comes back, or a SPDY PING crosses a port-forward session.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { TunnelStream } from '../channel/tunnel.js';
import {
  HEADER_STREAM_PROTOCOL,
  PORTFORWARD,
  RC_V1,
  RC_V5,
  remoteCommandVersion,
  SPDY_REMOTECOMMAND_SERVER,
  TUNNEL_PORTFORWARD,
  UPGRADE_SPDY,
} from '../k8s/protocols.js';
import type { StatusOutcome } from '../k8s/status.js';
import type { UpstreamProtocol } from '../upstream/choice.js';
import { dialUpgrade, dialWebSocket, type Refusal } from '../upstream/dial.js';
import type { UpstreamTarget } from '../upstream/target.js';
import {
  headerOf,
  headerValues,
  isPlainToTlsAnswer,
  oneLine,
  plainToTls,
  type Reading,
  readDialError,
  readRefusal,
  readSpdyUpgrade,
  type StreamSubresource,
  type Transport,
  viaNamesKubeshim,
} from './diagnose.js';
import { speaksTls } from './scheme.js';
import { PortForwardSession, runSpdyExec, runWsExec, type SessionEnd } from './sessions.js';

export type ProbeId =
  | 'discovery'
  | 'exec-spdy'
  | 'exec-websocket'
  | 'portforward-websocket'
  | 'portforward-spdy';

export interface ProbeResult extends Reading {
  id: ProbeId;
  subresource: 'discovery' | StreamSubresource;
  /** The protocol as kubectl offers it. */
  protocol: string;
  /** The `--upstream-protocol` that makes the shim take this path (streaming probes). */
  upstreamProtocol?: UpstreamProtocol;
  /** HTTP status of the answer (101 for an upgrade). */
  statusCode?: number;
  /** From sending the request to its answer, connection set-up included. */
  rttMs?: number;
  /** The answer's Via header when it names a kubeshim (discovery). */
  via?: string;
}

/** Pod named by the user, or the probe pod that does not exist (see diagnose.ts for what that proves). */
export interface ProbePod {
  namespace: string;
  name: string;
  container?: string;
  /** True when the user named it: the probes then run a command or a PING in it. */
  named: boolean;
}

export interface ProbeContext {
  target: UpstreamTarget;
  pod: ProbePod;
  timeoutMs: number;
}

/** The pod asked for when none is named: a name no pod has, so that nothing runs anywhere. */
export const PROBE_POD = 'kubeshim-doctor-no-such-pod';

const USER_AGENT = 'kubeshim-doctor';

export const PROBE_LABELS: Record<Exclude<ProbeId, 'discovery'>, string> = {
  'exec-spdy': `SPDY/3.1 ${SPDY_REMOTECOMMAND_SERVER[0]}`,
  'exec-websocket': `WebSocket ${RC_V5}`,
  'portforward-websocket': `WebSocket ${TUNNEL_PORTFORWARD}`,
  'portforward-spdy': `SPDY/3.1 ${PORTFORWARD}`,
};

/** GET /version and /api, as kubectl's discovery does first. */
export async function probeDiscovery(ctx: Pick<ProbeContext, 'target' | 'timeoutMs'>): Promise<ProbeResult> {
  const base = {
    id: 'discovery' as const,
    subresource: 'discovery' as const,
    protocol: 'GET /version, /api',
  };
  let headers: OutgoingHttpHeaders;
  try {
    headers = await requestHeaders(ctx);
  } catch (err) {
    return { ...base, ...credentialFailure(err as Error) };
  }
  const started = performance.now();
  const answers: { path: string; answer: Refusal }[] = [];
  try {
    for (const path of ['/version', '/api']) {
      // dialUpgrade hands back any answer that is not a 101 with its status and body: a plain GET too
      const r = await dialUpgrade(ctx.target, 'GET', path, headers, { handshakeTimeoutMs: ctx.timeoutMs });
      if (r.ok) {
        r.socket.destroy();
        return { ...base, verdict: 'fail', answer: `${path}: 101 to a plain GET`, why: 'not an API server' };
      }
      answers.push({ path, answer: r.refusal });
    }
  } catch (err) {
    const rttMs = performance.now() - started;
    if (ctx.target.url.protocol === 'http:' && (await speaksTls(ctx.target.url, ctx.timeoutMs)))
      return { ...base, ...plainToTls(ctx.target.url), rttMs };
    return { ...base, ...readDialError(err as Error, ctx.timeoutMs, ctx.target.url), rttMs };
  }
  const rttMs = (performance.now() - started) / answers.length;
  const failed = answers.find((a) => a.answer.statusCode !== 200);
  if (failed && isPlainToTlsAnswer(failed.answer))
    return { ...base, ...plainToTls(ctx.target.url), statusCode: failed.answer.statusCode, rttMs };
  if (failed) {
    const code = failed.answer.statusCode;
    return {
      ...base,
      verdict: 'fail',
      statusCode: code,
      answer: `${failed.path}: ${code} ${oneLine(failed.answer.body.toString('utf8'))}${from(failed.answer)}`,
      why:
        code === 401
          ? 'the credentials were refused: check --kubeconfig/--context'
          : 'kubectl would fail here before any exec or port-forward',
      rttMs,
    };
  }
  let version = '';
  try {
    version = String(JSON.parse(answers[0]!.answer.body.toString('utf8')).gitVersion ?? '');
  } catch {
    // an answer without a version is still an answer
  }
  const via = headerValues(answers[0]!.answer, 'via').join(', ');
  return {
    ...base,
    verdict: 'pass',
    statusCode: 200,
    answer: `200${version ? ` ${version}` : ''}`,
    rttMs,
    ...(viaNamesKubeshim(via) ? { via } : {}),
  };
}

/** exec over SPDY, offering what a CRI server accepts (§2.1). */
export async function probeExecSpdy(ctx: ProbeContext): Promise<ProbeResult> {
  const base = probeBase('exec-spdy', 'exec', 'spdy');
  const opened = await openSpdy(ctx, 'exec', execQuery(ctx.pod, ['true']), SPDY_REMOTECOMMAND_SERVER);
  if (!opened.ok) return { ...base, ...opened.failure };
  const end = await runSpdyExec(opened.socket, opened.head, opened.version, ctx.timeoutMs);
  return { ...base, ...execReading(opened.protocol, end), statusCode: 101, rttMs: opened.rttMs };
}

/** exec over WebSocket, offering only v5 as kubectl does (§2.2). */
export async function probeExecWebSocket(ctx: ProbeContext): Promise<ProbeResult> {
  const base = probeBase('exec-websocket', 'exec', 'websocket');
  const opened = await openWebSocket(ctx, 'exec', execQuery(ctx.pod, ['true']), [RC_V5]);
  if (!opened.ok) return { ...base, ...opened.failure };
  const end = await runWsExec(opened.ws, ctx.timeoutMs);
  return { ...base, ...execReading(opened.protocol, end), statusCode: 101, rttMs: opened.rttMs };
}

/** port-forward over the WebSocket tunnel (§4.3), then a SPDY PING inside it. */
export async function probePortForwardTunnel(ctx: ProbeContext): Promise<ProbeResult> {
  const base = probeBase('portforward-websocket', 'portforward', 'websocket');
  const opened = await openTunnel(ctx);
  if (!opened.ok) return { ...base, ...opened.failure };
  return { ...base, ...(await pingReading(opened.protocol, opened.session, ctx)), rttMs: opened.rttMs };
}

/** port-forward over SPDY (§4.1), then a SPDY PING. */
export async function probePortForwardSpdy(ctx: ProbeContext): Promise<ProbeResult> {
  const base = probeBase('portforward-spdy', 'portforward', 'spdy');
  const opened = await openSpdyPortForward(ctx);
  if (!opened.ok) return { ...base, ...opened.failure };
  return { ...base, ...(await pingReading(opened.protocol, opened.session, ctx)), rttMs: opened.rttMs };
}

// ---- opening sessions (also used by --idle) ------------------------------------------------------

type Failed = { ok: false; failure: Reading & { statusCode?: number; rttMs?: number } };

export type OpenedSpdy =
  | {
      ok: true;
      socket: Duplex;
      head: Buffer;
      protocol: string;
      version: NonNullable<ReturnType<typeof remoteCommandVersion>>;
      rttMs: number;
    }
  | Failed;

export type OpenedWebSocket = { ok: true; ws: WebSocket; protocol: string; rttMs: number } | Failed;

export type OpenedPortForward =
  | { ok: true; session: PortForwardSession; protocol: string; rttMs: number }
  | Failed;

export async function openSpdy(
  ctx: ProbeContext,
  subresource: StreamSubresource,
  query: string,
  offer: string[],
): Promise<OpenedSpdy> {
  let headers: OutgoingHttpHeaders;
  try {
    headers = await requestHeaders(ctx);
  } catch (err) {
    return { ok: false, failure: credentialFailure(err as Error) };
  }
  const started = performance.now();
  try {
    const r = await dialUpgrade(
      ctx.target,
      'POST',
      podPath(ctx.pod, subresource) + query,
      { ...headers, connection: 'Upgrade', upgrade: UPGRADE_SPDY, [HEADER_STREAM_PROTOCOL]: offer },
      { handshakeTimeoutMs: ctx.timeoutMs },
    );
    const rttMs = performance.now() - started;
    if (!r.ok) return refused('spdy', subresource, r.refusal, ctx, rttMs);
    const bad = readSpdyUpgrade(r.response.headers, subresource);
    if (bad) {
      r.socket.destroy();
      return { ok: false, failure: { ...bad, statusCode: 101, rttMs } };
    }
    const protocol = String(r.response.headers[HEADER_STREAM_PROTOCOL]).trim();
    const version = remoteCommandVersion(protocol) ?? remoteCommandVersion(RC_V1)!;
    return { ok: true, socket: r.socket, head: r.head, protocol, version, rttMs };
  } catch (err) {
    return {
      ok: false,
      failure: {
        ...readDialError(err as Error, ctx.timeoutMs, ctx.target.url),
        rttMs: performance.now() - started,
      },
    };
  }
}

export async function openWebSocket(
  ctx: ProbeContext,
  subresource: StreamSubresource,
  query: string,
  protocols: string[],
): Promise<OpenedWebSocket> {
  let headers: OutgoingHttpHeaders;
  try {
    headers = await requestHeaders(ctx);
  } catch (err) {
    return { ok: false, failure: credentialFailure(err as Error) };
  }
  const started = performance.now();
  try {
    const r = await dialWebSocket(ctx.target, podPath(ctx.pod, subresource) + query, protocols, headers, {
      handshakeTimeoutMs: ctx.timeoutMs,
    });
    const rttMs = performance.now() - started;
    if (!r.ok) return refused('websocket', subresource, r.refusal, ctx, rttMs);
    return { ok: true, ws: r.ws, protocol: r.protocol, rttMs };
  } catch (err) {
    return {
      ok: false,
      failure: {
        ...readDialError(err as Error, ctx.timeoutMs, ctx.target.url),
        rttMs: performance.now() - started,
      },
    };
  }
}

export async function openTunnel(ctx: ProbeContext): Promise<OpenedPortForward> {
  const opened = await openWebSocket(ctx, 'portforward', '', [TUNNEL_PORTFORWARD]);
  if (!opened.ok) return opened;
  const session = new PortForwardSession(new TunnelStream(opened.ws), Buffer.alloc(0));
  return { ok: true, session, protocol: opened.protocol, rttMs: opened.rttMs };
}

export async function openSpdyPortForward(ctx: ProbeContext): Promise<OpenedPortForward> {
  const opened = await openSpdy(ctx, 'portforward', '', [PORTFORWARD]);
  if (!opened.ok) return opened;
  const session = new PortForwardSession(opened.socket, opened.head);
  return { ok: true, session, protocol: opened.protocol, rttMs: opened.rttMs };
}

/** The exec query kubectl sends for `kubectl exec POD [-c C] -- command…` (§1.1). */
export function execQuery(pod: ProbePod, command: string[]): string {
  const q = new URLSearchParams();
  for (const arg of command) q.append('command', arg);
  if (pod.container) q.set('container', pod.container);
  q.set('stdout', 'true');
  q.set('stderr', 'true');
  return `?${q.toString()}`;
}

// ---- readings ------------------------------------------------------------------------------------

function probeBase(id: Exclude<ProbeId, 'discovery'>, subresource: StreamSubresource, transport: Transport) {
  return { id, subresource, protocol: PROBE_LABELS[id], upstreamProtocol: transport };
}

function refused(
  transport: Transport,
  subresource: StreamSubresource,
  refusal: Refusal,
  ctx: ProbeContext,
  rttMs: number,
): Failed {
  const reading = readRefusal(transport, subresource, refusal, ctx.pod);
  return { ok: false, failure: { ...reading, statusCode: refusal.statusCode, rttMs } };
}

/** Any status that comes back proves the session crossed the path; its content is only reported. */
function execReading(protocol: string, end: SessionEnd): Reading {
  const answer = `101 ${protocol}`;
  if (end.outcome) return { verdict: 'pass', answer: `${answer}; true: ${describeOutcome(end.outcome)}` };
  if (end.cut)
    return {
      verdict: 'fail',
      answer: `${answer}; ended without a status: ${end.cut}`,
      why: 'the upgrade passed but the session was cut before its status (kubectl would read that as success)',
    };
  return {
    verdict: 'fail',
    answer: `${answer}; no status within ${Math.round(end.elapsedMs / 1000)} s`,
    why: 'the upgrade passed but nothing came back through the session',
  };
}

export function describeOutcome(outcome: StatusOutcome): string {
  switch (outcome.kind) {
    case 'success':
      return 'exit 0';
    case 'exit':
      return `exit ${outcome.code}`;
    case 'failure':
    case 'invalid':
      return oneLine(outcome.message);
  }
}

async function pingReading(
  protocol: string,
  session: PortForwardSession,
  ctx: ProbeContext,
): Promise<Reading> {
  try {
    const rtt = await session.ping(ctx.timeoutMs);
    if (rtt !== undefined) return { verdict: 'pass', answer: `101 ${protocol}; SPDY PING ${formatMs(rtt)}` };
    return {
      verdict: 'fail',
      answer: `101 ${protocol}; SPDY PING unanswered`,
      why: 'the upgrade passed but SPDY frames do not cross the session',
    };
  } finally {
    session.close();
  }
}

async function requestHeaders(ctx: Pick<ProbeContext, 'target'>): Promise<OutgoingHttpHeaders> {
  return { ...(await ctx.target.authHeaders()), 'user-agent': USER_AGENT };
}

function credentialFailure(err: Error): Reading {
  return {
    verdict: 'fail',
    answer: `no credentials: ${oneLine(err.message)}`,
    why: 'the kubeconfig credential (token file or exec plugin) failed',
  };
}

/** ` from <Server header>` when the answer has one: often the name of the hop that answered. */
function from(refusal: Refusal): string {
  const server = headerOf(refusal, 'server');
  return server ? ` from ${server}` : '';
}

function podPath(pod: ProbePod, subresource: StreamSubresource): string {
  return `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}/${subresource}`;
}

export function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}
