/** The emulated cluster (see emulator.ts), for tests, benchmarks and `kubeshim demo`. */
export { type Emulator, type EmulatorOptions, type EmulatorTlsOptions, startEmulator } from './emulator.js';
export { GENERATIONS, type Generation, generationTraits, isGeneration } from './generation.js';
export { DEMO_POD, DEMO_PORTS, type PodDefinition } from './pod.js';
export type { PodPortSpec, PortService } from './pod-ports.js';
export type { FinishedSession, RefusalRecord } from './sessions.js';
