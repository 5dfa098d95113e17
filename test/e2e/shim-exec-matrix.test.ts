/**
 * Issue 4's acceptance: real kubectl through the shim to the emulated cluster, for every kubectl
 * version × cluster generation × upstream mode that applies, and two shims chained. Each cell runs
 * the same cases; the shim's session lines prove which translation ran.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Generation } from '../../src/emulator/index.js';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { silentLogger } from '../../src/observe/logger.js';
import type { UpstreamMode } from '../../src/upstream/choice.js';
import {
  type KubectlVersion,
  type KubeEnv,
  makeKubeEnv,
  negotiatedSubprotocol,
  runKubectl,
  runKubectlWithTty,
} from '../support/kubectl.js';
import { startTestShim, type TestShim } from '../support/shim.js';
import { waitFor } from '../support/wait.js';

interface Client {
  name: string;
  version: KubectlVersion;
  extraEnv: NodeJS.ProcessEnv;
  /** The protocol this kubectl speaks for exec in this configuration. */
  speaks: 'spdy' | 'websocket';
  /** The auto cells it runs in (default: all four generations). */
  generations?: Generation[];
}

const CLIENTS: Client[] = [
  { name: '1.27', version: '1.27', extraEnv: {}, speaks: 'spdy' },
  { name: '1.28', version: '1.28', extraEnv: {}, speaks: 'spdy' },
  { name: '1.30', version: '1.30', extraEnv: {}, speaks: 'websocket' },
  { name: '1.31', version: '1.31', extraEnv: {}, speaks: 'websocket' },
  { name: '1.33', version: '1.33', extraEnv: {}, speaks: 'websocket' },
  // 1.34 and 1.35 speak as 1.33 does: one cell that relays and one that translates each, not four
  { name: '1.34', version: '1.34', extraEnv: {}, speaks: 'websocket', generations: ['legacy', 'modern'] },
  { name: '1.35', version: '1.35', extraEnv: {}, speaks: 'websocket', generations: ['spdy', 'websocket'] },
  { name: '1.36', version: '1.36', extraEnv: {}, speaks: 'websocket' },
  {
    name: '1.36 websockets=false',
    version: '1.36',
    extraEnv: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' },
    speaks: 'spdy',
    generations: ['websocket'],
  },
  {
    name: '1.33 websockets=false',
    version: '1.33',
    extraEnv: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' },
    speaks: 'spdy',
  },
];

/** What the cluster accepts for exec (docs/design.md's table; src/emulator/generation.ts). */
const ACCEPTS: Record<Generation, { spdy: boolean; websocketV5: boolean }> = {
  legacy: { spdy: true, websocketV5: false },
  spdy: { spdy: true, websocketV5: false },
  modern: { spdy: true, websocketV5: true },
  websocket: { spdy: false, websocketV5: true },
};

/** The protocol pair the shim must log for a client in a cell. */
function expectedPair(
  client: Client,
  generation: Generation,
  mode: UpstreamMode,
): { client: RegExp; upstream: RegExp } {
  const accepts = ACCEPTS[generation];
  const own = client.speaks;
  const upstream: 'spdy' | 'websocket' =
    mode !== 'auto'
      ? mode
      : own === 'spdy'
        ? accepts.spdy
          ? 'spdy'
          : 'websocket'
        : accepts.websocketV5
          ? 'websocket'
          : 'spdy';
  return {
    client: own === 'spdy' ? /^spdy\/v4\.channel\.k8s\.io$/ : /^websocket\/v5\.channel\.k8s\.io$/,
    upstream: upstream === 'spdy' ? /^spdy\/v4\.channel\.k8s\.io$/ : /^websocket\/v5\.channel\.k8s\.io$/,
  };
}

const BIG = 100 * 1024 * 1024;
const CP = 20 * 1024 * 1024;
let bigInput: Buffer;
let bigHash: string;
let work: string;
let cpFile: string;
let cpHash: string;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

before(async () => {
  bigInput = randomBytes(BIG);
  bigHash = sha(bigInput);
  work = await mkdtemp(join(tmpdir(), 'kubeshim-matrix-'));
  cpFile = join(work, 'upload.bin');
  const cpData = randomBytes(CP);
  cpHash = sha(cpData);
  await writeFile(cpFile, cpData);
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

let cellNo = 0;

/** The cases of one cell: kubectl `client` against a shim at `env`'s server. */
function cases(client: Client, kube: () => KubeEnv) {
  const run = (args: string[], input?: Buffer | string, timeoutMs = 60_000) =>
    runKubectl(client.version, args, { env: kube().env, extraEnv: client.extraEnv, input, timeoutMs });
  const fail = (what: string, r: { code: number | null; stderr: string }) =>
    `${what}: exit ${r.code}, stderr: ${r.stderr.slice(0, 500)}`;

  test('piped cat', async () => {
    const r = await run(['exec', '-i', 'demo', '--', 'cat'], 'hi\n');
    assert.equal(r.code, 0, fail('cat', r));
    assert.equal(r.stdout.toString(), 'hi\n');
  });

  test('exit code 3 is kubectl exit code', async () => {
    const r = await run(['exec', 'demo', '--', 'sh', '-c', 'exit 3']);
    assert.equal(r.code, 3, fail('exit 3', r));
  });

  test('stderr stays separate', async () => {
    const r = await run(['exec', 'demo', '--', 'sh', '-c', 'echo out; echo err >&2']);
    assert.equal(r.code, 0, fail('stderr', r));
    assert.equal(r.stdout.toString(), 'out\n');
    assert.match(r.stderr, /^err$/m);
  });

  test('100 MB piped stdin comes back sha256-equal', async () => {
    const r = await run(['exec', '-i', 'demo', '--', 'cat'], bigInput, 120_000);
    assert.equal(r.code, 0, fail('100 MB', r));
    assert.equal(r.stdout.length, BIG);
    assert.equal(sha(r.stdout), bigHash);
  });

  test('kubectl cp of 20 MB both ways, byte-exact', async () => {
    const name = `cp-${++cellNo}.bin`;
    const up = await run(['cp', cpFile, `demo:${name}`], undefined, 120_000);
    assert.equal(up.code, 0, fail('cp to pod', up));
    const back = join(work, name);
    const down = await run(['cp', `demo:${name}`, back], undefined, 120_000);
    assert.equal(down.code, 0, fail('cp from pod', down));
    assert.equal(sha(await readFile(back)), cpHash);
    await rm(back);
  });

  test('exec -it sees the terminal size it was given', async () => {
    const r = await runKubectlWithTty(client.version, ['exec', '-it', 'demo', '--', 'stty', 'size'], {
      env: kube().env,
      extraEnv: client.extraEnv,
      cols: 91,
      rows: 17,
      timeoutMs: 30_000,
    });
    assert.match(r.stdout.toString(), /17 91/, `tty output: ${JSON.stringify(r.stdout.toString())}`);
  });

  if (client.speaks === 'websocket')
    test('kubectl -v=9 negotiated v5.channel.k8s.io with the shim', async () => {
      const r = await run(['-v=9', 'exec', 'demo', '--', 'true']);
      assert.equal(r.code, 0, fail('-v=9 exec', r));
      assert.equal(negotiatedSubprotocol(r.stderr), 'v5.channel.k8s.io');
    });

  test('attach -i', async () => {
    const r = await run(['attach', '-i', 'demo'], 'attached hello\n');
    assert.equal(r.code, 0, fail('attach', r));
    assert.match(r.stdout.toString(), /attached hello/);
  });
}

interface Cell {
  generation: Generation;
  mode: UpstreamMode;
  clients: Client[];
}

const CELLS: Cell[] = [
  ...(['legacy', 'spdy', 'websocket', 'modern'] as Generation[]).map((generation) => ({
    generation,
    mode: 'auto' as UpstreamMode,
    clients: CLIENTS.filter((c) => c.generations?.includes(generation) ?? true),
  })),
  // forced modes where they change something: translation although the client's own protocol would pass
  {
    generation: 'modern',
    mode: 'spdy',
    clients: CLIENTS.filter((c) => c.speaks === 'websocket' && c.generations === undefined),
  },
  {
    generation: 'modern',
    mode: 'websocket',
    clients: CLIENTS.filter((c) => c.speaks === 'spdy' && c.generations === undefined),
  },
];

for (const cell of CELLS) {
  describe(`${cell.generation} cluster, --upstream-protocol ${cell.mode}`, () => {
    let emulator: Emulator;
    let shim: TestShim;
    before(async () => {
      emulator = await startEmulator({ generation: cell.generation, logger: silentLogger() });
      shim = await startTestShim(emulator.url, cell.mode);
    });
    after(async () => {
      await shim.close();
      await emulator.close();
    });
    for (const client of cell.clients) {
      describe(`kubectl ${client.name}`, () => {
        let kube: KubeEnv;
        let firstLine = 0;
        before(async () => {
          kube = await makeKubeEnv(shim.url);
          await waitFor('no session in flight', () => shim.sessions.size === 0, 10_000);
          firstLine = shim.sessionLines().length;
        });
        after(async () => {
          await kube.cleanup();
        });
        cases(client, () => kube);
        test('the session log proves the translation that ran', async () => {
          // every session ended (none lingers after its kubectl exited) and logged its line
          await waitFor('no session in flight', () => shim.sessions.size === 0, 10_000);
          const lines = shim.sessionLines().slice(firstLine);
          assert.ok(lines.length >= 7, `expected a session line per exec, got ${lines.length}`);
          const want = expectedPair(client, cell.generation, cell.mode);
          for (const line of lines) {
            assert.match(String(line['client']), want.client, JSON.stringify(line));
            assert.match(String(line['upstream']), want.upstream, JSON.stringify(line));
            const translated =
              String(line['client']).split('/')[0] !== String(line['upstream']).split('/')[0];
            assert.equal(line['mode'], translated ? 'translate' : 'relay');
            assert.notEqual(line['outcome'], 'error', JSON.stringify(line));
          }
        });
      });
    }
  });
}

describe('two shims chained: kubectl 1.27 → shim (websocket) → shim (spdy) → spdy cluster', () => {
  let emulator: Emulator;
  let inner: TestShim;
  let outer: TestShim;
  let kube: KubeEnv;
  const client = CLIENTS[0]!;
  before(async () => {
    emulator = await startEmulator({ generation: 'spdy', logger: silentLogger() });
    inner = await startTestShim(emulator.url, 'spdy');
    outer = await startTestShim(inner.url, 'websocket');
    kube = await makeKubeEnv(outer.url);
  });
  after(async () => {
    await kube.cleanup();
    await outer.close();
    await inner.close();
    await emulator.close();
  });
  cases(client, () => kube);
  test('each shim translated its leg', () => {
    for (const line of outer.sessionLines()) {
      assert.equal(line['client'], 'spdy/v4.channel.k8s.io');
      assert.equal(line['upstream'], 'websocket/v5.channel.k8s.io');
    }
    for (const line of inner.sessionLines()) {
      assert.equal(line['client'], 'websocket/v5.channel.k8s.io');
      assert.equal(line['upstream'], 'spdy/v4.channel.k8s.io');
    }
    assert.ok(outer.sessionLines().length >= 7 && inner.sessionLines().length >= 7);
  });
});
