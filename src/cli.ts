#!/usr/bin/env node
/**
 * kubeshim command line (docs/design.md, "Command-line contract"). Parses the command and its flags and
 * hands over to the module that does the work; nothing else lives here.
 */
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { reportFailure, UsageError } from './command-line.js';

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

type Handler = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, Handler | undefined> = {
  serve: async (argv) => (await import('./server/serve-command.js')).serveCommand(argv),
  demo: async (argv) => (await import('./emulator/demo.js')).demoCommand(argv),
  kubeconfig: async (argv) => (await import('./server/kubeconfig-command.js')).kubeconfigCommand(argv),
  doctor: async (argv) => (await import('./doctor/doctor-command.js')).doctorCommand(argv),
  recordings: async (argv) => (await import('./record/recordings-command.js')).recordingsCommand(argv),
};

export async function main(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv.slice(0, 1), allowPositionals: true, strict: false });
  const command = positionals[0];
  if (command === 'version' || argv[0] === '--version') {
    process.stdout.write(`kubeshim ${(await import('./version.js')).kubeshimVersion()}\n`);
    return 0;
  }
  if (command === undefined || command === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(USAGE);
    return command === undefined && argv.length === 0 ? 2 : 0;
  }
  const handler = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (handler === undefined)
    return reportFailure(
      '',
      new UsageError(`unknown command '${command}' (commands: ${Object.keys(COMMANDS).join(', ')}, version)`),
    );
  // each command reports its own failures; this catches what escapes one, in the same voice
  return handler(argv.slice(1)).catch((err: unknown) => reportFailure(command, err));
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
