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
import { kubeconfigCommand } from '../../src/commands/kubeconfig.js';
import { PLACEHOLDER_TOKEN } from '../../src/server/shim-kubeconfig.js';
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

/** An https server with the shim's certificate that answers /version and notes each Authorization. */
async function versionServer(seen: (string | undefined)[]): Promise<https.Server> {
  const server = https.createServer(
    { cert: await readFile(join(pki, 'server.crt')), key: await readFile(join(pki, 'server.key')) },
    (req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"major":"1","minor":"30","gitVersion":"v1.30.0"}');
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
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
    assert.equal(
      kc.getCurrentContext(),
      `${context}@kubeshim`,
      'a name of its own: never the source context',
    );
    assert.equal(kc.getCurrentCluster()?.server, 'http://127.0.0.1:8001');
    assert.equal(
      kc.getContextObject(`${context}@kubeshim`)?.namespace,
      context === 'prod' ? 'team-a' : 'team-b',
    );
    const user = kc.getCurrentUser();
    assert.ok(user && !user.exec && !user.certData && !user.keyData && !user.username && !user.authProvider);
    assert.equal(user.token, PLACEHOLDER_TOKEN, 'only the placeholder that keeps kubectl from prompting');
    assert.match(out, /kubeshim adds the credentials of context/);
  }
});

test('--tls-cert and --ca: https with the CA embedded; a real kubectl trusts the shim and sends no credentials', async () => {
  const seen: (string | undefined)[] = [];
  const server = await versionServer(seen);
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
  assert.match(out, /^\s+user: \{\}$/m);
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

/** One line on stderr, nothing on stdout, the exit code, no stack. */
function oneLine(r: { code: number; out: string; err: string }, code: number, text: RegExp) {
  assert.equal(r.code, code, r.err);
  assert.equal(r.out, '');
  assert.match(r.err, /^kubeshim kubeconfig: [^\n]+\n$/, 'one line');
  assert.match(r.err, text);
  assert.doesNotMatch(r.err, /\bat .*\.(ts|js):\d+/, 'no stack');
  if (code === 2) assert.match(r.err, /; see 'kubeshim kubeconfig --help'\n$/);
}

test('errors: one line each, usage errors exit 2 and point at --help, failures exit 1', async () => {
  oneLine(await run(['--bogus']), 2, /unknown flag --bogus/);
  oneLine(await run(['--upstream', 'https://x', '--ca', join(pki, 'ca.crt')]), 2, /--ca is for --tls-cert/);
  oneLine(await run(['--upstream', 'https://x', '--listen', '127.0.0.1:0']), 1, /port 0 picks a port/);
  oneLine(await run([]), 1, /no kubeconfig found .*pass --kubeconfig PATH or --upstream URL/);
  oneLine(
    await run(['--upstream', '10.0.0.1:6443']),
    2,
    /--upstream '10\.0\.0\.1:6443' has no scheme: write https:\/\/10\.0\.0\.1:6443/,
  );
  oneLine(
    await run(['--upstream', 'https://x', '--tls-cert', join(dir, 'none.crt')]),
    1,
    /--tls-cert .*none\.crt: no such file/,
  );
  const missingDir = join(dir, 'no', 'such', 'dir');
  oneLine(
    await run(['--upstream', 'https://x', '--output', join(missingDir, 'config')]),
    1,
    new RegExp(`the directory ${missingDir} does not exist; create it first \\(mkdir -p ${missingDir}\\)`),
  );
  oneLine(
    await run(['--kubeconfig', await sourceKubeconfig(), '--context', 'nope']),
    1,
    /context "nope" is not in kubeconfig .*\(contexts: prod, staging\)/,
  );
  assert.match((await run(['--help'])).out, /--output FILE/);
});

test('--token-file: the user holds the listener token; a real kubectl sends it without prompting', async () => {
  const tokenFile = join(dir, 'listener.token');
  await writeFile(tokenFile, 'listener-token-1234\n');
  const seen: (string | undefined)[] = [];
  const server = await versionServer(seen);
  try {
    const port = (server.address() as AddressInfo).port;
    const out = join(dir, 'token.kubeconfig');
    const args = ['--kubeconfig', await sourceKubeconfig(), '--listen', String(port)];
    const tls = ['--tls-cert', join(pki, 'server.crt'), '--ca', join(pki, 'ca.crt')];
    const r = await run([...args, ...tls, '--token-file', tokenFile, '--output', out]);
    assert.equal(r.code, 0, r.err);
    assert.equal(parsed(await readFile(out, 'utf8')).getCurrentUser()?.token, 'listener-token-1234');
    const env = { PATH: process.env.PATH, HOME: join(dir, 'kubectl-home-2'), KUBECONFIG: out };
    const k = await runKubectl('1.36', ['get', '--raw', '/version'], { env, input: '', timeoutMs: 20_000 });
    assert.equal(k.code, 0, k.stderr);
    assert.doesNotMatch(k.stderr, /Username|Password/i, 'kubectl did not prompt');
    assert.deepEqual(seen, ['Bearer listener-token-1234']);
    // without TLS, kubectl would not send it: said so
    const plain = await run([...args, '--token-file', tokenFile]);
    assert.match(plain.err, /--token-file without --tls-cert: kubectl sends bearer tokens only over https/);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test("--merge: into $KUBECONFIG's first file under <context>@kubeshim, others kept, mode 0600", async () => {
  const home = join(dir, 'merge-home');
  const first = join(dir, 'merge-first.yaml');
  const source = await sourceKubeconfig();
  await writeFile(first, await readFile(source, 'utf8'), { mode: 0o644 });
  const env = { HOME: home, KUBECONFIG: `${first}:${join(dir, 'merge-second.yaml')}` };
  const r = await run(['--context', 'staging', '--listen', '8123', '--merge'], env);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /wrote context staging@kubeshim into .*merge-first\.yaml/);
  assert.equal((await stat(first)).mode & 0o777, 0o600);
  const kc = parsed(await readFile(first, 'utf8'));
  assert.deepEqual(
    kc.getContexts().map((c) => c.name),
    ['prod', 'staging', 'staging@kubeshim'],
  );
  assert.equal(kc.getCurrentContext(), 'prod', 'the current context is left alone');
  assert.equal(kc.getCluster('staging@kubeshim')?.server, 'http://127.0.0.1:8123');
  assert.equal(kc.getUser('admin')?.token, SECRETS.token, 'the existing entries are kept');
  // again: replaced, not added twice; without $KUBECONFIG: ~/.kube/config, created 0600
  await run(['--kubeconfig', source, '--context', 'staging', '--listen', '8124', '--merge'], env);
  assert.equal(
    parsed(await readFile(first, 'utf8')).getCluster('staging@kubeshim')?.server,
    'http://127.0.0.1:8124',
  );
  const own = await run(['--kubeconfig', source, '--merge'], { HOME: home });
  assert.equal(own.code, 0, own.err);
  const config = join(home, '.kube', 'config');
  assert.equal((await stat(config)).mode & 0o777, 0o600);
  assert.equal(parsed(await readFile(config, 'utf8')).getCurrentContext(), 'prod@kubeshim');
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
