/**
 * `serve`'s look at its upstream once at start: kubectl's discovery (GET /version, /api) through the
 * same target. A failure is a warning, not fatal (the API server may come up later); it says what
 * was seen and points at `kubeshim doctor`, which looks at the whole path.
 */
import { probeDiscovery } from '../doctor/probes.js';
import type { Logger } from '../observe/logger.js';
import type { UpstreamTarget } from '../upstream/target.js';

export async function checkUpstream(target: UpstreamTarget, log: Logger, timeoutMs = 5000): Promise<boolean> {
  const result = await probeDiscovery({ target, timeoutMs });
  if (result.verdict === 'pass') {
    log.info({ upstream: target.url.origin, answer: result.answer }, 'upstream answers');
    return true;
  }
  log.warn(
    { upstream: target.url.origin, answer: result.answer, why: result.why },
    `upstream check failed: ${result.answer}${result.why ? ` (${result.why})` : ''}; sessions fail until it answers; run 'kubeshim doctor' to see where the path breaks`,
  );
  return false;
}
