/**
 * http-proxy's deprecation warnings, which a user of kubeshim can do nothing about, are dropped;
 * every other warning is emitted as before:
 * - DEP0060: it calls util._extend, which Node 22 and later deprecate, at the first proxied request;
 * - DEP0169: it calls url.parse at every request. Node does not warn about that for code under
 *   node_modules, but bundled into the single executable http-proxy is not under node_modules.
 */
import { isSea } from 'node:sea';

const DROPPED = new Set(isSea() ? ['DEP0060', 'DEP0169'] : ['DEP0060']);

function codeOf(warning: string | Error, rest: unknown[]): unknown {
  if (warning instanceof Error && 'code' in warning) return warning.code;
  const [typeOrOptions, code] = rest;
  if (typeOrOptions !== null && typeof typeOrOptions === 'object')
    return (typeOrOptions as { code?: unknown }).code;
  return code;
}

const emitWarning = process.emitWarning;
process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]): void {
  if (DROPPED.has(codeOf(warning, rest) as string)) return;
  (emitWarning as (...args: unknown[]) => void).call(this, warning, ...rest);
} as typeof process.emitWarning;
