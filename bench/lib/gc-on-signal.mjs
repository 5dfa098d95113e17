/**
 * Preloaded into the shim by the soak (with --expose-gc): SIGUSR2 runs a full garbage collection,
 * so that memory the shim still holds can be told from garbage not yet collected. JavaScript, not
 * TypeScript: the soak's shim is the built CLI, without tsx.
 */
process.on('SIGUSR2', () => globalThis.gc?.());
