/**
 * The doctor's report for people (a table with notes; coloured when asked, which the command does
 * on a terminal unless NO_COLOR is set) and for scripts (JSON). Identical failures are told once.
 */
import type { DoctorReport, Finding } from './doctor.js';
import { formatMs, PROBE_POD, type ProbeResult } from './probes.js';

const RESULT_WORD = { pass: 'pass', fail: 'FAIL', reached: 'reached' } as const;

const ANSI = { green: '\x1b[32m', red: '\x1b[31m', yellow: '\x1b[33m', bold: '\x1b[1m', reset: '\x1b[0m' };
type Paint = (colour: keyof typeof ANSI, text: string) => string;

/** Colour for a terminal: not when NO_COLOR is set to anything (no-color.org), nor when not a TTY. */
export function wantsColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && (env['NO_COLOR'] ?? '') === '' && env['TERM'] !== 'dumb';
}

const VERDICT_COLOUR = { pass: 'green', fail: 'red', reached: 'yellow' } as const;

function pathName(p: Pick<ProbeResult, 'subresource'>): string {
  return p.subresource === 'portforward' ? 'port-forward' : p.subresource;
}

/** Whether a finding spans every probe, every streaming probe, or neither. */
function span(f: Finding, report: DoctorReport): 'all' | 'streaming' | undefined {
  if (f.probes.length === report.probes.length) return 'all';
  const streaming = report.probes.filter((p) => p.id !== 'discovery').length;
  return f.probes.length === streaming && !f.probes.includes('discovery') ? 'streaming' : undefined;
}

/** Names of the probes a finding covers: "every probe", "exec and port-forward", or their list. */
function covering(f: Finding, report: DoctorReport): string {
  const spans = span(f, report);
  if (spans === 'all') return 'every probe';
  if (spans === 'streaming') return 'exec and port-forward, every protocol';
  return f.probes
    .map((id) => report.probes.find((p) => p.id === id)!)
    .map((p) => (p.id === 'discovery' ? 'discovery' : `${pathName(p)} ${p.protocol}`))
    .join('; ');
}

export function renderTable(report: DoctorReport, colour = false): string {
  const paint: Paint = colour ? (c, t) => `${ANSI[c]}${t}${ANSI.reset}` : (_c, t) => t;
  const { pod } = report;
  const out: string[] = [paint('bold', 'kubeshim doctor'), `  upstream  ${report.upstream}`];
  if (report.via)
    out.push(`  via       ${report.via}: a kubeshim is on the path (the answers below come through it)`);
  out.push(
    pod.named
      ? `  pod       ${pod.namespace}/${pod.name}${pod.container ? ` (container ${pod.container})` : ''}`
      : `  pod       none named: handshakes only, for pod "${PROBE_POD}" in ${pod.namespace}, which does not exist`,
  );
  out.push('');
  const result = (p: ProbeResult) => paint(VERDICT_COLOUR[p.verdict], RESULT_WORD[p.verdict]);
  const whole = report.findings.find((f) => f.probes.length > 1 && span(f, report) !== undefined);
  const rows: string[][] = [];
  for (const p of report.probes) {
    if (whole?.probes.includes(p.id)) {
      if (p.id !== whole.probes[0]) continue; // identical failures: one row
      const all = span(whole, report) === 'all';
      rows.push([all ? 'every probe' : 'exec, port-forward', 'every protocol', result(p), '-', '', p.answer]);
      continue;
    }
    rows.push([
      pathName(p),
      p.protocol,
      result(p),
      p.rttMs === undefined ? '-' : formatMs(p.rttMs),
      p.upstreamProtocol ?? '',
      p.answer,
    ]);
  }
  out.push(...columns([['PATH', 'PROTOCOL', 'RESULT', 'RTT', 'UPSTREAM-PROTOCOL', 'ANSWER'], ...rows]));

  if (report.findings.length > 0) {
    out.push('', 'What the answers show:');
    for (const f of report.findings) out.push(`  ${covering(f, report)}: ${f.why}`);
  }

  if (report.idle) {
    out.push('', `Quiet for ${report.idle.seconds} s, with no pings from here:`);
    if (report.idle.results.length === 0) out.push('  nothing held: no path passed');
    out.push(
      ...columns(
        report.idle.results.map((r) => [
          r.id.startsWith('exec') ? 'exec' : 'port-forward',
          r.protocol,
          r.held ? paint('green', 'held') : r.measured ? paint('red', 'CUT') : paint('yellow', 'unknown'),
          r.how,
        ]),
      ),
    );
    if (report.idle.results.some((r) => !r.held && r.measured))
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

/** Left-aligned columns two spaces apart; the last column is not padded; colour takes no width. */
function columns(rows: string[][]): string[] {
  if (rows.length === 0) return [];
  const width = (cell: string) => cell.replace(/\x1b\[\d+m/g, '').length;
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => width(r[i] ?? ''))));
  return rows.map(
    (r) =>
      `  ${r
        .map((cell, i) => (i === r.length - 1 ? cell : cell + ' '.repeat(widths[i]! - width(cell))))
        .join('  ')
        .trimEnd()}`,
  );
}
