#!/usr/bin/env node
/**
 * kubeshim command line (design.md, "Command-line contract"). Parses the command and its flags and
 * hands over to the module that does the work; nothing else lives here.
 */
import { parseArgs } from 'node:util';

const USAGE = `kubeshim — WebSocket ⇄ SPDY translating proxy for kubectl exec, attach, cp and port-forward

Usage:
  kubeshim serve       [--listen HOST:PORT] [--upstream URL] [--kubeconfig PATH] [--context NAME]
                       [--upstream-protocol auto|spdy|websocket] [--tls-cert FILE --tls-key FILE]
                       [--log-level LEVEL]
  kubeshim demo        the embedded demo: an emulated cluster with the shim in front of it
  kubeshim kubeconfig  print a kubeconfig whose server is the shim
  kubeshim doctor      probe the path to the upstream and say which protocols pass
  kubeshim recordings  list the session recordings of serve --record-dir, or print one as text
  kubeshim version     print the version (also --version)

Run 'kubeshim <command> --help' for the flags of a command.
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
  if (!(command in COMMANDS)) {
    process.stderr.write(`kubeshim: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  const handler = COMMANDS[command];
  if (handler === undefined) {
    process.stderr.write(`kubeshim: '${command}' is not built yet\n`);
    return 2;
  }
  return handler(argv.slice(1));
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`kubeshim: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
