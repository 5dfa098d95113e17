/**
 * Cluster generations the emulator can play (docs/protocols.md §2.3, §5.1, §10.2). Each says what the
 * path from kubectl to the CRI streaming server carries, and so what it refuses.
 */

export type Generation = 'legacy' | 'spdy' | 'modern' | 'websocket';

export const GENERATIONS: readonly Generation[] = ['legacy', 'spdy', 'modern', 'websocket'];

export interface GenerationTraits {
  /** What /version answers. */
  gitVersion: string;
  /**
   * SPDY upgrades reach the CRI server. When false, a hop in front strips `Upgrade` and the
   * apiserver answers 400 "Upgrade request required" (§1.1, §9).
   */
  spdy: boolean;
  /**
   * What becomes of WebSocket upgrades:
   * - `refused`: all of them get the x/net answer to an unknown subprotocol (403, empty body);
   * - `relayed`: byte-relayed to the kubelet/CRI (pre-1.29 apiserver): legacy protocols work, v5 gets
   *   the CRI's 403, the port-forward tunnel gets the kubelet's 400 for its missing `port`;
   * - `translated`: 1.31+ apiserver: v5 goes to the StreamTranslator, `SPDY/3.1+…` to the tunnel,
   *   everything else is relayed as above.
   */
  websocket: 'refused' | 'relayed' | 'translated';
  /** One line for people (the demo prints it). */
  description: string;
}

const TRAITS: Record<Generation, GenerationTraits> = {
  legacy: {
    gitVersion: 'v1.28.15',
    spdy: true,
    websocket: 'relayed',
    description: 'a 1.28 cluster: SPDY, and legacy WebSocket relayed to the CRI (no v5, no tunnel)',
  },
  spdy: {
    gitVersion: 'v1.28.15',
    spdy: true,
    websocket: 'refused',
    description: 'a SPDY-only path: every WebSocket upgrade is refused',
  },
  modern: {
    gitVersion: 'v1.33.1',
    spdy: true,
    websocket: 'translated',
    description: 'a 1.33 cluster: SPDY, WebSocket v5 translated, port-forward tunnel, legacy WebSocket',
  },
  websocket: {
    gitVersion: 'v1.33.1',
    spdy: false,
    websocket: 'translated',
    description: 'a 1.33 cluster behind a hop that carries only WebSocket (SPDY upgrades are stripped)',
  },
};

export function generationTraits(generation: Generation): GenerationTraits {
  return TRAITS[generation];
}

export function isGeneration(value: string): value is Generation {
  return (GENERATIONS as readonly string[]).includes(value);
}
