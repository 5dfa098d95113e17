/**
 * kubeshim packaged the way a cluster runs it. No Docker engine here, so the Dockerfile is checked
 * for what it must do and its steps are replayed: `npm run build` to dist/, `npm ci --omit=dev` in a
 * copy holding only what the image holds, then the commands, a TLS `serve` and the image's
 * HEALTHCHECK command from that copy. The examples that run kubeshim (the bastion manifest, the
 * local kubeconfig) are checked against the flags `serve` knows and against real kubectl.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadAllYaml } from '@kubernetes/client-node';
import { startEmulator } from '../../src/emulator/index.js';
import { makeKubeEnv, runKubectl, runProcess } from '../support/kubectl.js';
import { REPO, runCli } from '../support/processes.js';
import { startTestShim } from '../support/shim.js';
import { freePort, waitFor } from '../support/wait.js';

interface Instruction {
  op: string;
  args: string;
}

/** The Dockerfile's instructions by stage: continuation lines joined, comments dropped. */
function dockerfileStages(): Instruction[][] {
  const text = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
  const joined = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages: Instruction[][] = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'FROM') stages.push([]);
    stages.at(-1)!.push({ op: m[1]!, args: m[2]!.replace(/\s+/g, ' ').trim() });
  }
  return stages;
}

/** The flags `serve --help` lists. */
async function serveFlags(): Promise<Set<string>> {
  const r = await runCli(['serve', '--help'], { PATH: process.env.PATH, HOME: '/nonexistent' });
  assert.equal(r.code, 0, r.stderr);
  return new Set(r.stdout.toString().match(/--[a-z][a-z-]+/g));
}

function assertKnownFlags(args: string[], known: Set<string>, where: string): void {
  for (const arg of args.filter((a) => a.startsWith('--'))) {
    const flag = arg.split('=')[0]!;
    assert.ok(known.has(flag), `${where} gives serve ${flag}, which serve --help does not list`);
  }
}

describe('Dockerfile', () => {
  const stages = dockerfileStages();
  const [build, runtime] = stages as [Instruction[], Instruction[]];
  const ops = (stage: Instruction[], op: string) => stage.filter((i) => i.op === op).map((i) => i.args);

  test('two stages on the current Node LTS; the build packs without a compiler, then keeps runtime dependencies', () => {
    assert.equal(stages.length, 2);
    assert.equal(build[0]!.args, 'node:26-slim AS build');
    assert.equal(runtime[0]!.args, 'node:26-slim');
    const runs = ops(build, 'RUN');
    for (const run of runs) assert.doesNotMatch(run, /apt-get|g\+\+|make|python3/, 'no compiler installed');
    const order = ['npm ci --omit=optional', 'npm pack'].map((cmd) =>
      runs.findIndex((r) => r.startsWith(cmd)),
    );
    assert.ok(
      order.every((i, n) => i >= 0 && (n === 0 || i > order[n - 1]!)),
      `RUN order ${runs.join(' | ')}`,
    );
    assert.match(runs.at(-1)!, /npm ci --omit=dev --omit=optional/);
    assert.match(runs.at(-1)!, /test ! -e node_modules\/node-pty/);
  });

  test('the runtime stage: the package and its runtime dependencies from the build, non-root, healthcheck, entrypoint', () => {
    assert.deepEqual(ops(runtime, 'COPY'), ['--from=build /app/image /opt/kubeshim']);
    assert.deepEqual(ops(runtime, 'USER'), ['node']);
    const trim = ops(runtime, 'ENV').find((e) => e.startsWith('MALLOC_TRIM_THRESHOLD_='));
    assert.ok(Number(trim?.split('=')[1]) >= 32 * 1024 * 1024, `glibc's trim threshold raised: ${trim}`);
    assert.equal(ops(runtime, 'RUN').length, 0, 'nothing runs as root in the runtime stage');
    const [healthcheck] = ops(runtime, 'HEALTHCHECK');
    assert.match(healthcheck!, /^--interval=\d+s --timeout=\d+s .*CMD \["node", "-e", /);
    assert.deepEqual(JSON.parse(ops(runtime, 'ENTRYPOINT')[0]!), ['node', '/opt/kubeshim/dist/cli.js']);
    assert.deepEqual(JSON.parse(ops(runtime, 'CMD')[0]!), [
      'serve',
      '--listen',
      '0.0.0.0:8001',
      '--tls-cert',
      '/etc/kubeshim/tls/tls.crt',
      '--tls-key',
      '/etc/kubeshim/tls/tls.key',
      '--token-file',
      '/etc/kubeshim/auth/token',
    ]);
  });

  // what the build stage COPYs from the context: test/unit/distribution.test.ts

  test('every flag of the default command is one serve knows', async () => {
    assertKnownFlags(JSON.parse(ops(runtime, 'CMD')[0]!), await serveFlags(), 'the Dockerfile CMD');
  });
});

describe('dist/ with production dependencies only, as in the image', () => {
  let app: string;
  const node = (args: string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: '/nonexistent' }) =>
    runProcess(process.execPath, args, { env, cwd: app, timeoutMs: 20_000 });
  before(async () => {
    app = await mkdtemp(join(tmpdir(), 'kubeshim-package-'));
    const built = await runProcess('npm', ['run', 'build', '--', '--outDir', join(app, 'dist')], {
      env: process.env,
      cwd: REPO,
      timeoutMs: 120_000,
    });
    assert.equal(built.code, 0, built.stdout.toString() + built.stderr);
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(REPO, f), join(app, f));
    const installed = await runProcess(
      'npm',
      ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'],
      {
        env: process.env,
        cwd: app,
        timeoutMs: 300_000,
      },
    );
    assert.equal(installed.code, 0, installed.stdout.toString() + installed.stderr);
  });
  after(() => rm(app, { recursive: true, force: true }));

  test('no development dependency is installed; the CLI and every command answer --help', async () => {
    for (const dev of ['typescript', 'tsx', '@biomejs/biome', 'spdy'])
      assert.ok(!existsSync(join(app, 'node_modules', dev)), `${dev} was installed`);
    const top = await node(['dist/cli.js', '--help']);
    assert.equal(top.code, 0, top.stderr);
    assert.match(top.stdout.toString(), /kubeshim serve/);
    for (const command of ['serve', 'demo', 'kubeconfig', 'doctor']) {
      const r = await node(['dist/cli.js', command, '--help']);
      assert.equal(r.code, 0, `${command}: ${r.stderr}`);
      assert.match(r.stdout.toString(), new RegExp(`^Usage: kubeshim ${command}`), command);
    }
  });

  test("serve over TLS from dist: the image's HEALTHCHECK command passes, and fails once it is gone", async () => {
    const certs = join(app, 'certs');
    const made = spawnSync(join(REPO, 'certs/make-certs.sh'), [certs], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(made.status, 0, made.stderr);
    await writeFile(join(app, 'token'), 'listener-token\n');
    const port = await freePort();
    const emu = await startEmulator({ generation: 'legacy' });
    const serve = spawn(
      process.execPath,
      [
        'dist/cli.js',
        'serve',
        '--listen',
        `127.0.0.1:${port}`,
        '--upstream',
        emu.url,
        '--tls-cert',
        join(certs, 'server.crt'),
        '--tls-key',
        join(certs, 'server.key'),
        '--token-file',
        join(app, 'token'),
      ],
      { cwd: app, env: { PATH: process.env.PATH, HOME: '/nonexistent' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    serve.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const healthcheck = JSON.parse(
      dockerfileStages()[1]!
        .find((i) => i.op === 'HEALTHCHECK')!
        .args.replace(/^.*?CMD /, ''),
    ) as string[];
    assert.equal(healthcheck[0], 'node');
    const env = { PATH: process.env.PATH, KUBESHIM_HEALTHZ: `https://127.0.0.1:${port}/healthz` };
    // the image's node is this test's node; the check runs from the app folder, as WORKDIR does
    const check = () =>
      runProcess(process.execPath, healthcheck.slice(1), { env, cwd: app, timeoutMs: 10_000 });
    try {
      await waitFor('serve from dist to listen', () => out.includes('"msg":"listening"'), 20_000);
      const healthy = await check();
      assert.equal(healthy.code, 0, healthy.stderr);
    } finally {
      serve.kill('SIGTERM');
      await new Promise((r) => serve.once('exit', r));
      await emu.close();
    }
    const gone = await check();
    assert.equal(gone.code, 1);
  });
});

/** The parts of the manifest's objects the test reads. */
interface ManifestObject {
  kind: string;
  metadata: { name: string };
  spec?: {
    template?: { spec: { automountServiceAccountToken?: boolean; containers: Container[] } };
    ports?: unknown[];
  };
}

interface Container {
  name: string;
  args: string[];
  volumeMounts: { name: string; mountPath: string }[];
  livenessProbe: { httpGet: unknown };
  readinessProbe: { httpGet: unknown };
  securityContext: unknown;
}

describe('examples that run kubeshim', () => {
  test('bastion-sidecar.yaml: the objects, the sidecar command, probes, mounts and securityContext', async () => {
    // through JSON: client-node hands back its model classes
    const docs = JSON.parse(
      JSON.stringify(
        loadAllYaml(readFileSync(join(REPO, 'examples/kubernetes/bastion-sidecar.yaml'), 'utf8')),
      ),
    ) as ManifestObject[];
    assert.deepEqual(
      docs.map((d) => `${d.kind}/${d.metadata.name}`),
      [
        'Namespace/bastion',
        'Secret/kubeshim-tls',
        'Secret/kubeshim-token',
        'ServiceAccount/kubeshim',
        'ClusterRole/kubeshim-bastion',
        'RoleBinding/kubeshim-bastion',
        'ConfigMap/kubeshim-upstream',
        'ConfigMap/bastion-kubeconfig',
        'Deployment/bastion',
        'Service/bastion',
      ],
    );
    const pod = docs.find((d) => d.kind === 'Deployment')!.spec!.template!.spec;
    assert.deepEqual(
      pod.containers.map((c) => c.name),
      ['bastion', 'kubeshim'],
    );
    const shim = pod.containers[1]!;
    assert.equal(shim.args[0], 'serve');
    assertKnownFlags(shim.args, await serveFlags(), 'the sidecar');
    const arg = (flag: string) =>
      shim.args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1) ?? '';
    assert.equal(arg('--listen'), '0.0.0.0:8443');
    const mounts = new Set(shim.volumeMounts.map((m) => m.mountPath));
    for (const flag of ['--tls-cert', '--tls-key', '--token-file', '--kubeconfig']) {
      const dirOf = arg(flag).slice(0, arg(flag).lastIndexOf('/'));
      assert.ok(mounts.has(dirOf), `${flag} ${arg(flag)} is on no mounted volume`);
    }
    const hosts = arg('--accept-hosts')
      .split(',')
      .map((p) => new RegExp(p));
    for (const host of ['127.0.0.1', 'bastion', 'bastion.bastion.svc', 'bastion.bastion.svc.cluster.local'])
      assert.ok(
        hosts.some((re) => re.test(host)),
        host,
      );
    assert.deepEqual(shim.livenessProbe.httpGet, { path: '/healthz', port: 'kubeshim', scheme: 'HTTPS' });
    assert.deepEqual(shim.readinessProbe.httpGet, { path: '/readyz', port: 'kubeshim', scheme: 'HTTPS' });
    assert.deepEqual(shim.securityContext, {
      runAsNonRoot: true,
      runAsUser: 1000,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    assert.equal(pod.automountServiceAccountToken, false, 'the bastion container must not get the token');
    const service = docs.find((d) => d.kind === 'Service')!.spec!;
    assert.deepEqual(service.ports![1], { name: 'kubeshim', port: 8443, targetPort: 'kubeshim' });
  });

  test('local-shim.kubeconfig: kubectl execs through a shim with it', async () => {
    const emu = await startEmulator({ generation: 'legacy' });
    const shim = await startTestShim(emu.url, 'auto');
    const kube = await makeKubeEnv(shim.url);
    try {
      const example = readFileSync(join(REPO, 'examples/local-shim.kubeconfig'), 'utf8');
      await writeFile(kube.kubeconfig, example.replace('http://127.0.0.1:8001', shim.url));
      const r = await runKubectl('1.33', ['exec', '-i', 'demo', '--', 'cat'], {
        env: kube.env,
        input: 'local\n',
        timeoutMs: 20_000,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), 'local\n');
    } finally {
      await kube.cleanup();
      await shim.close();
      await emu.close();
    }
  });
});
