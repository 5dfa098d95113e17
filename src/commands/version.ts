/**
 * `kubeshim version` (also --version): package.json's version, read beside src/ or dist/. A single
 * executable has no package.json beside it: its bundler defines KUBESHIM_VERSION instead.
 */
import { readFileSync } from 'node:fs';

declare const KUBESHIM_VERSION: string | undefined;

export function versionCommand(): number {
  process.stdout.write(`kubeshim ${kubeshimVersion()}\n`);
  return 0;
}

function kubeshimVersion(): string {
  if (typeof KUBESHIM_VERSION === 'string') return KUBESHIM_VERSION;
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
