/**
 * The emulator as an HTTPS apiserver that demands a client certificate, and as one that demands a
 * bearer token: real kubectl gets in with the right credential (over SPDY and WebSocket) and gets
 * the apiserver's 401 otherwise. Also: each session is one pino `session` line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { createLogger } from '../../src/observe/logger.js';
import { httpsGet } from '../support/https-get.js';
import { UNAUTHORIZED_BODY } from '../support/k8s-bodies.js';
import { type KubeEnvOptions, makeKubeEnv, runKubectl } from '../support/kubectl.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-emu-auth-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function certs(
  name: string,
): Promise<Record<'ca' | 'cert' | 'key' | 'clientCert' | 'clientKey', string>> {
  const out = join(dir, name);
  const r = spawnSync('certs/make-certs.sh', [out], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const read = (f: string) => readFile(join(out, f), 'utf8');
  return {
    ca: await read('ca.crt'),
    cert: await read('server.crt'),
    key: await read('server.key'),
    clientCert: await read('client.crt'),
    clientKey: await read('client.key'),
  };
}

async function catHi(emu: Emulator, version: '1.27' | '1.33', opts: KubeEnvOptions) {
  const kube = await makeKubeEnv(emu.url, opts);
  try {
    return await runKubectl(version, ['exec', '-i', 'demo', '--', 'cat'], {
      env: kube.env,
      input: 'hi\n',
      timeoutMs: 20_000,
    });
  } finally {
    await kube.cleanup();
  }
}

describe('HTTPS with a required client certificate', () => {
  let emu: Emulator;
  let good: Awaited<ReturnType<typeof certs>>;
  let other: Awaited<ReturnType<typeof certs>>;
  before(async () => {
    good = await certs('good');
    other = await certs('other');
    emu = await startEmulator({
      tls: { cert: good.cert, key: good.key, ca: good.ca, requestClientCert: true },
    });
  });
  after(() => emu?.close());

  test('kubectl with a certificate from the CA gets in, over SPDY and WebSocket', async () => {
    assert.match(emu.url, /^https:/);
    for (const version of ['1.27', '1.33'] as const) {
      const r = await catHi(emu, version, {
        caData: good.ca,
        clientCertData: good.clientCert,
        clientKeyData: good.clientKey,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), 'hi\n');
    }
    assert.deepEqual(
      emu.sessions.map((s) => s.transport),
      ['spdy', 'websocket'],
    );
  });

  test('a certificate from another CA, or none, gets 401', async () => {
    const r = await catHi(emu, '1.33', {
      caData: good.ca,
      clientCertData: other.clientCert,
      clientKeyData: other.clientKey,
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /You must be logged in to the server/);
    // without any credential kubectl would prompt for a password: ask directly
    const res = await httpsGet(`${emu.url}/api/v1/namespaces/default/pods/demo`, good.ca);
    assert.equal(res.status, 401);
    assert.equal(JSON.parse(res.body).reason, 'Unauthorized');
  });
});

describe('HTTPS with a required bearer token', () => {
  let emu: Emulator;
  let tls: Awaited<ReturnType<typeof certs>>;
  const lines: Record<string, unknown>[] = [];
  before(async () => {
    tls = await certs('token');
    const sink = new PassThrough();
    sink.on('data', (d: Buffer) => {
      for (const l of d.toString().split('\n')) if (l) lines.push(JSON.parse(l));
    });
    emu = await startEmulator({
      tls: { cert: tls.cert, key: tls.key },
      auth: { token: 's3cret-token' },
      logger: createLogger({ destination: sink, pretty: false }),
    });
  });
  after(() => emu?.close());

  test('the right token gets in; a wrong or missing one gets the 401 Status', async () => {
    // kubectl sends a token only over TLS
    const r = await catHi(emu, '1.33', { caData: tls.ca, token: 's3cret-token' });
    assert.equal(r.code, 0, r.stderr);
    const wrong = await catHi(emu, '1.27', { caData: tls.ca, token: 'wrong' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /You must be logged in to the server/);
    const res = await httpsGet(`${emu.url}/api/v1/namespaces/default/pods/demo`, tls.ca);
    assert.equal(res.status, 401);
    assert.deepEqual(JSON.parse(res.body), UNAUTHORIZED_BODY);
  });

  test('each session is one pino line saying which protocol it used, without the token', async () => {
    const sessions = lines.filter((l) => l['msg'] === 'session');
    assert.equal(sessions.length, 1);
    assert.equal(sessions[0]!['protocol'], 'v5.channel.k8s.io');
    assert.equal(sessions[0]!['subresource'], 'exec');
    assert.equal(sessions[0]!['exitCode'], 0);
    assert.ok(!JSON.stringify(lines).includes('s3cret-token'));
  });
});
