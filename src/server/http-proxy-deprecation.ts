/**
 * http-proxy calls util._extend, which Node 22 and later deprecate (DEP0060): the first proxied
 * request would print a DeprecationWarning that a user of kubeshim can do nothing about. Exactly that
 * warning is dropped here; every other warning is emitted as before.
 */
const DEP0060 = 'DEP0060';

function codeOf(warning: string | Error, rest: unknown[]): unknown {
  if (warning instanceof Error && 'code' in warning) return warning.code;
  const [typeOrOptions, code] = rest;
  if (typeOrOptions !== null && typeof typeOrOptions === 'object')
    return (typeOrOptions as { code?: unknown }).code;
  return code;
}

const emitWarning = process.emitWarning;
process.emitWarning = function (this: NodeJS.Process, warning: string | Error, ...rest: unknown[]): void {
  if (codeOf(warning, rest) === DEP0060) return;
  (emitWarning as (...args: unknown[]) => void).call(this, warning, ...rest);
} as typeof process.emitWarning;
