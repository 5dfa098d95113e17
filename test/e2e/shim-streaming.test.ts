/**
 * Plain streaming responses through the shim: `kubectl logs -f` and `kubectl get pods -w` get each
 * line when the emulator writes it, not in batches (the plain proxy must never buffer them).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { type KubectlVersion, type KubeEnv, kubectlPath, makeKubeEnv } from '../support/kubectl.js';
import { startTestShim, type TestShim } from '../support/shim.js';
import { waitFor } from '../support/wait.js';

/** The emulator writes a log line, and a watch event, this often. */
const INTERVAL_MS = 300;

let emu: Emulator;
let shim: TestShim;
let kube: KubeEnv;
before(async () => {
  emu = await startEmulator({
    generation: 'modern',
    logIntervalMs: INTERVAL_MS,
    watchIntervalMs: INTERVAL_MS,
  });
  shim = await startTestShim(emu.url, 'auto');
  kube = await makeKubeEnv(shim.url);
});
after(async () => {
  await shim?.close();
  await emu?.close();
  await kube?.cleanup();
});

/** Run kubectl until `count` lines match `pattern`; each line with the time it arrived. */
async function linesAsTheyCome(
  version: KubectlVersion,
  args: string[],
  pattern: RegExp,
  count: number,
): Promise<{ line: string; at: number }[]> {
  const child = spawn(kubectlPath(version), args, { env: kube.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: { line: string; at: number }[] = [];
  let partial = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    const at = Date.now();
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const line of parts) if (pattern.test(line)) lines.push({ line, at });
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  try {
    await waitFor(
      `${count} lines of kubectl ${args.join(' ')} (stderr: ${stderr})`,
      () => lines.length >= count,
      15_000,
    );
    return lines.slice(0, count);
  } finally {
    child.kill('SIGKILL');
  }
}

/** Consecutive lines arrived apart, as they were written: none waited for the next. */
function assertSpaced(lines: { at: number }[]): void {
  for (let i = 1; i < lines.length; i++) {
    const gap = lines[i]!.at - lines[i - 1]!.at;
    assert.ok(
      gap >= INTERVAL_MS / 2,
      `line ${i} came ${gap} ms after the one before: ${JSON.stringify(lines)}`,
    );
  }
}

test('kubectl logs -f: each line arrives when the pod writes it', async () => {
  const lines = await linesAsTheyCome('1.33', ['logs', '-f', 'demo', '--tail', '0'], / tick \d+$/, 5);
  assertSpaced(lines);
  for (const { line, at } of lines) {
    const written = Date.parse(line.slice(0, line.indexOf(' ')));
    assert.ok(at - written < INTERVAL_MS, `"${line}" arrived ${at - written} ms after it was written`);
  }
  const ticks = lines.map(({ line }) => Number(line.slice(line.lastIndexOf(' ') + 1)));
  assert.deepEqual(
    ticks,
    ticks.map((_, i) => ticks[0]! + i),
  );
});

test('kubectl get pods -w: each event arrives when the API server sends it', async () => {
  const lines = await linesAsTheyCome(
    '1.27',
    ['get', 'pods', '-w', '--output-watch-events'],
    /^MODIFIED\s+demo\s/,
    4,
  );
  assertSpaced(lines);
});
