/**
 * Credentials the target injects, against a real https server that requires a bearer token: a
 * static token, a token file that is re-read, and exec credential plugins (v1 and v1beta1) run by
 * client-node, cached until their expirationTimestamp, re-run after it, and failing clearly.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TOKEN_FILE_REFRESH_MS } from '../../src/upstream/credentials.js';
import { loadUpstreamTarget, type UpstreamTarget } from '../../src/upstream/target.js';
import { waitFor, withTimeout } from '../support/wait.js';

let dir: string;
let serverUrl: string;
let ca: string;
/** Tokens the server accepts. */
const accepted = new Set<string>();
let server: https.Server;
const targets: UpstreamTarget[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-creds-'));
  execFileSync('certs/make-certs.sh', [join(dir, 'pki')], { stdio: 'ignore' });
  ca = await readFile(join(dir, 'pki', 'ca.crt'), 'utf8');
  server = https.createServer(
    {
      cert: await readFile(join(dir, 'pki', 'server.crt')),
      key: await readFile(join(dir, 'pki', 'server.key')),
    },
    (req, res) => {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const ok = token !== undefined && accepted.has(token);
      res.writeHead(ok ? 200 : 401, { 'content-type': 'text/plain' });
      res.end(ok ? token : 'Unauthorized');
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  serverUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const t of targets) t.agent.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function targetFor(user: object): Promise<UpstreamTarget> {
  const file = join(dir, `kc-${++n}.json`);
  const doc = {
    clusters: [
      {
        name: 'c',
        cluster: { server: serverUrl, 'certificate-authority-data': Buffer.from(ca).toString('base64') },
      },
    ],
    users: [{ name: `u${n}`, user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: `u${n}` } }],
    'current-context': 'ctx',
  };
  await writeFile(file, JSON.stringify(doc));
  const target = await loadUpstreamTarget({ kubeconfig: file }, { HOME: dir });
  targets.push(target);
  return target;
}

/** GET through the target with its credentials; resolves the status and the token the server saw. */
async function get(target: UpstreamTarget): Promise<{ status: number; body: string }> {
  const headers = await target.authHeaders();
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = https.request(new URL('/version', target.url), { agent: target.agent, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    }),
    5000,
    'GET /version',
  );
}

test('a static token is sent as a bearer token, and the server rejects a wrong one', async () => {
  accepted.add('static-token');
  const good = await targetFor({ token: 'static-token' });
  assert.deepEqual(await get(good), { status: 200, body: 'static-token' });
  assert.equal(good.injectsCredentials, true);
  assert.ok(!good.describe().includes('static-token'), 'describe() never shows the secret');
  const bad = await targetFor({ token: 'wrong' });
  assert.equal((await get(bad)).status, 401);
});

test('token-file: relative to the kubeconfig, trimmed, re-read after a minute and on invalidate', async (t) => {
  accepted.add('file-token-1');
  accepted.add('file-token-2');
  accepted.add('file-token-3');
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, 'file-token-1\n');
  const target = await targetFor({ tokenFile: 'token' }); // kubectl's field name
  assert.deepEqual(await get(target), { status: 200, body: 'file-token-1' });
  assert.match(target.describe(), /auth: token-file/);

  await writeFile(tokenFile, 'file-token-2\n');
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
  assert.deepEqual(
    await target.authHeaders(),
    { Authorization: 'Bearer file-token-1' },
    'cached within a minute',
  );
  t.mock.timers.tick(TOKEN_FILE_REFRESH_MS);
  assert.deepEqual(
    await target.authHeaders(),
    { Authorization: 'Bearer file-token-2' },
    're-read after a minute',
  );
  t.mock.timers.reset();

  await writeFile(tokenFile, 'file-token-3');
  target.invalidateCredentials();
  assert.deepEqual(await get(target), { status: 200, body: 'file-token-3' }, 're-read at once after a 401');

  await assert.rejects(targetFor({ 'token-file': 'absent' }), /cannot read token-file .*absent/); // client-node's spelling
});

/**
 * An exec plugin as a shell script: each run appends a line (its expiry) to `calls`, saves its
 * KUBERNETES_EXEC_INFO, and prints an ExecCredential whose token is `exec-N` for run N.
 */
async function plugin(name: string, apiVersion: string, lifetimeS: number | undefined): Promise<string> {
  const file = join(dir, name);
  const expiry =
    lifetimeS === undefined
      ? 'exp='
      : `exp=$(date -u -d @$(( $(date +%s) + ${lifetimeS} )) +%Y-%m-%dT%H:%M:%SZ)`;
  await writeFile(
    file,
    `#!/bin/sh
d=$(dirname "$0")
${expiry}
echo "$exp" >> "$d/${name}.calls"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$d/${name}.info"
count=$(wc -l < "$d/${name}.calls")
status="\\"token\\":\\"exec-$count\\""
[ -n "$exp" ] && status="$status,\\"expirationTimestamp\\":\\"$exp\\""
printf '{"apiVersion":"%s","kind":"ExecCredential","status":{%s}}\\n' "${apiVersion}" "$status"
`,
  );
  await chmod(file, 0o755);
  return file;
}

/** One line per plugin run (the expiry it printed, or an empty line). */
const calls = async (name: string) =>
  (await readFile(join(dir, `${name}.calls`), 'utf8')).split('\n').slice(0, -1);

test('exec plugin (v1): one run for many requests, cached until expirationTimestamp, run again after', async () => {
  for (let i = 1; i <= 3; i++) accepted.add(`exec-${i}`);
  await plugin('plug-v1', 'client.authentication.k8s.io/v1', 2);
  const target = await targetFor({
    exec: {
      apiVersion: 'client.authentication.k8s.io/v1',
      command: './plug-v1',
      interactiveMode: 'Never',
      provideClusterInfo: true,
    },
  });
  assert.match(target.describe(), /auth: exec plugin .*plug-v1/);
  const concurrent = await Promise.all([get(target), get(target), get(target), get(target)]);
  for (const r of concurrent) assert.deepEqual(r, { status: 200, body: 'exec-1' });
  assert.deepEqual(await get(target), { status: 200, body: 'exec-1' });
  assert.equal((await calls('plug-v1')).length, 1, 'five requests, one plugin run');

  const info = JSON.parse(await readFile(join(dir, 'plug-v1.info'), 'utf8'));
  assert.equal(info.apiVersion, 'client.authentication.k8s.io/v1');
  assert.equal(info.kind, 'ExecCredential');
  assert.equal(info.spec.interactive, false);
  assert.equal(info.spec.cluster.server, serverUrl, 'provideClusterInfo passes the cluster');

  const expiry = Date.parse((await calls('plug-v1'))[0] as string);
  await waitFor('the credential to expire', () => Date.now() > expiry, 5000, 50);
  assert.deepEqual(
    await get(target),
    { status: 200, body: 'exec-2' },
    'an expired credential runs the plugin again',
  );
  assert.deepEqual(await get(target), { status: 200, body: 'exec-2' });
  assert.equal((await calls('plug-v1')).length, 2);
});

test('exec plugin (v1beta1) without expiry: kept until invalidated, as kubectl keeps it until a 401', async () => {
  accepted.add('exec-1');
  accepted.add('exec-2');
  await plugin('plug-beta', 'client.authentication.k8s.io/v1beta1', undefined);
  const target = await targetFor({
    exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: './plug-beta' },
  });
  for (let i = 0; i < 3; i++) assert.deepEqual(await get(target), { status: 200, body: 'exec-1' });
  assert.equal((await calls('plug-beta')).length, 1);
  const info = JSON.parse(await readFile(join(dir, 'plug-beta.info'), 'utf8'));
  assert.equal(info.spec.cluster, undefined, 'no cluster info unless asked for');
  target.invalidateCredentials();
  assert.deepEqual(await get(target), { status: 200, body: 'exec-2' });
  assert.equal((await calls('plug-beta')).length, 2);
});

test('exec plugin failures are sentences with the plugin name and the install hint, never what it printed', async () => {
  const failing = join(dir, 'fail.sh');
  await writeFile(failing, '#!/bin/sh\necho "login expired: password=hunter2" >&2\nexit 3\n');
  await chmod(failing, 0o755);
  const v1 = 'client.authentication.k8s.io/v1';
  const target = await targetFor({ exec: { apiVersion: v1, command: failing, interactiveMode: 'Never' } });
  await assert.rejects(
    target.authHeaders(),
    /^Error: exec plugin ".*fail\.sh" failed \(32 bytes on stderr\): run ".*fail\.sh" yourself to see what it printed \(kubeshim never logs it\)$/,
  );

  // V8's JSON errors quote the text: a plugin that prints a bare token must not have it quoted
  const bare = join(dir, 'bare-token.sh');
  await writeFile(bare, '#!/bin/sh\necho "sha256~bare-token-secret"\n');
  await chmod(bare, 0o755);
  const bareTarget = await targetFor({ exec: { apiVersion: v1, command: bare } });
  await assert.rejects(bareTarget.authHeaders(), (err: Error) => {
    assert.match(err.message, /^exec plugin ".*bare-token\.sh" did not print valid JSON: run /);
    assert.doesNotMatch(err.message, /secret/);
    return true;
  });

  const absent = await targetFor({
    exec: { apiVersion: v1, command: 'kubeshim-no-such-plugin', installHint: 'install it from example.test' },
  });
  await assert.rejects(
    absent.authHeaders(),
    /exec plugin "kubeshim-no-such-plugin" could not be started \(ENOENT\)\ninstall it from example\.test/,
  );

  const garbage = join(dir, 'garbage.sh');
  await writeFile(garbage, '#!/bin/sh\necho "{\\"apiVersion\\":\\"v0\\"}"\n');
  await chmod(garbage, 0o755);
  const wrongKind = await targetFor({ exec: { apiVersion: v1, command: garbage } });
  await assert.rejects(
    wrongKind.authHeaders(),
    /did not print an ExecCredential of apiVersion client\.authentication/,
  );

  await assert.rejects(
    targetFor({ exec: { apiVersion: 'client.authentication.k8s.io/v1alpha1', command: 'x' } }),
    /apiVersion "client\.authentication\.k8s\.io\/v1alpha1"; supported: /,
  );
  await assert.rejects(
    targetFor({ exec: { apiVersion: v1, command: 'x', interactiveMode: 'Always' } }),
    /needs a terminal/,
  );
});

test('basic auth and impersonation from the kubeconfig user', async () => {
  const target = await targetFor({ username: 'admin', password: 'pw', as: 'jane' });
  assert.deepEqual(await target.authHeaders(), {
    Authorization: `Basic ${Buffer.from('admin:pw').toString('base64')}`,
    'Impersonate-User': 'jane',
  });
  assert.match(target.describe(), /auth: basic, impersonating jane/);
  assert.ok(!target.describe().includes('pw'));
});

test('as, as-groups, as-uid and as-user-extra become the Impersonate-* headers kubectl sends', async () => {
  const target = await targetFor({
    token: 'tok',
    as: 'jane',
    'as-groups': ['devs', 'system:authenticated'],
    'as-uid': '1234',
    'as-user-extra': { 'example.com/scopes': ['view', 'edit'], 'a b%': ['x'] },
  });
  assert.deepEqual(await target.authHeaders(), {
    Authorization: 'Bearer tok',
    'Impersonate-User': 'jane',
    'Impersonate-Group': ['devs', 'system:authenticated'],
    'Impersonate-Uid': '1234',
    'Impersonate-Extra-example.com%2Fscopes': ['view', 'edit'],
    'Impersonate-Extra-a%20b%25': ['x'],
  });
  const groupsOnly = await targetFor({ token: 'tok', 'as-groups': ['ops'] });
  assert.deepEqual(await groupsOnly.authHeaders(), {
    Authorization: 'Bearer tok',
    'Impersonate-Group': ['ops'],
  });
});
