#!/usr/bin/env node
/**
 * kubeshim command line (docs/design.md, "Command-line contract"). Picks the command and hands its
 * flags to its module in commands/; nothing else lives here.
 */
import { parseArgs } from 'node:util';
import { reportFailure, UsageError } from './commands/command-line.js';
import { helpCommand } from './commands/help.js';
import { versionCommand } from './commands/version.js';

type Handler = (argv: string[]) => Promise<number>;

// loaded on use: a command does not pay for the others' dependencies at start-up
const COMMANDS: Record<string, Handler | undefined> = {
  serve: async (argv) => (await import('./commands/serve.js')).serveCommand(argv),
  demo: async (argv) => (await import('./commands/demo.js')).demoCommand(argv),
  kubeconfig: async (argv) => (await import('./commands/kubeconfig.js')).kubeconfigCommand(argv),
  doctor: async (argv) => (await import('./commands/doctor.js')).doctorCommand(argv),
  recordings: async (argv) => (await import('./commands/recordings.js')).recordingsCommand(argv),
};

export async function main(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv.slice(0, 1), allowPositionals: true, strict: false });
  const command = positionals[0];
  if (command === 'version' || argv[0] === '--version') return versionCommand();
  if (command === undefined || command === 'help' || argv[0] === '--help' || argv[0] === '-h')
    return helpCommand(argv.length === 0 ? 2 : 0);
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
