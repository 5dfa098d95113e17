/**
 * Preloaded into the shim by the soak (with --expose-gc): SIGUSR2 runs a full garbage collection,
 * so that memory the shim still holds can be told from garbage not yet collected.
 */
process.on('SIGUSR2', () => (globalThis as { gc?: () => void }).gc?.());
