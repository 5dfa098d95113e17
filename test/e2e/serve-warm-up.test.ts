/**
 * `kubeshim serve` warms up before it announces its listener (src/warmup): a `warmed up` line with
 * what it carried comes before `listening`; afterwards the process listens on nothing but its own
 * port, its metrics count no session, and `--no-warm-up` skips it. A real kubectl exec through the
 * warmed process then works as through any other.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { makeKubeEnv, runKubectl } from '../support/kubectl.js';
import { startServe } from '../support/processes.js';

let emu: Emulator;
before(async () => {
  emu = await startEmulator({ generation: 'legacy' });
});
after(() => emu.close());

const env = () => ({ PATH: process.env.PATH, HOME: '/nonexistent' });

/** Ports `pid` listens on over TCP: its socket inodes matched against the kernel's table. */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').trim().split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local address, state (0A: LISTEN), inode
      if (f[3] === '0A' && inodes.has(f[9]!)) ports.push(Number.parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

test('serve warms up before the listening line, then listens on its port alone and counts no session', async () => {
  const s = await startServe(['--upstream', emu.url, '--upstream-protocol', 'spdy'], env());
  try {
    const lines = s.lines();
    const warmed = lines.findIndex((l) => l['msg'] === 'warmed up');
    const listening = lines.findIndex((l) => l['msg'] === 'listening');
    assert.ok(warmed >= 0 && warmed < listening, s.output());
    const w = lines[warmed]!;
    assert.equal(w['sessions'], 4);
    assert.ok((w['roundTrips'] as number) >= 6000, JSON.stringify(w));
    assert.ok((w['bytes'] as number) > (w['roundTrips'] as number), JSON.stringify(w));
    assert.ok(!lines.some((l) => l['msg'] === 'session'), 'the warm-up wrote session lines');
    assert.ok(!lines.some((l) => (l['level'] as number) >= 40), s.output());
    assert.deepEqual(listeningPorts(s.child.pid!), [Number(new URL(s.url).port)]);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /^kubeshim_sessions_total\{/m);
    assert.doesNotMatch(metrics, /^kubeshim_upstream_upgrades_total\{/m);
  } finally {
    assert.equal(await s.stop(), 0);
  }
});

test('after the warm-up a real kubectl exec goes through the same process', async () => {
  const s = await startServe(['--upstream', emu.url, '--upstream-protocol', 'spdy'], env());
  const kube = await makeKubeEnv(s.url);
  try {
    const r = await runKubectl('1.33', ['exec', '-i', 'demo', '--', 'cat'], {
      env: kube.env,
      input: 'typed after the warm-up\n',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'typed after the warm-up\n');
    const sessions = s.lines().filter((l) => l['msg'] === 'session');
    assert.equal(sessions.length, 1, s.output());
    assert.equal(sessions[0]!['client'], 'websocket/v5.channel.k8s.io');
    assert.equal(sessions[0]!['upstream'], 'spdy/v4.channel.k8s.io');
    // the same metrics the warm-up left empty count this one session
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /^kubeshim_sessions_total\{[^}]*\} 1$/m);
    assert.match(metrics, /^kubeshim_upstream_upgrades_total\{/m);
  } finally {
    assert.equal(await s.stop(), 0);
    await kube.cleanup();
  }
});

test('serve --no-warm-up announces its listener without warming up', async () => {
  const s = await startServe(['--upstream', emu.url, '--no-warm-up'], env());
  try {
    assert.ok(!s.lines().some((l) => l['msg'] === 'warmed up'), s.output());
  } finally {
    assert.equal(await s.stop(), 0);
  }
});
