/**
 * Graceful stop (SIGTERM): the listener stops accepting, sessions in flight may finish for up to
 * the grace period (`--shutdown-grace`), then each one still open is ended with a Failure status
 * saying that the proxy is shutting down (ActiveSessions.abortAll; every bridge tells its client
 * the closest way its protocol has), and whatever is left — watches, `logs -f` — is cut.
 */
import type { Logger } from '../observe/logger.js';
import { formatDuration } from './limits.js';
import type { Shim } from './listener.js';

export const SHUTDOWN_REASON = 'kubeshim is shutting down';
/** Time the bridges get to write their statuses before connections are cut. */
const FLUSH_MS = 2000;

/**
 * Drain `shim` and stop it. `hurry` (a second signal) ends the grace period early. Resolves once the
 * listener is closed, or FLUSH_MS after the connections were cut.
 */
export async function drain(
  shim: Shim,
  graceMs: number,
  log: Logger,
  hurry?: Promise<unknown>,
): Promise<void> {
  const { server, sessions } = shim;
  shim.stopAccepting();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  if (sessions.size > 0) {
    log.info({ sessions: sessions.size, grace: formatDuration(graceMs) }, 'waiting for sessions to finish');
    const idle = sessions.whenIdle(graceMs);
    const done = await (hurry ? Promise.race([idle, hurry.then(() => false)]) : idle);
    if (!done) {
      log.warn({ sessions: sessions.size }, `ending open sessions: ${SHUTDOWN_REASON}`);
      sessions.abortAll(SHUTDOWN_REASON);
      await sessions.whenIdle(FLUSH_MS);
    }
  }
  server.closeAllConnections();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise((r) => (timer = setTimeout(r, FLUSH_MS)))]);
  clearTimeout(timer);
}
