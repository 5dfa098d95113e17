/**
 * Summarise a V8 CPU profile (`node --cpu-prof`, `npm run bench -- --profile`): the top functions
 * by self time, self time by file, and kubeshim's own functions (src/) by total time, callees
 * included — which of our code paths the self time is spent under.
 * `npx tsx bench/profile-top.ts FILE.cpuprofile [N]`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

interface SelfTime {
  name: string;
  where: string;
  ms: number;
  /** % of the time the process was not idle. */
  percent: number;
}

const root = fileURLToPath(new URL('../', import.meta.url));

/** File and line; tsx-compiled files report line 1 for everything, so only the file is kept for those. */
function place(url: string, lineNumber: number): string {
  const file = shortUrl(url);
  if (file === '') return '';
  return lineNumber > 0 ? `${file}:${lineNumber + 1}` : file;
}

/** A path from the repository's root; the compiled bench's files (.bench-build/) as their sources'. */
function shortUrl(url: string): string {
  if (url === '') return '';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const short = path.startsWith(root) ? path.slice(root.length) : path;
  return short.startsWith(BUILT) ? short.slice(BUILT.length) : short;
}
const BUILT = '.bench-build/';

/** Self time per function and per file, busiest first; `(idle)` is left out of the percentages. */
function selfTimes(profile: CpuProfile): {
  functions: SelfTime[];
  files: SelfTime[];
  busyMs: number;
  idleMs: number;
} {
  const byNode = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    byNode.set(id, (byNode.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const functions = new Map<string, SelfTime>();
  const files = new Map<string, SelfTime>();
  let idleMs = 0;
  let busyMs = 0;
  for (const node of profile.nodes) {
    const ms = (byNode.get(node.id) ?? 0) / 1000;
    if (ms === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    if (name === '(idle)') {
      idleMs += ms;
      continue;
    }
    busyMs += ms;
    const where = place(url, lineNumber);
    const file = shortUrl(url);
    const key = `${name} ${where}`;
    const f = functions.get(key) ?? { name, where, ms: 0, percent: 0 };
    f.ms += ms;
    functions.set(key, f);
    const fileKey = file || name;
    const g = files.get(fileKey) ?? { name: fileKey, where: '', ms: 0, percent: 0 };
    g.ms += ms;
    files.set(fileKey, g);
  }
  const finish = (m: Map<string, SelfTime>) =>
    [...m.values()].map((t) => ({ ...t, percent: (t.ms / busyMs) * 100 })).sort((a, b) => b.ms - a.ms);
  return { functions: finish(functions), files: finish(files), busyMs, idleMs };
}

/** Total time (self + callees) of each function of src/, each sample counted once per function. */
function projectTotals(profile: CpuProfile, busyMs: number): SelfTime[] {
  const parent = new Map<number, ProfileNode>();
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node);
  }
  const selfMs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  const totals = new Map<string, SelfTime>();
  for (const [id, ms] of selfMs) {
    if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let node = byId.get(id); node; node = parent.get(node.id)) {
      const { functionName, url, lineNumber } = node.callFrame;
      if (!shortUrl(url).startsWith('src/')) continue;
      const name = functionName || '(anonymous)';
      const where = place(url, lineNumber);
      const key = `${name} ${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const t = totals.get(key) ?? { name, where, ms: 0, percent: 0 };
      t.ms += ms;
      totals.set(key, t);
    }
  }
  return [...totals.values()]
    .map((t) => ({ ...t, percent: (t.ms / busyMs) * 100 }))
    .sort((a, b) => b.ms - a.ms);
}

function load(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
}

/** A printable summary: the top `n` functions and the top files. */
export function summarise(file: string, n = 25): string {
  const profile = load(file);
  const { functions, files, busyMs, idleMs } = selfTimes(profile);
  const line = (t: SelfTime) =>
    `${t.ms.toFixed(0).padStart(8)} ms ${t.percent.toFixed(1).padStart(5)} %  ${t.name}${t.where ? `  ${t.where}` : ''}`;
  return [
    `${file}: busy ${busyMs.toFixed(0)} ms, idle ${idleMs.toFixed(0)} ms`,
    `top ${n} functions by self time (% of busy):`,
    ...functions.slice(0, n).map(line),
    'self time by file:',
    ...files.slice(0, 15).map(line),
    'kubeshim functions (src/) by total time, callees included:',
    ...projectTotals(profile, busyMs).slice(0, 15).map(line),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, n] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: tsx bench/profile-top.ts FILE.cpuprofile [N]\n');
    process.exit(2);
  }
  process.stdout.write(`${summarise(file, Number(n ?? 25))}\n`);
}
