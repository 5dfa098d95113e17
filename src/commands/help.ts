/** `kubeshim help` (also --help, -h, and no command at all): the commands, one line each. */
import { basename } from 'node:path';

// Installed as `kubectl-shim` too, which kubectl runs as `kubectl shim`: the usage names the command
// the way it was typed.
const NAME = basename(process.argv[1] ?? '').startsWith('kubectl-shim') ? 'kubectl shim' : 'kubeshim';

const USAGE = `kubeshim — WebSocket ⇄ SPDY translating proxy for kubectl exec, attach, cp and port-forward

Usage:
  ${NAME} serve       [--listen HOST:PORT|PORT] [--upstream URL] [--kubeconfig PATH] [--context NAME]
                       [--upstream-protocol auto|spdy|websocket] [--tls-cert FILE --tls-key FILE]
                       [--log-level LEVEL]
  ${NAME} demo        the embedded demo: an emulated cluster with the shim in front of it
  ${NAME} kubeconfig  print a kubeconfig whose server is the shim
  ${NAME} doctor      probe the path to the upstream and say which protocols pass
  ${NAME} recordings  list the session recordings of serve --record-dir, or print one as text
  ${NAME} version     print the version (also --version)

Run '${NAME} <command> --help' for the flags of a command.
`;

/** Print the usage; `exitCode` is 2 when it stands in for a missing command. */
export function helpCommand(exitCode: 0 | 2): number {
  process.stdout.write(USAGE);
  return exitCode;
}
