/**
 * A shim measurement only counts if the shim says its sessions ended well: its `session` log lines
 * (read in bench/workers/shim.ts) must all be successes. Checked once per scenario, at its end.
 */
import type { Worker } from './worker.js';

interface SessionsReport {
  outcomes: Record<string, number>;
  problems: string[];
  active: number;
}

/** Forget what the shim carried before this scenario. */
export async function resetShimSessions(shim: Worker): Promise<void> {
  await shim.call('sessions');
}

/** Throw unless every session since the reset ended as a success (waiting briefly for the last lines). */
export async function expectShimSessionsOk(shim: Worker, minimum: number): Promise<number> {
  const seen: Record<string, number> = {};
  const problems: string[] = [];
  const deadline = performance.now() + 5000;
  for (;;) {
    const r = await shim.call<SessionsReport>('sessions');
    for (const [k, n] of Object.entries(r.outcomes)) seen[k] = (seen[k] ?? 0) + n;
    problems.push(...r.problems);
    const total = Object.values(seen).reduce((a, b) => a + b, 0);
    if ((total >= minimum && r.active === 0) || performance.now() > deadline) {
      const bad = Object.entries(seen).filter(([k]) => k !== 'success');
      if (bad.length > 0 || total < minimum) {
        throw new Error(
          `the shim's sessions did not all succeed: ${JSON.stringify(seen)} of at least ${minimum}` +
            (problems.length ? `; ${problems.join('; ')}` : ''),
        );
      }
      return total;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
