/**
 * Real kubectl 1.27 … 1.36 against the emulator (`modern`, so that every protocol is served), each
 * version in the protocol it chooses and, where it has a switch, in the other one too: piped stdin,
 * exit codes, separate stderr, a terminal's size, cp both ways, port-forward, 100 MB of stdin once
 * per version. Every session must be seen by the emulator in the protocol expected.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Emulator, type FinishedSession, startEmulator } from '../../src/emulator/index.js';
import {
  type KubectlVersion,
  type KubeEnv,
  makeKubeEnv,
  negotiatedSubprotocol,
  runKubectl,
  runKubectlWithTty,
  startKubectl,
} from '../support/kubectl.js';
import { sendAndCollect } from '../support/port-forward.js';
import { freePort, waitFor, withTimeout } from '../support/wait.js';

const SPDY_EXEC = 'v4.channel.k8s.io';
const WS_EXEC = 'v5.channel.k8s.io';
const SPDY_PF = 'portforward.k8s.io';
const TUNNEL_PF = 'SPDY/3.1+portforward.k8s.io';

interface Variant {
  /** Test name suffix. */
  name: string;
  env: NodeJS.ProcessEnv;
  protocol: string;
}

interface VersionPlan {
  version: KubectlVersion;
  /** First: the version's default. */
  exec: Variant[];
  portForward: Variant[];
}

const WS_OFF = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' };
const spdyOnly = (version: KubectlVersion): VersionPlan => ({
  version,
  exec: [{ name: 'SPDY', env: {}, protocol: SPDY_EXEC }],
  portForward: [{ name: 'SPDY', env: {}, protocol: SPDY_PF }],
});
const wsDefault = (version: KubectlVersion): VersionPlan => ({
  version,
  exec: [
    { name: 'WebSocket v5', env: {}, protocol: WS_EXEC },
    { name: 'SPDY (websockets off)', env: WS_OFF, protocol: SPDY_EXEC },
  ],
  portForward: [
    { name: 'tunnel', env: {}, protocol: TUNNEL_PF },
    { name: 'SPDY (websockets off)', env: { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' }, protocol: SPDY_PF },
  ],
});

const PLANS: VersionPlan[] = [
  spdyOnly('1.27'),
  spdyOnly('1.28'),
  {
    version: '1.30',
    exec: wsDefault('1.30').exec,
    portForward: [
      { name: 'SPDY', env: {}, protocol: SPDY_PF },
      { name: 'tunnel (opted in)', env: { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'true' }, protocol: TUNNEL_PF },
    ],
  },
  wsDefault('1.31'),
  wsDefault('1.33'),
  // 1.34 and 1.35 in their defaults only; 1.36, the newest, both ways like 1.33
  {
    ...wsDefault('1.34'),
    exec: wsDefault('1.34').exec.slice(0, 1),
    portForward: wsDefault('1.34').portForward.slice(0, 1),
  },
  {
    ...wsDefault('1.35'),
    exec: wsDefault('1.35').exec.slice(0, 1),
    portForward: wsDefault('1.35').portForward.slice(0, 1),
  },
  wsDefault('1.36'),
];

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let emu: Emulator;
let kube: KubeEnv;
let work: string;
let big: Buffer;
const suiteStart = Date.now();

before(async () => {
  emu = await startEmulator({ generation: 'modern' });
  kube = await makeKubeEnv(emu.url);
  work = await mkdtemp(join(tmpdir(), 'kubeshim-e2e-'));
  big = randomBytes(100 * 1024 * 1024);
});

after(async () => {
  await emu?.close();
  await kube?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
  process.stderr.write(`# emulator kubectl matrix: ${((Date.now() - suiteStart) / 1000).toFixed(1)} s\n`);
});

/** The id of the last session so far: sessions after it belong to the next kubectl run. */
const mark = () => emu.sessions.at(-1)?.id ?? 0;

async function sessionAfter(
  since: number,
  subresource: FinishedSession['subresource'],
): Promise<FinishedSession> {
  return emu.waitForSession((r) => r.id > since && r.subresource === subresource, 10_000);
}

function kubectl(version: KubectlVersion, args: string[], variant: Variant, input?: Buffer | string) {
  return runKubectl(version, args, {
    env: kube.env,
    extraEnv: variant.env,
    input,
    cwd: work,
    timeoutMs: 60_000,
  });
}

for (const plan of PLANS) {
  const { version } = plan;
  describe(`kubectl ${version}`, () => {
    for (const variant of plan.exec) {
      test(`exec over ${variant.name}: piped stdin, exit code, stderr, tty size, cp both ways`, async () => {
        let since = mark();
        const cat = await kubectl(version, ['exec', '-i', 'demo', '--', 'cat'], variant, 'hi\n');
        assert.equal(cat.code, 0, cat.stderr);
        assert.equal(cat.stdout.toString(), 'hi\n');
        let s = await sessionAfter(since, 'exec');
        assert.equal(s.protocol, variant.protocol);
        assert.deepEqual(s.command, ['cat']);
        assert.equal(s.exitCode, 0);

        since = mark();
        const three = await kubectl(
          version,
          ['exec', 'demo', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3'],
          variant,
        );
        assert.equal(three.code, 3, three.stderr);
        assert.equal(three.stdout.toString(), 'out\n');
        assert.match(three.stderr, /^err\n/);
        assert.match(three.stderr, /command terminated with exit code 3/);
        s = await sessionAfter(since, 'exec');
        assert.equal(s.protocol, variant.protocol);
        assert.equal(s.exitCode, 3);

        since = mark();
        const tty = await runKubectlWithTty(version, ['exec', '-it', 'demo', '--', 'stty', 'size'], {
          env: kube.env,
          extraEnv: variant.env,
          cols: 123,
          rows: 45,
          timeoutMs: 30_000,
        });
        assert.equal(tty.code, 0, tty.stdout.toString());
        assert.match(tty.stdout.toString(), /\b45 123\r?\n/);
        s = await sessionAfter(since, 'exec');
        assert.equal(s.protocol, variant.protocol);
        assert.equal(s.tty, true);

        const name = `cp-${version}-${variant.protocol.slice(0, 2)}.bin`;
        const data = randomBytes(1024 * 1024 + 7);
        await writeFile(join(work, name), data);
        since = mark();
        const to = await kubectl(version, ['cp', name, `demo:${name}`], variant);
        assert.equal(to.code, 0, to.stderr);
        assert.equal((await sessionAfter(since, 'exec')).protocol, variant.protocol);
        assert.ok(
          data.equals(await readFile(join(emu.cluster.pods[0]!.dir, name))),
          'file arrived in the pod',
        );
        since = mark();
        const from = await kubectl(version, ['cp', `demo:${name}`, `${name}.back`], variant);
        assert.equal(from.code, 0, from.stderr);
        assert.equal((await sessionAfter(since, 'exec')).protocol, variant.protocol);
        assert.ok(data.equals(await readFile(join(work, `${name}.back`))), 'file came back byte-exact');
      });
    }

    if (plan.exec[0]!.protocol === WS_EXEC)
      test('its -v=9 log names the subprotocol it negotiated', async () => {
        const r = await kubectl(version, ['-v=9', 'exec', 'demo', '--', 'true'], plan.exec[0]!);
        assert.equal(r.code, 0, r.stderr.slice(-500));
        assert.equal(negotiatedSubprotocol(r.stderr), WS_EXEC);
      });

    test(`100 MB piped stdin comes back sha256-equal (${plan.exec[0]!.name})`, async () => {
      const variant = plan.exec[0]!;
      const since = mark();
      const r = await kubectl(version, ['exec', '-i', 'demo', '--', 'cat'], variant, big);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.length, big.length);
      assert.equal(sha256(r.stdout), sha256(big));
      assert.equal((await sessionAfter(since, 'exec')).protocol, variant.protocol);
    });

    for (const variant of plan.portForward) {
      test(`port-forward over ${variant.name}: 10 MB echoed byte-exact`, async () => {
        const local = await freePort();
        const since = mark();
        const pf = startKubectl(version, ['port-forward', 'demo', `${local}:8080`], {
          env: kube.env,
          extraEnv: variant.env,
        });
        try {
          await waitFor(
            'port-forward to listen',
            () => pf.output().includes('Forwarding from 127.0.0.1'),
            15_000,
          );
          const payload = big.subarray(0, 10 * 1024 * 1024);
          const echoed = await withTimeout(
            sendAndCollect(local, payload),
            30_000,
            'echo through port-forward',
          );
          assert.equal(echoed.length, payload.length);
          assert.equal(sha256(echoed), sha256(payload));
        } finally {
          await pf.stop();
        }
        const s = await sessionAfter(since, 'portforward');
        assert.equal(s.protocol, variant.protocol);
        assert.equal(s.connections, 1);
      });
    }
  });
}
