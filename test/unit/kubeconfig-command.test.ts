/**
 * `kubeshim kubeconfig`: the printed kubeconfig points at the shim, copies the source context's
 * name and namespace, never carries the source's secrets, embeds the CA for --tls-cert, and is a
 * kubeconfig a real kubectl uses to reach an https server with that certificate.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { kubeconfigCommand, PLACEHOLDER_TOKEN } from '../../src/server/kubeconfig-command.js';
import { runKubectl, runProcess } from '../support/kubectl.js';

let dir: string;
let pki: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-kccmd-'));
  pki = join(dir, 'pki');
  execFileSync('certs/make-certs.sh', [pki], { stdio: 'ignore' });
});
after(() => rm(dir, { recursive: true, force: true }));

const SECRETS = {
  token: 'tok-5ecret-AAAA',
  key: Buffer.from('-----BEGIN EC PRIVATE KEY-----\nsecret-key-BBBB\n').toString('base64'),
  cert: Buffer.from('-----BEGIN CERTIFICATE-----\ncert-CCCC\n').toString('base64'),
  password: 'pw-DDDD',
  envSecret: 'plugin-env-EEEE',
};

/** A source kubeconfig whose users carry every kind of secret. */
async function sourceKubeconfig(): Promise<string> {
  const file = join(dir, 'source.yaml');
  await writeFile(
    file,
    `apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: real
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: ${SECRETS.cert}
users:
- name: admin
  user:
    token: ${SECRETS.token}
    client-certificate-data: ${SECRETS.cert}
    client-key-data: ${SECRETS.key}
    username: root
    password: ${SECRETS.password}
- name: plugin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: corp-login
      env: [{name: SECRET, value: ${SECRETS.envSecret}}]
contexts:
- name: prod
  context: {cluster: real, user: admin, namespace: team-a}
- name: staging
  context: {cluster: real, user: plugin, namespace: team-b}
`,
  );
  return file;
}

/** Run the command in-process with captured output. */
async function run(argv: string[], env: NodeJS.ProcessEnv = { HOME: join(dir, 'empty-home') }) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => {
    out += d;
  });
  stderr.on('data', (d) => {
    err += d;
  });
  const code = await kubeconfigCommand(argv, { stdout, stderr, env });
  return { code, out, err };
}

function parsed(yaml: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(yaml);
  return kc;
}

test('default: http://127.0.0.1:8001, the source context and namespace, and no secret of the source', async () => {
  const source = await sourceKubeconfig();
  for (const context of ['prod', 'staging']) {
    const { code, out } = await run(['--kubeconfig', source, '--context', context]);
    assert.equal(code, 0);
    for (const [what, secret] of Object.entries(SECRETS)) assert.ok(!out.includes(secret), `${what} leaked`);
    assert.ok(
      !out.includes('corp-login') && !out.includes('10.0.0.1'),
      'nothing of the source user or server',
    );
    const kc = parsed(out);
    assert.equal(kc.getCurrentContext(), context);
    assert.equal(kc.getCurrentCluster()?.server, 'http://127.0.0.1:8001');
    assert.equal(kc.getContextObject(context)?.namespace, context === 'prod' ? 'team-a' : 'team-b');
    const user = kc.getCurrentUser();
    assert.ok(user && !user.exec && !user.certData && !user.keyData && !user.username && !user.authProvider);
    assert.equal(user.token, PLACEHOLDER_TOKEN, 'only the placeholder that keeps kubectl from prompting');
    assert.match(out, /kubeshim adds the credentials of context/);
  }
});

test('--tls-cert and --ca: https with the CA embedded; a real kubectl trusts the shim and sends no credentials', async () => {
  const seen: (string | undefined)[] = [];
  const server = https.createServer(
    { cert: await readFile(join(pki, 'server.crt')), key: await readFile(join(pki, 'server.key')) },
    (req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"major":"1","minor":"30","gitVersion":"v1.30.0"}');
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const out = join(dir, 'shim.kubeconfig');
    const r = await run([
      '--kubeconfig',
      await sourceKubeconfig(),
      '--listen',
      `127.0.0.1:${port}`,
      '--tls-cert',
      join(pki, 'server.crt'),
      '--ca',
      join(pki, 'ca.crt'),
      '--output',
      out,
    ]);
    assert.equal(r.code, 0);
    assert.equal(r.out, '', 'with --output nothing goes to stdout');
    assert.match(r.err, /wrote .*shim\.kubeconfig/);
    assert.equal((await stat(out)).mode & 0o777, 0o600);
    const text = await readFile(out, 'utf8');
    const cluster = parsed(text).getCurrentCluster();
    assert.equal(cluster?.server, `https://127.0.0.1:${port}`);
    assert.equal(
      Buffer.from(cluster?.caData ?? '', 'base64').toString(),
      await readFile(join(pki, 'ca.crt'), 'utf8'),
    );

    const env = { PATH: process.env.PATH, HOME: join(dir, 'kubectl-home'), KUBECONFIG: out };
    const k = await runKubectl('1.33', ['get', '--raw', '/version'], { env, timeoutMs: 20_000 });
    assert.equal(k.code, 0, k.stderr);
    assert.match(k.stdout.toString(), /v1\.30\.0/);
    assert.deepEqual(seen, [`Bearer ${PLACEHOLDER_TOKEN}`], 'kubectl sent only the placeholder, no secret');
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('bastion form (--upstream, no kubeconfig): the user entry is left to fill in', async () => {
  const { code, out } = await run(['--upstream', 'https://api.internal:6443', '--listen', '[::1]:9000']);
  assert.equal(code, 0);
  const kc = parsed(out);
  assert.equal(kc.getCurrentContext(), 'kubeshim');
  assert.equal(kc.getCurrentCluster()?.server, 'http://[::1]:9000');
  assert.equal(kc.getContextObject('kubeshim')?.namespace, undefined);
  assert.match(out, /Your credentials pass through kubeshim .*fill them in/);
  assert.match(out, /^ {2}user: \{\}$/m);
});

test('a self-signed --tls-cert is its own CA; a certificate that does not name the host is reported', async () => {
  const self = join(dir, 'self.crt');
  const args = '-x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=self'.split(' ');
  execFileSync(
    'openssl',
    [
      'req',
      ...args,
      '-keyout',
      join(dir, 'self.key'),
      '-out',
      self,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  const { out, err } = await run(['--upstream', 'https://x', '--tls-cert', self]);
  assert.equal(
    Buffer.from(parsed(out).getCurrentCluster()?.caData ?? '', 'base64').toString(),
    await readFile(self, 'utf8'),
  );
  assert.equal(err, '');

  const other = await run([
    '--upstream',
    'https://x',
    '--tls-cert',
    join(pki, 'server.crt'),
    '--listen',
    '10.9.9.9:443',
  ]);
  assert.match(other.err, /server\.crt does not name 10\.9\.9\.9/);
  assert.match(other.err, /no --ca: kubectl will check .* against the system's trusted CAs/);
});

test('errors: bad flags, --ca without --tls-cert, port 0, no kubeconfig at all', async () => {
  const bad = await run(['--bogus']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /Unknown option '--bogus'/);
  await assert.rejects(
    run(['--upstream', 'https://x', '--ca', join(pki, 'ca.crt')]),
    /--ca is for --tls-cert/,
  );
  await assert.rejects(run(['--upstream', 'https://x', '--listen', '127.0.0.1:0']), /port 0 picks a port/);
  await assert.rejects(run([]), /no kubeconfig found/);
  await assert.rejects(
    run(['--upstream', 'https://x', '--tls-cert', join(dir, 'none.crt')]),
    /--tls-cert .*none\.crt cannot be read/,
  );
  assert.match((await run(['--help'])).out, /--output FILE/);
});

test('wired into the CLI as `kubeshim kubeconfig`', async () => {
  const r = await runProcess(
    process.execPath,
    ['--import', 'tsx', 'src/cli.ts', 'kubeconfig', '--upstream', 'http://x', '--listen', '127.0.0.1:8123'],
    { env: { PATH: process.env.PATH, HOME: join(dir, 'empty-home') }, timeoutMs: 30_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.toString(), /server: http:\/\/127\.0\.0\.1:8123/);
});
