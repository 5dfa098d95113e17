/** The version printed by `kubeshim --version`: package.json's, read beside src/ or dist/. */
import { readFileSync } from 'node:fs';

export function kubeshimVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
