/**
 * Files that flags name, read where they are used (the listener's certificates and token, the
 * kubeconfig builder's CA, --secure-local's directory): when one cannot be read, the error says
 * which flag, which file and what is wrong, in the commands' voice (commands/command-line.ts).
 */
import { closeSync, openSync, readSync } from 'node:fs';

/** Certificates, keys, CA bundles and tokens are far smaller: a file past this is the wrong one. */
const MAX_FLAG_FILE = 16 * 1024 * 1024;

/** The contents of a file a flag names, or a sentence that says which flag and what is wrong. */
export function readFlagFile(flag: string, file: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new Error(`${flag} ${file}: ${fileProblem(err as NodeJS.ErrnoException)}`);
  }
  try {
    // read to a bound, not to the end: /dev/zero or a runaway pipe would fill memory
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return Buffer.concat(chunks, size);
      chunks.push(chunk.subarray(0, n));
      size += n;
      if (size > MAX_FLAG_FILE)
        throw new Error(
          `${flag} ${file}: larger than 16 MiB, which no certificate, key or token is: is it the right file?`,
        );
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw e.code === undefined ? e : new Error(`${flag} ${file}: ${fileProblem(e)}`);
  } finally {
    closeSync(fd);
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
