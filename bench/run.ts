/**
 * The benchmark runner: `npm run bench [-- --quick] [-- --only <name>] [-- --repeat <n>]`.
 *
 * For each scenario of the registry (bench/scenarios/index.ts) it sets up the scenario and its
 * baseline, runs one discarded warm-up of each, then measures them alternately `repeat` times and
 * reports the medians and their ratio. Results go to stdout as a table and to
 * bench/results/latest.json. Not part of `npm test`.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { BenchContext, Benchmark, Measurer, Sample, Scenario } from './lib/types.js';
import { scenarios } from './scenarios/index.js';

interface Measured {
  name: string;
  description: string;
  unit: string;
  samples: Sample[];
  median: number;
}

interface ScenarioResult extends Measured {
  bytes: number;
  better: 'higher' | 'lower';
  baseline: Measured;
  /** scenario median / baseline median */
  ratio: number;
  targetRatio?: number;
  meetsTarget?: boolean;
}

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    repeat: { type: 'string' },
  },
});
const quick = values.quick ?? false;
const repeat = Number(values.repeat ?? 5);
const log = (message: string) => process.stderr.write(`${message}\n`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function summary(b: Benchmark, samples: Sample[]): Measured {
  return {
    name: b.name,
    description: b.description,
    unit: b.unit,
    samples,
    median: median(samples.map((s) => s.value)),
  };
}

async function runScenario(scenario: Scenario): Promise<ScenarioResult> {
  const bytes = scenario.bytes(quick);
  const ctx: BenchContext = { quick, bytes, log: (m) => log(`  [${scenario.name}] ${m}`) };
  const measurers: Measurer[] = [];
  try {
    const base = await scenario.baseline.setup(ctx);
    measurers.push(base);
    const under = await scenario.setup(ctx);
    measurers.push(under);
    await base.measure(); // warm-up, discarded
    await under.measure();
    const baseSamples: Sample[] = [];
    const samples: Sample[] = [];
    for (let i = 0; i < repeat; i++) {
      // alternate who goes first, so that a drift in machine load does not favour either
      if (i % 2 === 0) {
        baseSamples.push(await base.measure());
        samples.push(await under.measure());
      } else {
        samples.push(await under.measure());
        baseSamples.push(await base.measure());
      }
      ctx.log(
        `round ${i + 1}/${repeat}: ${samples.at(-1)!.value.toFixed(1)} ${scenario.unit}, ` +
          `${scenario.baseline.name} ${baseSamples.at(-1)!.value.toFixed(1)} ${scenario.baseline.unit}`,
      );
    }
    const measured = summary(scenario, samples);
    const baseline = summary(scenario.baseline, baseSamples);
    const ratio = measured.median / baseline.median;
    const result: ScenarioResult = { ...measured, bytes, better: scenario.better, baseline, ratio };
    if (scenario.targetRatio !== undefined) {
      result.targetRatio = scenario.targetRatio;
      result.meetsTarget =
        scenario.better === 'higher' ? ratio >= scenario.targetRatio : ratio <= scenario.targetRatio;
    }
    return result;
  } finally {
    await Promise.all(measurers.map((m) => m.close()));
  }
}

function table(results: ScenarioResult[]): string {
  const rows = [['scenario', 'median', 'baseline', 'baseline median', 'ratio', 'target', 'size', 'runs']];
  for (const r of results) {
    rows.push([
      r.name,
      `${r.median.toFixed(1)} ${r.unit}`,
      r.baseline.name,
      `${r.baseline.median.toFixed(1)} ${r.baseline.unit}`,
      r.ratio.toFixed(3),
      r.targetRatio === undefined
        ? '—'
        : `${r.better === 'higher' ? '≥' : '≤'} ${r.targetRatio} ${r.meetsTarget ? 'ok' : 'MISSED'}`,
      `${Math.round(r.bytes / (1024 * 1024))} MiB`,
      String(r.samples.length),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n');
}

async function writeResults(results: ScenarioResult[]): Promise<string> {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  await mkdir(dir, { recursive: true });
  const file = `${dir}latest.json`;
  const doc = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadavg: loadavg(),
    quick,
    repeat,
    results,
  };
  await writeFile(`${file}.tmp`, `${JSON.stringify(doc, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
  return file;
}

if (!Number.isInteger(repeat) || repeat < 1) {
  log(`--repeat wants a positive whole number, got ${values.repeat}`);
  process.exit(2);
}
const selected = values.only ? scenarios.filter((s) => values.only!.includes(s.name)) : scenarios;
if (selected.length === 0) {
  log(`no scenario named ${values.only!.join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const started = performance.now();
const results: ScenarioResult[] = [];
for (const scenario of selected) {
  log(`${scenario.name} beside ${scenario.baseline.name}: ${repeat} rounds${quick ? ' (quick)' : ''}`);
  results.push(await runScenario(scenario));
}
process.stdout.write(`${table(results)}\n`);
const file = await writeResults(results);
log(`wrote ${file} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
