/** `kubeshim doctor`: flags → runDoctor → a table or JSON; exit 0 when a streaming path works. */
import { parseArgs } from 'node:util';
import { runDoctor } from './doctor.js';
import { renderJson, renderTable } from './report.js';

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
  --idle SECONDS         then hold a quiet session this long on each passing path, without pinging,
                         and report whether the path cut it (needs --pod)
  --timeout SECONDS      for each handshake and each status (default 10)
  --output table|json    default table

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

function parseDoctorArgs(argv: string[]): Parsed | number {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
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
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (values.output !== 'table' && values.output !== 'json')
      throw new Error('--output must be table or json');
    const idleSeconds = values.idle === undefined ? undefined : positiveNumber(values.idle, '--idle');
    if (idleSeconds !== undefined && values.pod === undefined)
      throw new Error('--idle needs --pod: a quiet session needs a pod to run in');
    if (values.container !== undefined && values.pod === undefined)
      throw new Error('--container goes with --pod');
    return {
      kubeconfig: values.kubeconfig,
      context: values.context,
      upstream: values.upstream,
      pod: values.pod,
      namespace: values.namespace,
      container: values.container,
      idleSeconds,
      timeoutMs: positiveNumber(values.timeout, '--timeout') * 1000,
      output: values.output,
    };
  } catch (err) {
    process.stderr.write(`kubeshim doctor: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
}

function positiveNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`${flag} wants a number of seconds above 0 (got "${value}")`);
  return n;
}

export async function doctorCommand(argv: string[]): Promise<number> {
  const parsed = parseDoctorArgs(argv);
  if (typeof parsed === 'number') return parsed;
  const { output, ...options } = parsed;
  let report: Awaited<ReturnType<typeof runDoctor>>;
  try {
    report = await runDoctor(options);
  } catch (err) {
    process.stderr.write(`kubeshim doctor: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(output === 'json' ? renderJson(report) : renderTable(report));
  return report.ok ? 0 : 1;
}
