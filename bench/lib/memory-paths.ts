/**
 * The two middles a memory scenario compares (scenarios/idle.ts, scenarios/slow-reader.ts): a plain
 * TCP relay, and the shim translating to the other protocol, each between one client and the lean
 * upstream.
 */
import type { ClientName, ShimMode } from './rig.js';

export interface MemorySpec {
  name: string;
  description: string;
  client: ClientName;
  /** The client's protocol, e.g. "WS v5", and the translated upstream's, e.g. "SPDY". */
  speaks: string;
  translatedTo: string;
  /** The upstream protocol the shim is forced to. */
  shimMode: ShimMode;
}

export const relayPath = (spec: MemorySpec) => `${spec.speaks} client → TCP relay → ${spec.speaks} upstream`;
export const shimPath = (spec: MemorySpec) =>
  `${spec.speaks} client → kubeshim → ${spec.translatedTo} upstream`;
