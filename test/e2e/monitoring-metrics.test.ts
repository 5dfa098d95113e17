/**
 * The chart's Grafana dashboard and PrometheusRule query only what kubeshim exposes: after real
 * kubectl sessions through a real `kubeshim serve` (a fallback against a legacy cluster, a non-zero
 * exit, an upstream that does not answer), every metric they name is in the /metrics scrape, with
 * every label they group by and every label value they select.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import yaml from 'js-yaml';
import { WebSocket } from 'ws';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { helmPath, type KubeEnv, makeKubeEnv, runKubectl } from '../support/kubectl.js';
import { REPO, type ServeProcess, startServe } from '../support/processes.js';
import { freePort } from '../support/wait.js';

/** Labels Prometheus adds from the scrape target, not kubeshim. */
const TARGET_LABELS = new Set(['job', 'namespace', 'pod', 'instance']);

type Sample = Record<string, string>;

const EXEC_PATH = '/api/v1/namespaces/default/pods/demo/exec?command=true&stdout=true';

/** Prometheus text format → metric name → label sets of its samples. */
function parseScrape(text: string): Map<string, Sample[]> {
  const out = new Map<string, Sample[]>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!m) continue;
    const labels: Sample = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    const list = out.get(m[1]!) ?? [];
    list.push(labels);
    out.set(m[1]!, list);
  }
  return out;
}

/** Every PromQL expression of the dashboard and of the rendered PrometheusRule. */
function queries(): { where: string; expr: string }[] {
  const dash = JSON.parse(readFileSync(join(REPO, 'charts/kubeshim/files/dashboard.json'), 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  const fromDash = dash.panels.flatMap((p) =>
    p.targets.map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })),
  );
  const rendered = execFileSync(
    helmPath(),
    ['template', 'r', join(REPO, 'charts/kubeshim'), '--set', 'metrics.prometheusRule.enabled=true'],
    { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH, HOME: process.env.HOME } },
  );
  // biome-ignore lint/suspicious/noExplicitAny: a rendered manifest
  const rule = (yaml.loadAll(rendered) as any[]).find((o) => o?.kind === 'PrometheusRule');
  const fromRules = (rule.spec.groups as { rules: { alert: string; expr: string }[] }[]).flatMap((g) =>
    g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
  );
  assert.ok(fromDash.length >= 8 && fromRules.length >= 3, 'the dashboard and the alerts are read');
  return [...fromDash, ...fromRules];
}

let emu: Emulator;
let shim: ServeProcess;
let dead: ServeProcess;
let kube: KubeEnv;

before(async () => {
  emu = await startEmulator({ generation: 'legacy' });
  const env = { PATH: process.env.PATH, HOME: '/nonexistent' };
  shim = await startServe(['--upstream', emu.url], env);
  dead = await startServe(['--upstream', `http://127.0.0.1:${await freePort()}`], env);
  kube = await makeKubeEnv(shim.url);
});
after(async () => {
  await shim?.stop();
  await dead?.stop();
  await kube?.cleanup();
  await emu?.close();
});

async function scrape(s: ServeProcess): Promise<Map<string, Sample[]>> {
  const res = await fetch(`${s.url}/metrics`);
  assert.equal(res.status, 200);
  return parseScrape(await res.text());
}

test('every metric, grouping label and selected value of the dashboard and the alerts is scraped', async () => {
  // kubectl 1.36 offers WebSocket v5, the legacy cluster refuses it, the shim falls back to SPDY
  const ok = await runKubectl('1.36', ['exec', '-i', 'demo', '--', 'cat'], { env: kube.env, input: 'x\n' });
  assert.equal(ok.code, 0, ok.stderr);
  const exit3 = await runKubectl('1.36', ['exec', 'demo', '--', 'sh', '-c', 'exit 3'], { env: kube.env });
  assert.equal(exit3.code, 3, exit3.stderr);
  // an exec upgrade the dead upstream never answers (kubectl would stop at its GET of the pod)
  const status = await new Promise<number | undefined>((resolve, reject) => {
    const ws = new WebSocket(`${dead.url.replace(/^http/, 'ws')}${EXEC_PATH}`, ['v5.channel.k8s.io']);
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode);
      ws.terminate();
    });
    ws.once('open', () => reject(new Error('the upgrade to a dead upstream succeeded')));
    ws.once('error', () => resolve(undefined));
  });
  assert.equal(status, 502);

  const samples = await scrape(shim);
  for (const [name, list] of await scrape(dead)) samples.set(name, [...(samples.get(name) ?? []), ...list]);

  const missing: string[] = [];
  for (const { where, expr } of queries()) {
    const names = [...new Set(expr.match(/\b(?:kubeshim|process|nodejs)_\w+/g) ?? [])];
    assert.ok(names.length > 0, `${where} queries no kubeshim metric: ${expr}`);
    for (const name of names) {
      const list = samples.get(name);
      if (!list) {
        missing.push(`${where}: ${name} is not in the scrape`);
        continue;
      }
      for (const [, label, op, value] of expr.matchAll(/(\w+)\s*(=~|!=|=)\s*"([^"]*)"/g)) {
        if (TARGET_LABELS.has(label!) || op !== '=') continue;
        if (!list.some((s) => s[label!] === value)) missing.push(`${where}: no ${name}{${label}="${value}"}`);
      }
    }
    for (const [, group] of expr.matchAll(/\bby \(([^)]*)\)/g)) {
      for (const label of group!.split(',').map((l) => l.trim())) {
        if (TARGET_LABELS.has(label)) continue;
        if (!names.some((n) => samples.get(n)?.some((s) => label in s)))
          missing.push(`${where}: no ${names.join('/')} has the label ${label}`);
      }
    }
  }
  assert.deepEqual(missing, []);
  // and the sessions behind them were counted as they happened
  const fallbacks = samples.get('kubeshim_fallbacks_total') ?? [];
  assert.ok(
    fallbacks.some((s) => s['subresource'] === 'exec'),
    JSON.stringify(fallbacks),
  );
  const outcomes = new Set((samples.get('kubeshim_sessions_total') ?? []).map((s) => s['outcome']));
  for (const o of ['success', 'exit-code']) assert.ok(outcomes.has(o), `outcome ${o} in ${[...outcomes]}`);
});
