/**
 * The benchmark runner: `npm run bench [-- --quick] [-- --only NAME[,NAME]] [-- --repeat N]
 * [-- --upstream lean|emulator] [-- --profile] [-- --source] [-- --serve-settings]`.
 *
 * For each scenario of the registry (bench/scenarios/index.ts) it sets up its paths (direct,
 * relay, shim), runs a discarded warm-up of each round's processes, then measures the paths
 * `repeat` times, rotating which path goes first each round so that a drift in machine load favours
 * none, and reports the medians, the shim against its baseline and the design target. Results: a table on stdout and
 * JSON + the table under bench/results/. With `--profile` the shim's measured rounds of each
 * three-path scenario are CPU-profiled (bench/results/profiles/), summarised at the end. Not part of
 * `npm test`. Every process runs compiled JavaScript, as users run the package (bench/lib/build.ts);
 * `--source` runs the sources through tsx instead. `--serve-settings` gives every process the
 * memory settings `kubeshim serve` gives itself.
 */
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TRIM_THRESHOLD, V8_MEMORY_FLAGS } from '../src/server/memory-settings.js';
import { buildBench } from './lib/build.js';
import { instructionsCountable } from './lib/instructions.js';
import { Rig, type UpstreamKind } from './lib/rig.js';
import { median } from './lib/stats.js';
import type { BenchContext, Sample, Scenario, VariantName } from './lib/types.js';
import { runWorkersFrom, setWorkerNodeFlags } from './lib/worker.js';
import { summarise } from './profile-top.js';
import { buildScenarios } from './scenarios/index.js';

interface VariantResult {
  path: string;
  samples: Sample[];
  median: number;
  extra: Record<string, number>;
  cpu: Record<string, number>;
}

interface ScenarioResult {
  name: string;
  description: string;
  kind: Scenario['kind'];
  unit: string;
  size: string;
  upstream: string;
  target: number;
  variants: Partial<Record<VariantName, VariantResult>>;
  /** 1-minute load average when the scenario started (the machine is shared). */
  loadavg: number;
  rounds: number;
  /** shim ÷ relay (throughput), µs added at p99 (latency), the shim's figure (memory). */
  figure?: number;
  meetsTarget?: boolean;
  error?: string;
  seconds: number;
}

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    repeat: { type: 'string' },
    upstream: { type: 'string', default: 'lean' },
    profile: { type: 'boolean', default: false },
    source: { type: 'boolean', default: false },
    'serve-settings': { type: 'boolean', default: false },
  },
});
const quick = values.quick ?? false;
const repeat = Number(values.repeat ?? (quick ? 3 : 5));
const execUpstream = values.upstream as UpstreamKind;
const log = (message: string) => process.stderr.write(`${message}\n`);
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));

function medians(samples: (Record<string, number> | undefined)[]): Record<string, number> {
  const keys = new Set(samples.flatMap((s) => Object.keys(s ?? {})));
  return Object.fromEntries([...keys].map((k) => [k, median(samples.map((s) => s?.[k] ?? Number.NaN))]));
}

/**
 * Throughput samples also say what a GiB cost: CPU seconds of the middle process (relay or shim)
 * and of the whole path. Less sensitive to the machine's other load than MiB/s.
 */
function addCpuPerGiB(name: VariantName, s: Sample): void {
  if (!s.cpu || s.value <= 0) return;
  const secondsPerGiB = 1024 / s.value;
  const total = Object.entries(s.cpu).reduce((a, [k, v]) => (k === 'others' ? a : a + v), 0);
  s.extra = { ...s.extra, pathCpuSecPerGiB: (total / 100) * secondsPerGiB };
  if (s.cpu[name] !== undefined) s.extra['middleCpuSecPerGiB'] = (s.cpu[name] / 100) * secondsPerGiB;
  const perSecond = s.extra['middleInstructionsPerSec'];
  if (perSecond !== undefined) s.extra['middleInstructionsPerByte'] = perSecond / (s.value * 1024 * 1024);
}

function judge(r: ScenarioResult): void {
  const { shim, relay, direct } = r.variants;
  if (!shim) return;
  if (r.kind === 'throughput' && relay) {
    r.figure = shim.median / relay.median;
    r.meetsTarget = r.figure >= r.target;
  } else if (r.kind === 'latency' && direct) {
    r.figure = shim.median - direct.median;
    r.meetsTarget = r.figure <= r.target;
  } else if (r.kind === 'memory') {
    r.figure = shim.median;
    r.meetsTarget = r.figure <= r.target;
  }
}

async function runScenario(
  scenario: Scenario,
  ctx: Omit<BenchContext, 'rounds' | 'slots'>,
): Promise<ScenarioResult> {
  const started = performance.now();
  const result: ScenarioResult = {
    name: scenario.name,
    description: scenario.description,
    kind: scenario.kind,
    unit: scenario.unit,
    size: scenario.size(quick),
    upstream: scenario.upstream,
    target: scenario.target,
    variants: {},
    loadavg: loadavg()[0]!,
    rounds: 0,
    seconds: 0,
  };
  try {
    const rounds = scenario.rounds?.(quick) ?? repeat;
    result.rounds = rounds;
    // a smoke test in --quick: one process of each kind; else up to `repeat` of them
    const slots = quick ? 1 : Math.min(rounds, repeat);
    const trial = await scenario.setup({ ...ctx, rounds, slots });
    const samples = new Map<VariantName, Sample[]>(trial.variants.map((v) => [v.name, []]));
    try {
      if (scenario.warmup !== false) {
        for (let i = 0; i < slots; i++) for (const v of trial.variants) await v.measure(true, i);
      }
      for (let i = 0; i < rounds; i++) {
        if (trial.measureTogether) {
          const got = await trial.measureTogether();
          for (const [name, s] of Object.entries(got)) samples.get(name as VariantName)?.push(s);
        } else {
          const n = trial.variants.length;
          for (let k = 0; k < n; k++) {
            const v = trial.variants[(i + k) % n]!;
            const sample = await v.measure(false, i);
            if (scenario.kind === 'throughput') addCpuPerGiB(v.name, sample);
            samples.get(v.name)!.push(sample);
          }
        }
        ctx.log(
          `round ${i + 1}/${rounds}: ${trial.variants
            .map((v) => `${v.name} ${samples.get(v.name)!.at(-1)?.value.toFixed(1)}`)
            .join(', ')} ${scenario.unit}`,
        );
      }
    } finally {
      await trial.close?.();
    }
    for (const v of trial.variants) {
      const s = samples.get(v.name)!;
      result.variants[v.name] = {
        path: v.path,
        samples: s,
        median: median(s.map((x) => x.value)),
        extra: medians(s.map((x) => x.extra)),
        cpu: medians(s.map((x) => x.cpu)),
      };
    }
    judge(result);
  } catch (err) {
    result.error = (err as Error).message;
    ctx.log(`FAILED: ${result.error}`);
  }
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

function cell(r: ScenarioResult, name: VariantName): string {
  const v = r.variants[name];
  if (!v) return '—';
  const more = name === 'shim' ? r.variants.shim2 : undefined;
  if (r.kind === 'throughput' && more) return `${v.median.toFixed(0)} / ${more.median.toFixed(0)} MiB/s`;
  if (r.kind === 'throughput') return `${v.median.toFixed(0)} MiB/s`;
  if (r.kind === 'latency')
    return `${v.extra['p50']!.toFixed(0)} / ${v.median.toFixed(0)} / ${v.extra['p999']!.toFixed(0)} µs`;
  return `${v.median.toFixed(1)} ${r.unit}`;
}

function figureCell(r: ScenarioResult): string {
  if (r.error) return `FAILED: ${r.error.slice(0, 60)}`;
  if (r.figure === undefined) return '—';
  const more = r.variants.shim2;
  if (r.kind === 'throughput' && more && r.variants.relay)
    return `${r.figure.toFixed(2)} / ${(more.median / r.variants.relay.median).toFixed(2)}× relay`;
  if (r.kind === 'throughput') return `${r.figure.toFixed(2)}× relay`;
  if (r.kind === 'latency') {
    const p50 = r.variants.shim!.extra['p50']! - r.variants.direct!.extra['p50']!;
    return `+${p50.toFixed(0)} / +${r.figure.toFixed(0)} µs`;
  }
  return `${r.figure.toFixed(1)} ${r.unit}`;
}

function targetCell(r: ScenarioResult): string {
  if (r.kind === 'throughput') return `≥ ${r.target}×`;
  if (r.kind === 'latency') return `p99 ≤ +${r.target} µs`;
  return `≤ ${r.target} ${r.unit}`;
}

/** Where the CPU went on the shim path: client / shim / upstream / the rest of the machine, % of one core. */
function cpuCell(r: ScenarioResult): string {
  const c = r.variants.shim?.cpu;
  if (!c || c['client'] === undefined) return '';
  return `${c['client']} / ${c['shim']} / ${c['upstream']} / ${c['others']}`;
}

/** CPU seconds the middle process spent per GiB: relay, shim. */
function cpuPerGiBCell(r: ScenarioResult): string {
  const relay = r.variants.relay?.extra['middleCpuSecPerGiB'];
  const shim = r.variants.shim?.extra['middleCpuSecPerGiB'];
  if (relay === undefined || shim === undefined) return '';
  const more = r.variants.shim2?.extra['middleCpuSecPerGiB'];
  return `${relay.toFixed(2)} / ${shim.toFixed(2)}${more === undefined ? '' : ` / ${more.toFixed(2)}`}`;
}

/** Instructions the middle process executed per byte carried (perf stat): relay, shim. */
function instructionsCell(r: ScenarioResult): string {
  const per = (v: VariantName) => r.variants[v]?.extra['middleInstructionsPerByte']?.toFixed(1);
  const relay = per('relay');
  const shim = per('shim');
  return relay === undefined || shim === undefined ? '' : `${relay} / ${shim}`;
}

function table(results: ScenarioResult[]): string {
  const counted = instructionsCountable();
  const rows = [
    [
      'scenario',
      'size',
      'n',
      'direct',
      'relay',
      'shim',
      'shim vs baseline',
      'target',
      'ok',
      'cpu % c/shim/u/other',
      'cpu s/GiB relay/shim',
      ...(counted ? ['instr/B relay/shim'] : []),
    ],
  ];
  for (const r of results) {
    rows.push([
      r.name,
      r.size,
      String(r.rounds),
      cell(r, 'direct'),
      cell(r, 'relay'),
      cell(r, 'shim'),
      figureCell(r),
      targetCell(r),
      r.meetsTarget === undefined ? '—' : r.meetsTarget ? 'yes' : 'MISSED',
      cpuCell(r),
      cpuPerGiBCell(r),
      ...(counted ? [instructionsCell(r)] : []),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]) => `| ${row.map((cellText, c) => cellText.padEnd(widths[c]!)).join(' | ')} |`;
  return [
    line(rows[0]!),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.slice(1).map(line),
  ].join('\n');
}

async function writeResults(
  results: ScenarioResult[],
  doc: Record<string, unknown>,
  text: string,
): Promise<string> {
  await mkdir(resultsDir, { recursive: true });
  const kind = quick ? 'latest-quick' : values.only ? 'latest-only' : 'latest';
  // a run with serve's memory settings, or with glibc's trim threshold alone raised, is kept beside
  // the default one
  const settings = serveSettings ? '-serve-settings' : mallocTrim ? '-malloc-trim' : '';
  const base = `${resultsDir}${kind}${settings}`;
  await writeFile(`${base}.json.tmp`, `${JSON.stringify({ ...doc, results }, null, 2)}\n`);
  await rename(`${base}.json.tmp`, `${base}.json`);
  await writeFile(`${base}.txt`, `${text}\n`);
  return `${base}.json`;
}

if (!Number.isInteger(repeat) || repeat < 1) {
  log(`--repeat wants a positive whole number, got ${values.repeat}`);
  process.exit(2);
}
if (execUpstream !== 'lean' && execUpstream !== 'emulator') {
  log(`--upstream is lean or emulator, got ${values.upstream}`);
  process.exit(2);
}
/**
 * `--serve-settings`: every worker process (load generator, middles, upstream alike) runs with the
 * memory settings `kubeshim serve` gives itself (src/server/memory-settings.ts), as the relay would
 * if it were a Node process started the same way.
 */
const serveSettings = values['serve-settings'] ?? false;
if (serveSettings) {
  process.env['MALLOC_TRIM_THRESHOLD_'] ??= TRIM_THRESHOLD;
  setWorkerNodeFlags([...V8_MEMORY_FLAGS]);
}
/** Inherited by every worker process alike. */
const mallocTrim = process.env['MALLOC_TRIM_THRESHOLD_'];
const all = buildScenarios(execUpstream);
const wanted = values.only?.flatMap((o) => o.split(','));
const selected = wanted ? all.filter((s) => wanted.includes(s.name)) : all;
if (selected.length === 0) {
  log(`no scenario named ${wanted!.join(', ')}; known: ${all.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const profileDir = values.profile
  ? `${resultsDir}profiles/${new Date().toISOString().replace(/[:.]/g, '-')}`
  : undefined;
if (profileDir) await mkdir(profileDir, { recursive: true });
// what users run (bench/lib/build.ts), unless --source asks for the sources through tsx
const runs = values.source ? 'the sources through tsx' : 'compiled JavaScript';
if (!values.source) {
  log('compiling src/ and bench/ (tsc) into .bench-build/');
  runWorkersFrom(buildBench());
}
const rig = new Rig();
const started = performance.now();
const loadBefore = loadavg();
const results: ScenarioResult[] = [];
try {
  for (const scenario of selected) {
    log(`${scenario.name}: ${scenario.description} (${scenario.size(quick)}, ${scenario.upstream} upstream)`);
    results.push(
      await runScenario(scenario, {
        quick,
        rig,
        profileDir,
        log: (m) => log(`  ${m}`),
      }),
    );
  }
} finally {
  await rig.close();
}
const seconds = (performance.now() - started) / 1000;
const mallocTrimNote = mallocTrim
  ? `; MALLOC_TRIM_THRESHOLD_=${mallocTrim}${serveSettings ? ` and ${V8_MEMORY_FLAGS.join(' ')}` : ''} in every process`
  : '';
const instructionsNote = instructionsCountable()
  ? ''
  : '; instructions per byte not counted: `perf stat -e instructions` is not supported on this machine';
const text = [
  table(results),
  '',
  `${quick ? 'quick' : 'full'} run, medians of n rounds; ${seconds.toFixed(0)} s; ` +
    `node ${process.version} running ${runs}, ${cpus().length} CPUs, load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')} at start, ` +
    `${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at end${mallocTrimNote}${instructionsNote}`,
].join('\n');
process.stdout.write(`${text}\n`);
const file = await writeResults(
  results,
  {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadavgStart: loadBefore,
    loadavgEnd: loadavg(),
    quick,
    repeat,
    execUpstream,
    mallocTrimThreshold: mallocTrim,
    v8Flags: serveSettings ? V8_MEMORY_FLAGS : [],
    seconds,
  },
  text,
);
log(`wrote ${file}`);
if (profileDir) {
  for (const f of (await readdir(profileDir)).filter((n) => n.endsWith('.cpuprofile'))) {
    process.stdout.write(`\n${summarise(`${profileDir}/${f}`, 25)}\n`);
  }
}
if (results.some((r) => r.error)) process.exit(1);
