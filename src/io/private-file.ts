/**
 * Writing a file only its owner may read (kubeconfigs with tokens, keys), so that no moment exists
 * when it holds the secret with a wider mode: the text goes into a new file (0600) beside it, which
 * is then renamed over it. An existing file's mode is not kept, a reader that had opened the old one
 * never sees the new text through it, and a crash leaves the old file whole.
 */
import { existsSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/** Replace `file` with `text`, 0600; a symlink's target is replaced, not the link. Throws the system's error. */
export function replacePrivately(file: string, text: string): void {
  const target = existsSync(file) ? realpathSync(file) : file;
  const temporary = `${target}.${process.pid}.tmp`;
  // created new (O_EXCL): never written through a link or file someone else put there
  rmSync(temporary, { force: true });
  try {
    writeFileSync(temporary, text, { mode: 0o600, flag: 'wx' });
    renameSync(temporary, target);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw err;
  }
}
