/** The doctor's report for people (a table with notes) and for scripts (JSON). */
import type { DoctorReport } from './doctor.js';
import { formatMs, PROBE_POD } from './probes.js';

const RESULT_WORD = { pass: 'pass', fail: 'FAIL', reached: 'reached' } as const;

export function renderTable(report: DoctorReport): string {
  const { pod } = report;
  const out: string[] = ['kubeshim doctor', `  upstream  ${report.upstream}`];
  out.push(
    pod.named
      ? `  pod       ${pod.namespace}/${pod.name}${pod.container ? ` (container ${pod.container})` : ''}`
      : `  pod       none named: handshakes only, for pod "${PROBE_POD}" in ${pod.namespace}, which does not exist`,
  );
  out.push('');
  const rows = report.probes.map((p) => [
    p.subresource === 'portforward' ? 'port-forward' : p.subresource,
    p.protocol,
    RESULT_WORD[p.verdict],
    p.rttMs === undefined ? '-' : formatMs(p.rttMs),
    p.upstreamProtocol ?? '',
    p.answer,
  ]);
  out.push(...columns([['PATH', 'PROTOCOL', 'RESULT', 'RTT', 'UPSTREAM-PROTOCOL', 'ANSWER'], ...rows]));

  const notes = report.probes.filter((p) => p.why && p.verdict !== 'pass');
  if (notes.length > 0) {
    out.push('', 'What the answers show:');
    for (const p of notes)
      out.push(
        `  ${p.subresource === 'portforward' ? 'port-forward' : p.subresource} ${p.protocol}: ${p.why}`,
      );
  }

  if (report.idle) {
    out.push('', `Quiet for ${report.idle.seconds} s, with no pings from here:`);
    out.push(
      ...columns(
        report.idle.results.map((r) => [
          r.id.startsWith('exec') ? 'exec' : 'port-forward',
          r.protocol,
          r.held ? 'held' : 'CUT',
          r.how,
        ]),
      ),
    );
    if (report.idle.results.some((r) => !r.held))
      out.push(
        '  A hop cut quiet sessions. kubectl pings every 5 s and kubeshim pings on the legs it translates;',
        '  clients that never ping are cut after this long.',
      );
  }

  const { recommendation } = report;
  out.push(
    '',
    recommendation.upstreamProtocol
      ? `Use --upstream-protocol ${recommendation.upstreamProtocol}: ${recommendation.reason}.`
      : `No --upstream-protocol helps: ${recommendation.reason}.`,
  );
  if (!pod.named)
    out.push('Name a pod (--pod NAME) to run `true` in it over each protocol: that proves the whole path.');
  return `${out.join('\n')}\n`;
}

export function renderJson(report: DoctorReport): string {
  const round = (ms: number | undefined) => (ms === undefined ? undefined : Math.round(ms * 10) / 10);
  return `${JSON.stringify(
    {
      ...report,
      probes: report.probes.map((p) => ({ ...p, rttMs: round(p.rttMs) })),
      idle: report.idle && {
        ...report.idle,
        results: report.idle.results.map((r) => ({ ...r, afterMs: round(r.afterMs) })),
      },
    },
    null,
    2,
  )}\n`;
}

/** Left-aligned columns two spaces apart; the last column is not padded. */
function columns(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map(
    (r) =>
      `  ${r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd()}`,
  );
}
