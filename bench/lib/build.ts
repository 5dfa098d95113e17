/**
 * The bench measures the JavaScript users run, not the sources through tsx: tsx's loader thread and
 * its transform (esbuild's keepNames gives every named closure a `name` property of its own) change
 * both the CPU and the memory of what is measured. So the runner compiles src/ and bench/ with tsc
 * into .bench-build/ first, as `npm run build` compiles the package, and the worker processes run
 * that with plain node (bench/lib/worker.ts).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Compile the repository's tsc `project` into `outDir` (inside the repository, so that the
 * compiled modules find node_modules).
 */
export function compileInto(project: string, outDir: string): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(REPO, project), '--outDir', outDir], {
    cwd: REPO,
    stdio: 'inherit',
  });
}

/** Compile src/ and bench/; returns the directory that mirrors the repository (its src/ and bench/). */
export function buildBench(): string {
  const out = join(REPO, '.bench-build');
  rmSync(out, { recursive: true, force: true });
  compileInto('tsconfig.bench.json', out);
  // `kubeshim --version` reads the package.json two folders above its module, as in dist/
  copyFileSync(join(REPO, 'package.json'), join(out, 'package.json'));
  return out;
}
