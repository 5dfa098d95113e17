/**
 * Files that flags name, read where they are used (the listener's certificates and token, the
 * kubeconfig builder's CA, --secure-local's directory): when one cannot be read, the error says
 * which flag, which file and what is wrong, in the commands' voice (commands/command-line.ts).
 */
import { readFileSync } from 'node:fs';

/** The contents of a file a flag names, or a sentence that says which flag and what is wrong. */
export function readFlagFile(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${flag} ${file}: ${fileProblem(err as NodeJS.ErrnoException)}`);
  }
}

/** A failed file operation in a few words, with what to do. */
export function fileProblem(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied (check its owner and mode)';
    case 'EISDIR':
      return 'is a directory, not a file';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    default:
      return err.code ?? err.message;
  }
}
