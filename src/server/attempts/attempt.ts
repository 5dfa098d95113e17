/**
 * The shape of an upstream attempt (one module each in this folder; router.ts plans and runs them).
 * An attempt either establishes the session and starts it running, or comes back with the refusal
 * it met, having written nothing to the client: the router may then try the next one.
 */

import type { StreamRequest } from '../../k8s/stream-request.js';
import type { UpstreamProtocol } from '../../upstream/choice.js';
import type { Refusal } from '../../upstream/dial.js';
import type { AttemptContext } from './context.js';

export interface Attempt {
  /** What the attempt does, client side → upstream side. */
  readonly name: string;
  /** True when the attempt can serve this request. */
  applies(sr: StreamRequest): boolean;
  /** The protocol it speaks upstream (metrics, logs, and `auto`'s memory). */
  upstream(sr: StreamRequest): UpstreamProtocol;
  /**
   * Resolves undefined once the session is established (and running), or with the refusal.
   * Throws ClientGone when the client left meanwhile, and any other error when the upstream could
   * not be reached.
   */
  run(ctx: AttemptContext): Promise<Refusal | undefined>;
}
