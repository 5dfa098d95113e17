/**
 * Issue 5's acceptance: real kubectl port-forward through the shim (auto) to the emulated cluster,
 * kubectl 1.27, 1.30, 1.31, 1.33, 1.36 and 1.33 with port-forward WebSockets off × the four
 * cluster generations, and 1.34 and 1.35 on the two generations where one relays and one translates. Every cell: two ports at once with 50 parallel connections each echoing 1 MB, one
 * 200 MB echo compared by sha256, and the error kubectl prints for a pod port where nothing listens
 * — the same, byte for byte once ports, times and ids are masked, as without the shim. The shim's
 * session line proves which translation ran. Twenty forwards, one per cell, are opened first and
 * checked last, after at least 70 s of quiet while the matrix runs, through shims counting
 * connections (`portForwardStats`): they must still work, and the kubectl PINGs inside their SPDY
 * sessions must have been answered end to end.
 *
 * No cell is impossible with auto: a generation that carries only one of the two port-forward
 * flavours gets the other one translated (generationTraits: `spdy` = SPDY reaches the CRI;
 * `websocket: 'translated'` = the apiserver tunnels). Without the shim, SPDY-only kubectl against
 * the `websocket` generation cannot forward at all; for those cells the error reference is the same
 * kubectl straight to the `modern` generation (same CRI text, ids masked).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  DEMO_POD,
  DEMO_PORTS,
  type Emulator,
  GENERATIONS,
  type Generation,
  generationTraits,
  startEmulator,
} from '../../src/emulator/index.js';
import { type KubectlVersion, type KubeEnv, makeKubeEnv, startKubectl } from '../support/kubectl.js';
import { sendAndCollect } from '../support/port-forward.js';
import { startTestShim, type TestShim } from '../support/shim.js';
import { freePort, waitFor, withTimeout } from '../support/wait.js';

type Flavour = 'spdy' | 'tunnel';

interface Client {
  name: string;
  version: KubectlVersion;
  extraEnv: NodeJS.ProcessEnv;
  /** What this kubectl tries first for port-forward (docs/protocols.md §10.1). */
  speaks: Flavour;
  /** The generations it runs against (default: all four). */
  generations?: Generation[];
}

const clientsFor = (generation: Generation) =>
  CLIENTS.filter((c) => c.generations?.includes(generation) ?? true);

const CLIENTS: Client[] = [
  { name: '1.27', version: '1.27', extraEnv: {}, speaks: 'spdy' },
  { name: '1.30', version: '1.30', extraEnv: {}, speaks: 'spdy' },
  { name: '1.31', version: '1.31', extraEnv: {}, speaks: 'tunnel' },
  { name: '1.33', version: '1.33', extraEnv: {}, speaks: 'tunnel' },
  { name: '1.34', version: '1.34', extraEnv: {}, speaks: 'tunnel', generations: ['legacy', 'modern'] },
  { name: '1.35', version: '1.35', extraEnv: {}, speaks: 'tunnel', generations: ['spdy', 'websocket'] },
  { name: '1.36', version: '1.36', extraEnv: {}, speaks: 'tunnel' },
  {
    name: '1.33 port-forward websockets off',
    version: '1.33',
    extraEnv: { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' },
    speaks: 'spdy',
  },
];

const NAME: Record<Flavour, string> = {
  spdy: 'spdy/portforward.k8s.io',
  tunnel: 'websocket/SPDY/3.1+portforward.k8s.io',
};

/** Which port-forward flavours reach the pod on this generation's path. */
function carries(generation: Generation): Record<Flavour, boolean> {
  const traits = generationTraits(generation);
  return { spdy: traits.spdy, tunnel: traits.websocket === 'translated' };
}

/** What the shim must do in a cell: relay the client's flavour where it is carried, else translate. */
function expected(client: Client, generation: Generation) {
  const upstream: Flavour = carries(generation)[client.speaks]
    ? client.speaks
    : client.speaks === 'spdy'
      ? 'tunnel'
      : 'spdy';
  return {
    client: NAME[client.speaks],
    upstream: NAME[upstream],
    mode: upstream === client.speaks ? 'relay' : 'translate',
    emulator: upstream === 'spdy' ? 'spdy/cri' : 'websocket/tunnel',
  };
}

/** Where kubectl without the shim can forward at all (its own flavour, or its SPDY fallback). */
function worksDirect(client: Client, generation: Generation): boolean {
  return carries(generation)[client.speaks] || (client.speaks === 'tunnel' && carries(generation).spdy);
}

const MB = 1024 * 1024;
const PARALLEL = 50;
const BIG = 200 * MB;
const IDLE_MS = 70_000;
/** The demo pod with a second echo port, so that both forwarded ports can be checked byte for byte. */
const POD = {
  ...DEMO_POD,
  ports: [...DEMO_PORTS, { name: 'echo2', containerPort: 8081, serve: 'echo' as const }],
};

interface Cluster {
  emu: Emulator;
  /** kubectl straight to the emulator. */
  direct: KubeEnv;
  /** The shim under test: auto, default options (a byte relay where it relays). */
  shim: TestShim;
  kube: KubeEnv;
  /** The shim for the idle forwards: auto, counting connections. */
  statsShim: TestShim;
  statsKube: KubeEnv;
}

const clusters = new Map<Generation, Cluster>();
let big: Buffer;
let bigHash: string;

before(async () => {
  big = randomBytes(BIG);
  bigHash = createHash('sha256').update(big).digest('hex');
  for (const generation of GENERATIONS) {
    const emu = await startEmulator({ generation, pods: [POD] });
    const shim = await startTestShim(emu.url, 'auto');
    const statsShim = await startTestShim(emu.url, 'auto', { portForwardStats: true });
    clusters.set(generation, {
      emu,
      direct: await makeKubeEnv(emu.url),
      shim,
      kube: await makeKubeEnv(shim.url),
      statsShim,
      statsKube: await makeKubeEnv(statsShim.url),
    });
  }
});

after(async () => {
  await Promise.all(idle.map((c) => c.pf.stop()));
  for (const c of clusters.values()) {
    await c.shim.close();
    await c.statsShim.close();
    await c.emu.close();
    await Promise.all([c.direct.cleanup(), c.kube.cleanup(), c.statsKube.cleanup()]);
  }
});

const cluster = (g: Generation) => clusters.get(g)!;

// ---- idle forwards: opened before the matrix, checked after it --------------------------------------

interface IdleCell {
  generation: Generation;
  client: Client;
  local: number;
  pf: ReturnType<typeof startKubectl>;
}

const idle: IdleCell[] = [];
let idleSince = 0;
const IDLE_PAYLOAD = randomBytes(64 * 1024);

describe('idle forwards (opened first)', () => {
  test('one forward per cell, all at once, each echoes once', async () => {
    for (const generation of GENERATIONS) {
      for (const client of clientsFor(generation)) {
        // distinct ports: freePort may hand back a port an earlier forward here has not bound yet
        let local = await freePort();
        while (idle.some((c) => c.local === local)) local = await freePort();
        const pf = startKubectl(client.version, ['port-forward', 'demo', `${local}:8080`], {
          env: cluster(generation).statsKube.env,
          extraEnv: client.extraEnv,
        });
        idle.push({ generation, client, local, pf });
      }
    }
    await Promise.all(idle.map((c) => listening(c.pf, c.local, 60_000)));
    const echoed = await Promise.all(idle.map((c) => sendAndCollect(c.local, IDLE_PAYLOAD)));
    for (const e of echoed) assert.ok(e.equals(IDLE_PAYLOAD));
    idleSince = Date.now();
  });
});

// ---- the matrix -------------------------------------------------------------------------------------

/** Direct runs of the unlistened port, per generation/client, for the comparison. */
const directErrors = new Map<string, Promise<ClosedPortResult>>();

for (const generation of GENERATIONS) {
  describe(`shim (auto) → ${generation}`, () => {
    for (const client of clientsFor(generation)) {
      const want = expected(client, generation);

      test(`kubectl ${client.name}: two ports × ${PARALLEL} × 1 MB, 200 MB sha256-equal; ${want.mode} ${want.client} → ${want.upstream}`, async () => {
        const c = cluster(generation);
        // the line read below must be this kubectl's: earlier sessions have all ended
        assert.ok(await c.shim.sessions.whenIdle(10_000), 'earlier sessions ended');
        const since = c.shim.sessionLines().length;
        const emuSince = c.emu.sessions.length;
        const [a, b] = [await freePort(), await freePort()];
        const pf = startKubectl(client.version, ['port-forward', 'demo', `${a}:8080`, `${b}:8081`], {
          env: c.kube.env,
          extraEnv: client.extraEnv,
        });
        try {
          await listening(pf, b, 15_000);
          const slices = Array.from({ length: 2 * PARALLEL }, (_, i) => big.subarray(i * MB, (i + 1) * MB));
          const echoed = await withTimeout(
            Promise.all(slices.map((s, i) => sendAndCollect(i < PARALLEL ? a : b, s))),
            60_000,
            `${2 * PARALLEL} parallel echoes`,
          );
          for (const [i, e] of echoed.entries())
            assert.ok(e.equals(slices[i]!), `connection ${i} echoed other bytes`);
          const whole = await withTimeout(echoHash(a, big), 60_000, '200 MB echo');
          assert.equal(whole.length, BIG);
          assert.equal(whole.sha256, bigHash);
        } finally {
          await pf.stop();
        }
        const line = await waitFor('the session line', () => c.shim.sessionLines()[since], 10_000);
        assert.deepEqual(
          {
            subresource: line['subresource'],
            client: line['client'],
            upstream: line['upstream'],
            mode: line['mode'],
            outcome: line['outcome'],
            portForwardStats: line['portForwardStats'],
          },
          {
            subresource: 'portforward',
            ...pick(want, 'client', 'upstream', 'mode'),
            outcome: 'success',
            portForwardStats: 'off',
          },
          JSON.stringify(line),
        );
        assert.ok((line['bytesIn'] as number) >= BIG + PARALLEL * 2 * MB, `bytesIn ${line['bytesIn']}`);
        assert.ok((line['bytesOut'] as number) >= BIG + PARALLEL * 2 * MB, `bytesOut ${line['bytesOut']}`);
        // this kubectl's session: an earlier kubectl's may be recorded after emuSince was read
        const served = await waitFor(
          'the emulator session',
          () => c.emu.sessions.slice(emuSince).find((x) => x.connections === 2 * PARALLEL + 1),
          10_000,
        );
        assert.equal(`${served.transport}/${served.servedBy}`, want.emulator);
        assert.equal(served.connections, 2 * PARALLEL + 1);
      });

      test(`kubectl ${client.name}: nothing listens on the pod port — the error kubectl gives without the shim`, async () => {
        const c = cluster(generation);
        const reference = worksDirect(client, generation) ? generation : 'modern';
        const key = `${reference}/${client.name}`;
        if (!directErrors.has(key)) directErrors.set(key, closedPort(client, cluster(reference).direct));
        const direct = await directErrors.get(key)!;
        const shimmed = await closedPort(client, c.kube);
        assert.match(direct.output, /an error occurred forwarding LOCAL -> 9999: error forwarding port 9999/);
        assert.equal(shimmed.output, direct.output);
        assert.equal(shimmed.code, direct.code);
      });
    }
  });
}

// ---- idle forwards: checked last --------------------------------------------------------------------

describe('idle forwards (checked last)', () => {
  test(`after ${IDLE_MS / 1000} s of quiet every forward still echoes; its PINGs were answered end to end`, async () => {
    assert.equal(
      idle.length,
      GENERATIONS.reduce((n, g) => n + clientsFor(g).length, 0),
      'the idle forwards were opened',
    );
    const wait = idleSince + IDLE_MS - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const echoed = await withTimeout(
      Promise.all(idle.map((c) => sendAndCollect(c.local, IDLE_PAYLOAD))),
      30_000,
      'echoes after the quiet period',
    );
    for (const [i, e] of echoed.entries())
      assert.ok(e.equals(IDLE_PAYLOAD), `idle forward ${i} echoed other bytes`);
    for (const cell of idle) {
      const shim = cluster(cell.generation).statsShim;
      const since = shim.sessionLines().length;
      await cell.pf.stop();
      const line = await waitFor('the idle session line', () => shim.sessionLines()[since], 10_000);
      const want = expected(cell.client, cell.generation);
      const what = `${cell.client.name} → ${cell.generation}`;
      assert.deepEqual(
        pick(
          line as Record<string, unknown>,
          'client',
          'upstream',
          'mode',
          'portForwardStats',
          'connections',
        ),
        { ...pick(want, 'client', 'upstream', 'mode'), portForwardStats: 'observed', connections: 2 },
        what,
      );
      assert.deepEqual(
        line['forwards'],
        {
          8080: {
            connections: 2,
            bytesIn: 2 * IDLE_PAYLOAD.length,
            bytesOut: 2 * IDLE_PAYLOAD.length,
            errors: 0,
          },
        },
        what,
      );
      assert.ok((line['durationMs'] as number) >= IDLE_MS, `${what}: ${line['durationMs']} ms`);
      // kubectl pings every 5 s over SPDY, every 10 s inside the tunnel (§6.5)
      const pings = line['spdyPings'] as { client: number; answered: number };
      assert.ok(pings.client >= IDLE_MS / 10_000, `${what}: ${pings.client} PINGs`);
      assert.ok(
        pings.answered >= pings.client - 1,
        `${what}: ${pings.answered} of ${pings.client} PINGs answered`,
      );
    }
  });
});

// ---- helpers ----------------------------------------------------------------------------------------

function pick<T extends object, K extends keyof T>(o: T, ...keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, o[k]])) as Pick<T, K>;
}

function listening(pf: ReturnType<typeof startKubectl>, local: number, timeoutMs: number): Promise<true> {
  return waitFor(
    `kubectl to forward from ${local}`,
    () => {
      if (pf.child.exitCode !== null) throw new Error(`kubectl exited: ${pf.output()}`);
      return pf.output().includes(`Forwarding from 127.0.0.1:${local}`);
    },
    timeoutMs,
  );
}

/** Like `sendAndCollect`, hashing what comes back instead of keeping it. */
function echoHash(port: number, payload: Buffer): Promise<{ length: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let length = 0;
    const socket = net.connect(port, '127.0.0.1', () => socket.end(payload));
    socket.on('data', (d: Buffer) => {
      length += d.length;
      hash.update(d);
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ length, sha256: hash.digest('hex') }));
  });
}

interface ClosedPortResult {
  code: number | null;
  /** kubectl's output with the local port, klog's time and pid, and pod ids masked. */
  output: string;
}

/** Forward to pod port 9999 (nothing listens), connect once, and let kubectl say what it says. */
async function closedPort(client: Client, kube: KubeEnv): Promise<ClosedPortResult> {
  const local = await freePort();
  const pf = startKubectl(client.version, ['port-forward', 'demo', `${local}:9999`], {
    env: kube.env,
    extraEnv: client.extraEnv,
  });
  try {
    await listening(pf, local, 15_000);
    await withTimeout(
      new Promise((resolve) => {
        const s = net.connect(local, '127.0.0.1');
        s.on('error', resolve);
        s.on('close', resolve);
      }),
      15_000,
      'the local connection to end',
    );
    await waitFor('kubectl to exit', () => pf.child.exitCode !== null, 15_000);
    return { code: pf.child.exitCode, output: mask(pf.output(), local) };
  } finally {
    await pf.stop();
  }
}

function mask(output: string, local: number): string {
  return output
    .replace(new RegExp(`\\b${local}\\b`, 'g'), 'LOCAL')
    .replace(/^([EWI])\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ /gm, '$1 ')
    .replace(/[0-9a-f]{64}/g, 'SANDBOX')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'UID');
}
