/**
 * The scenario registry: `npm run bench` runs these in order (`--only <name>` picks some). Each
 * names its load generator, the protocol the shim is forced to, its sizes and its target
 * (docs/design.md "Targets"). Naming: the client's protocol first (`ws` = WebSocket v5 or the
 * port-forward tunnel, `spdy` = SPDY), then the shape.
 */
import type { UpstreamKind } from '../lib/rig.js';
import { GiB, MiB, type Scenario } from '../lib/types.js';
import { idleScenario } from './idle.js';
import { freshLatencyScenario } from './keystroke-fresh.js';
import { latencyScenario } from './latency.js';
import { slowReaderScenario } from './slow-reader.js';
import { throughputScenario } from './throughput.js';

const WS_EXEC = {
  client: 'ws-exec-client',
  speaks: 'WS v5',
  translatedTo: 'SPDY',
  shimMode: 'spdy',
} as const;
const SPDY_EXEC = {
  client: 'spdy-exec-client',
  speaks: 'SPDY',
  translatedTo: 'WS v5',
  shimMode: 'websocket',
} as const;
const TUNNEL_PF = {
  client: 'portforward-client',
  speaks: 'WS tunnel',
  translatedTo: 'SPDY',
  shimMode: 'spdy',
} as const;
const SPDY_PF = {
  client: 'portforward-client',
  speaks: 'SPDY',
  translatedTo: 'WS tunnel',
  shimMode: 'websocket',
} as const;

const one = (quick: boolean) => (quick ? 64 * MiB : GiB);
const of32 = (quick: boolean) => (quick ? 2 * MiB : 32 * MiB);
const of64 = (quick: boolean) => (quick ? MiB : 16 * MiB);
/** Recorded sessions write what they carry to disk too: kept smaller than the others. */
const recordedOne = (quick: boolean) => (quick ? 32 * MiB : 256 * MiB);
const recordedOf8 = (quick: boolean) => (quick ? 8 * MiB : 64 * MiB);

/** `execUpstream`: which upstream serves the exec throughput and latency scenarios (`--upstream`). */
export function buildScenarios(execUpstream: UpstreamKind): Scenario[] {
  const exec = { upstream: execUpstream, target: 0.8 };
  const pf = { upstream: 'lean', target: 0.9, call: 'download', shimSessionsPerRun: 1 } as const;
  return [
    throughputScenario({
      ...WS_EXEC,
      ...exec,
      name: 'stdout-ws-1',
      description: 'exec stdout, one WS v5 session, translated to a SPDY upstream',
      call: 'stdout',
      sessions: 1,
      bytes: one,
      shimSessionsPerRun: 1,
    }),
    throughputScenario({
      ...WS_EXEC,
      ...exec,
      name: 'stdout-ws-32',
      description: 'exec stdout, 32 WS v5 sessions at once, translated to a SPDY upstream',
      call: 'stdout',
      sessions: 32,
      bytes: of32,
      shimSessionsPerRun: 32,
    }),
    throughputScenario({
      ...SPDY_EXEC,
      ...exec,
      name: 'stdout-spdy-1',
      description: 'exec stdout, one SPDY session, translated to a WS v5 upstream',
      call: 'stdout',
      sessions: 1,
      bytes: one,
      shimSessionsPerRun: 1,
    }),
    throughputScenario({
      ...SPDY_EXEC,
      ...exec,
      name: 'stdout-spdy-32',
      description: 'exec stdout, 32 SPDY sessions at once, translated to a WS v5 upstream',
      call: 'stdout',
      sessions: 32,
      bytes: of32,
      shimSessionsPerRun: 32,
    }),
    throughputScenario({
      ...WS_EXEC,
      ...exec,
      name: 'stdin-ws-1',
      description: 'exec stdin upload then CLOSE, one WS v5 session, translated to a SPDY upstream',
      call: 'stdin',
      sessions: 1,
      bytes: one,
      shimSessionsPerRun: 1,
    }),
    throughputScenario({
      ...WS_EXEC,
      ...exec,
      name: 'stdin-ws-32',
      description: 'exec stdin upload then CLOSE, 32 WS v5 sessions, translated to a SPDY upstream',
      call: 'stdin',
      sessions: 32,
      bytes: of32,
      shimSessionsPerRun: 32,
    }),
    throughputScenario({
      ...SPDY_EXEC,
      ...exec,
      name: 'stdin-spdy-1',
      description: 'exec stdin upload then FIN, one SPDY session, translated to a WS v5 upstream',
      call: 'stdin',
      sessions: 1,
      bytes: one,
      shimSessionsPerRun: 1,
    }),
    throughputScenario({
      ...SPDY_EXEC,
      ...exec,
      name: 'stdin-spdy-32',
      description: 'exec stdin upload then FIN, 32 SPDY sessions, translated to a WS v5 upstream',
      call: 'stdin',
      sessions: 32,
      bytes: of32,
      shimSessionsPerRun: 32,
    }),
    throughputScenario({
      ...TUNNEL_PF,
      ...pf,
      name: 'pf-ws-1',
      description: 'port-forward download, one connection, tunnel client, translated to a SPDY upstream',
      params: { transport: 'tunnel' },
      sessions: 1,
      bytes: one,
    }),
    throughputScenario({
      ...TUNNEL_PF,
      ...pf,
      name: 'pf-ws-64',
      description:
        'port-forward downloads, 64 connections of one tunnel session, translated to a SPDY upstream',
      params: { transport: 'tunnel' },
      sessions: 64,
      bytes: of64,
    }),
    throughputScenario({
      ...SPDY_PF,
      ...pf,
      name: 'pf-spdy-1',
      description: 'port-forward download, one connection, SPDY client, translated to a tunnel upstream',
      params: { transport: 'spdy' },
      sessions: 1,
      bytes: one,
    }),
    throughputScenario({
      ...SPDY_PF,
      ...pf,
      name: 'pf-spdy-64',
      description:
        'port-forward downloads, 64 connections of one SPDY session, translated to a tunnel upstream',
      params: { transport: 'spdy' },
      sessions: 64,
      bytes: of64,
    }),
    throughputScenario({
      ...WS_EXEC,
      upstream: execUpstream,
      target: 0.9,
      recording: true,
      name: 'record-ws-1',
      description:
        'exec stdout, one WS v5 session translated to SPDY, recorded (--record-dir); its baseline, in the relay column, is the same shim not recording',
      call: 'stdout',
      sessions: 1,
      bytes: recordedOne,
      shimSessionsPerRun: 1,
    }),
    throughputScenario({
      ...SPDY_EXEC,
      upstream: execUpstream,
      target: 0.9,
      recording: true,
      name: 'record-spdy-8',
      description:
        'exec stdout, 8 SPDY sessions translated to WS v5, recorded (--record-dir); its baseline, in the relay column, is the same shim not recording',
      call: 'stdout',
      sessions: 8,
      bytes: recordedOf8,
      shimSessionsPerRun: 8,
    }),
    ...[32, 64].map((sessions) =>
      throughputScenario({
        ...WS_EXEC,
        ...exec,
        name: `workers-ws-${sessions}`,
        description: `exec stdout, ${sessions} WS v5 sessions at once through \`kubeshim serve --workers 1\` and \`--workers 2\`, translated to a SPDY upstream`,
        call: 'stdout',
        sessions,
        bytes: sessions === 32 ? of32 : of64,
        shimSessionsPerRun: sessions,
        serveWorkers: [1, 2],
      }),
    ),
    latencyScenario({
      ...WS_EXEC,
      upstream: execUpstream,
      name: 'keystroke-ws',
      description: '1-byte stdin → stdout echo round trips, WS v5 client, translated to a SPDY upstream',
    }),
    latencyScenario({
      ...SPDY_EXEC,
      upstream: execUpstream,
      name: 'keystroke-spdy',
      description: '1-byte stdin → stdout echo round trips, SPDY client, translated to a WS v5 upstream',
    }),
    freshLatencyScenario({
      ...WS_EXEC,
      name: 'keystroke-fresh-ws',
      description:
        '1-byte stdin → stdout echo round trips through a fresh shim process (warmed up at start; in the relay column, not), WS v5 client, translated to a SPDY upstream',
    }),
    freshLatencyScenario({
      ...SPDY_EXEC,
      name: 'keystroke-fresh-spdy',
      description:
        '1-byte stdin → stdout echo round trips through a fresh shim process (warmed up at start; in the relay column, not), SPDY client, translated to a WS v5 upstream',
    }),
    idleScenario({
      ...WS_EXEC,
      name: 'idle-ws',
      description: 'idle exec sessions held open, WS v5 clients, translated to a SPDY upstream',
    }),
    idleScenario({
      ...SPDY_EXEC,
      name: 'idle-spdy',
      description: 'idle exec sessions held open, SPDY clients, translated to a WS v5 upstream',
    }),
    slowReaderScenario({
      ...WS_EXEC,
      name: 'slow-reader-ws',
      description: 'exec stdout to a WS v5 client reading far slower than the SPDY upstream writes',
    }),
    slowReaderScenario({
      ...SPDY_EXEC,
      name: 'slow-reader-spdy',
      description: 'exec stdout to a SPDY client reading far slower than the WS v5 upstream writes',
    }),
  ];
}
