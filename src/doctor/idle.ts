/**
 * `doctor --idle SECONDS`: hold a quiet session open on each path that passed, without any ping
 * from our side, and report whether the path let it live (load balancers and proxies cut quiet
 * connections after 60 s–5 min, docs/protocols.md §7, §9). exec runs `sh -c 'sleep N'` and waits for
 * its status; port-forward holds a session with no connections, then sends one SPDY PING to tell a
 * live session from one that was dropped without a word.
 */

import { RC_V5, SPDY_REMOTECOMMAND_SERVER } from '../k8s/protocols.js';
import {
  describeOutcome,
  execQuery,
  formatMs,
  openSpdy,
  openSpdyPortForward,
  openTunnel,
  openWebSocket,
  PROBE_LABELS,
  type ProbeContext,
  type ProbeId,
  type ProbeResult,
} from './probes.js';
import { runSpdyExec, runWsExec, type SessionEnd, within } from './sessions.js';

export interface IdleResult {
  id: Exclude<ProbeId, 'discovery'>;
  protocol: string;
  /** True when the session lived through the whole quiet time. */
  held: boolean;
  /** False when the quiet time could not be measured (the command ended early by itself). */
  measured: boolean;
  /** How long it lived (the whole time when held). */
  afterMs: number;
  /** What happened, in a sentence. */
  how: string;
}

/** A command ending this much before its sleep is over did not sleep (timer granularity aside). */
const EARLY_MS = 250;

export async function holdQuiet(
  ctx: ProbeContext,
  passed: ProbeResult[],
  seconds: number,
): Promise<IdleResult[]> {
  const ids = passed.map((p) => p.id).filter((id): id is Exclude<ProbeId, 'discovery'> => id !== 'discovery');
  return Promise.all(ids.map((id) => holdOne(ctx, id, seconds * 1000)));
}

async function holdOne(
  ctx: ProbeContext,
  id: Exclude<ProbeId, 'discovery'>,
  quietMs: number,
): Promise<IdleResult> {
  const base = { id, protocol: PROBE_LABELS[id], measured: true };
  const deadline = quietMs + ctx.timeoutMs;
  const sleep = execQuery(ctx.pod, ['sh', '-c', `sleep ${quietMs / 1000}`]);
  switch (id) {
    case 'exec-spdy': {
      const opened = await openSpdy(ctx, 'exec', sleep, SPDY_REMOTECOMMAND_SERVER);
      if (!opened.ok)
        return { ...base, held: false, afterMs: 0, how: `could not open: ${opened.failure.answer}` };
      return {
        ...base,
        ...execHeld(await runSpdyExec(opened.socket, opened.head, opened.version, deadline), quietMs),
      };
    }
    case 'exec-websocket': {
      const opened = await openWebSocket(ctx, 'exec', sleep, [RC_V5]);
      if (!opened.ok)
        return { ...base, held: false, afterMs: 0, how: `could not open: ${opened.failure.answer}` };
      return { ...base, ...execHeld(await runWsExec(opened.ws, deadline), quietMs) };
    }
    case 'portforward-websocket':
    case 'portforward-spdy': {
      const opened = id === 'portforward-spdy' ? await openSpdyPortForward(ctx) : await openTunnel(ctx);
      if (!opened.ok)
        return { ...base, held: false, afterMs: 0, how: `could not open: ${opened.failure.answer}` };
      const { session } = opened;
      try {
        await within(session.ended, quietMs);
        const cut = session.cut();
        if (cut)
          return {
            ...base,
            held: false,
            afterMs: cut.afterMs,
            how: `cut after ${seconds(cut.afterMs)}: ${cut.how}`,
          };
        const rtt = await session.ping(ctx.timeoutMs);
        if (rtt === undefined)
          return {
            ...base,
            held: false,
            afterMs: quietMs,
            how: `dropped without a word: a SPDY PING after ${seconds(quietMs)} went unanswered`,
          };
        return {
          ...base,
          held: true,
          afterMs: quietMs,
          how: `held ${seconds(quietMs)}; a SPDY PING then took ${formatMs(rtt)}`,
        };
      } finally {
        session.close();
      }
    }
  }
}

function execHeld(
  end: SessionEnd,
  quietMs: number,
): Omit<IdleResult, 'id' | 'protocol' | 'measured'> & { measured?: boolean } {
  if (end.outcome) {
    const status = describeOutcome(end.outcome);
    if (end.outcome.kind === 'success' && end.elapsedMs >= quietMs - EARLY_MS)
      return {
        held: true,
        afterMs: end.elapsedMs,
        how: `held ${seconds(quietMs)}; the status came back (${status})`,
      };
    return {
      held: false,
      measured: false,
      afterMs: end.elapsedMs,
      how: `not measured: \`sleep ${quietMs / 1000}\` in the pod ended by itself after ${seconds(end.elapsedMs)} (${status}); the pod needs a sleep command`,
    };
  }
  if (end.cut)
    return { held: false, afterMs: end.elapsedMs, how: `cut after ${seconds(end.elapsedMs)}: ${end.cut}` };
  return {
    held: false,
    afterMs: end.elapsedMs,
    how: `dropped without a word: no status ${seconds(end.elapsedMs - quietMs)} after the command ended`,
  };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
