/**
 * The bastion manifest's probes work as written: its kubeshim container's own arguments (paths
 * swapped for test files, the listen address for a free loopback port) run as a real `kubeshim
 * serve`, and its liveness and readiness probes are made the way the kubelet makes them — HTTPS
 * without verifying the certificate, no token, no client certificate, the pod's IP as Host.
 * The same with --client-ca added: the probes still answer, everything else needs a certificate.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadAllYaml } from '@kubernetes/client-node';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { type KubeEnv, makeKubeEnv } from '../support/kubectl.js';
import { REPO, type ServeProcess, startServe } from '../support/processes.js';

interface Probe {
  httpGet: { path: string; port: string; scheme: string };
}
interface Container {
  name: string;
  args: string[];
  livenessProbe: Probe;
  readinessProbe: Probe;
}

const TOKEN = 'bastion-listener-token-51c2';
let dir: string;
let emu: Emulator;
let upstream: KubeEnv;
let container: Container;
const started: ServeProcess[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-probes-'));
  const made = spawnSync('certs/make-certs.sh', [join(dir, 'certs')], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(made.status, 0, made.stderr);
  await writeFile(join(dir, 'token'), `${TOKEN}\n`);
  emu = await startEmulator({ generation: 'legacy', auth: { token: 'sa-token' } });
  upstream = await makeKubeEnv(emu.url, { token: 'sa-token' });
  const docs = loadAllYaml(readFileSync(join(REPO, 'examples/kubernetes/bastion-sidecar.yaml'), 'utf8')) as {
    kind?: string;
    spec?: { template?: { spec?: { containers?: Container[] } } };
  }[];
  const deployment = docs.find((d) => d.kind === 'Deployment');
  container = deployment!.spec!.template!.spec!.containers!.find((c) => c.name === 'kubeshim')!;
  assert.ok(container, 'the manifest has a kubeshim container');
});

after(async () => {
  for (const s of started) await s.stop();
  await upstream?.cleanup();
  await emu?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The container's arguments with its mounted files replaced by the test's. */
function manifestArgs(): string[] {
  const files: Record<string, string> = {
    '--tls-cert': join(dir, 'certs', 'server.crt'),
    '--tls-key': join(dir, 'certs', 'server.key'),
    '--token-file': join(dir, 'token'),
    '--kubeconfig': upstream.kubeconfig,
  };
  assert.equal(container.args[0], 'serve');
  return container.args.slice(1).flatMap((arg) => {
    const [flag] = arg.split('=', 1);
    if (flag === '--listen') return []; // startServe listens on a free loopback port
    if (flag! in files) return [`${flag}=${files[flag!]}`];
    return [arg];
  });
}

/** A request as the kubelet's HTTPS probe makes it. */
function kubeletGet(url: string, path: string, opts: https.RequestOptions = {}): Promise<number> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) =>
    https
      .get(
        {
          host: '127.0.0.1',
          port,
          path,
          rejectUnauthorized: false,
          headers: { host: `10.244.1.17:${port}`, 'user-agent': 'kube-probe/1.33', accept: '*/*' },
          ...opts,
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      )
      .on('error', reject),
  );
}

test("the manifest's liveness and readiness probes answer 200 as the kubelet makes them", async () => {
  const s = await startServe(manifestArgs(), { PATH: process.env.PATH, HOME: dir });
  started.push(s);
  for (const probe of [container.livenessProbe, container.readinessProbe]) {
    assert.equal(probe.httpGet.scheme, 'HTTPS');
    assert.equal(probe.httpGet.port, 'kubeshim');
    assert.equal(await kubeletGet(s.url, probe.httpGet.path), 200, probe.httpGet.path);
  }
  // and the rest is guarded as the manifest says: the token, and the listed Host names
  assert.equal(await kubeletGet(s.url, '/api'), 403, 'a pod IP is not an accepted host');
  assert.equal(await kubeletGet(s.url, '/api', { headers: { host: 'localhost' } }), 401, 'no token');
  const withToken = await kubeletGet(s.url, '/api', {
    headers: { host: 'localhost', authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(withToken, 200);
});

test('with --client-ca added, the probes still need no certificate; everything else does', async () => {
  const s = await startServe([...manifestArgs(), `--client-ca=${join(dir, 'certs', 'ca.crt')}`], {
    PATH: process.env.PATH,
    HOME: dir,
  });
  started.push(s);
  for (const probe of [container.livenessProbe, container.readinessProbe])
    assert.equal(await kubeletGet(s.url, probe.httpGet.path), 200, probe.httpGet.path);
  const auth = { host: 'localhost', authorization: `Bearer ${TOKEN}` };
  assert.equal(await kubeletGet(s.url, '/api', { headers: auth }), 401, 'no client certificate');
  const cert = await readFile(join(dir, 'certs', 'client.crt'));
  const key = await readFile(join(dir, 'certs', 'client.key'));
  assert.equal(await kubeletGet(s.url, '/api', { headers: auth, cert, key }), 200);
});
