/** `kubeshim doctor`: flags → runDoctor → a table or JSON; exit 0 when a streaming path works. */
import { runDoctor } from '../doctor/doctor.js';
import { renderJson, renderTable, wantsColour } from '../doctor/report.js';
import { parsePositiveDuration } from '../server/limits.js';
import {
  checkKubeconfigFlag,
  parseFlags,
  parseUpstreamFlag,
  reportFailure,
  UsageError,
} from './command-line.js';

const USAGE = `Usage: kubeshim doctor [flags]

Probe the path to the upstream the way kubectl travels it: discovery, exec over SPDY and over
WebSocket v5, port-forward over the WebSocket tunnel and over SPDY. Prints which pass, the answer
that shows where a hop broke one, the round trip, and the --upstream-protocol to give 'serve'.

  --kubeconfig PATH      upstream TLS and credentials, as for serve (default $KUBECONFIG, ~/.kube/config)
  --context NAME         kubeconfig context (default: current-context)
  --upstream URL         API server URL (default: the context's server)
  --pod NAME             run \`true\` in this pod over each protocol (and PING through port-forward):
                         proves the whole path. Without it, only the handshakes, for a pod that does
                         not exist, which proves less (see README, "kubeshim doctor")
  --namespace NS         the namespace to probe in (default: the context's, else default)
  --container NAME       the container to exec in (default: the pod's only or default container)
  --idle DURATION        then hold a quiet session this long on each passing path, without pinging,
                         and report whether the path cut it (needs --pod)
  --timeout DURATION     for each handshake and each status (default 10s)
  --output table|json    default table (coloured on a terminal unless NO_COLOR is set)

Durations are Go-style (500ms, 30s, 5m, 1h30m); a bare number is seconds.

Exit status: 0 when at least one streaming path works, 1 when none does, 2 for a usage error.
`;

interface Parsed {
  kubeconfig?: string;
  context?: string;
  upstream?: string;
  pod?: string;
  namespace?: string;
  container?: string;
  idleSeconds?: number;
  timeoutMs: number;
  output: 'table' | 'json';
}

function parseDoctorArgs(argv: string[]): Parsed | 0 {
  try {
    const values = parseFlags(argv, {
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      upstream: { type: 'string' },
      pod: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      container: { type: 'string', short: 'c' },
      idle: { type: 'string' },
      timeout: { type: 'string', default: '10' },
      output: { type: 'string', short: 'o', default: 'table' },
      help: { type: 'boolean', short: 'h' },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (values.output !== 'table' && values.output !== 'json')
      throw new Error('--output must be table or json');
    const idleSeconds =
      values.idle === undefined ? undefined : parsePositiveDuration('--idle', values.idle) / 1000;
    if (idleSeconds !== undefined && values.pod === undefined)
      throw new Error('--idle needs --pod: a quiet session needs a pod to run in');
    if (values.container !== undefined && values.pod === undefined)
      throw new Error('--container goes with --pod');
    return {
      kubeconfig: values.kubeconfig,
      context: values.context,
      upstream: parseUpstreamFlag(values.upstream),
      pod: values.pod,
      namespace: values.namespace,
      container: values.container,
      idleSeconds,
      timeoutMs: parsePositiveDuration('--timeout', values.timeout),
      output: values.output,
    };
  } catch (err) {
    throw err instanceof UsageError ? err : new UsageError((err as Error).message);
  }
}

export async function doctorCommand(argv: string[]): Promise<number> {
  let parsed: Parsed | 0;
  let report: Awaited<ReturnType<typeof runDoctor>>;
  try {
    parsed = parseDoctorArgs(argv);
    if (parsed === 0) return 0;
    checkKubeconfigFlag(parsed.kubeconfig);
    report = await runDoctor(parsed);
  } catch (err) {
    return reportFailure('doctor', err);
  }
  const { output } = parsed;
  process.stdout.write(
    output === 'json' ? renderJson(report) : renderTable(report, wantsColour(process.stdout, process.env)),
  );
  return report.ok ? 0 : 1;
}
