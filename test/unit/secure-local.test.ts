/**
 * The material of `serve --secure-local`: kept while it is good, made anew when a certificate is
 * about to expire or a file is damaged; the certificate names the loopback and is signed by the
 * CA, whose private key is never written.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { prepareSecureLocal } from '../../src/server/secure-local.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kubeshim-secure-local-'));
});
after(() => rm(root, { recursive: true, force: true }));

const DAY = 24 * 3600_000;

test('a certificate for the loopback names, signed by the CA; no CA key on disk', async () => {
  const dir = join(root, 'names');
  const { files, made } = await prepareSecureLocal(dir);
  assert.equal(made, true);
  const ca = new X509Certificate(await readFile(files.ca));
  const cert = new X509Certificate(await readFile(files.cert));
  assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey));
  assert.ok(cert.checkIP('127.0.0.1') && cert.checkIP('::1') && cert.checkHost('localhost'));
  assert.equal(cert.checkHost('evil.example'), undefined);
  assert.ok(ca.ca && !cert.ca);
  assert.deepEqual((await readdir(dir)).sort(), ['ca.crt', 'tls.crt', 'tls.key', 'token']);
});

test('kept until a day before it expires, then made anew', async () => {
  const dir = join(root, 'expiry');
  const now = Date.now();
  const first = await prepareSecureLocal(dir, new Date(now));
  const token = await readFile(first.files.token, 'utf8');
  assert.equal((await prepareSecureLocal(dir, new Date(now + 300 * DAY))).made, false);
  assert.equal(await readFile(first.files.token, 'utf8'), token);
  assert.equal((await prepareSecureLocal(dir, new Date(now + 365 * DAY))).made, true);
  assert.notEqual(await readFile(first.files.token, 'utf8'), token);
});

for (const [file, damage] of [
  ['tls.crt', 'not a certificate'],
  ['tls.key', ''],
  ['token', 'short'],
] as const) {
  test(`a damaged ${file} makes everything anew`, async () => {
    const dir = join(root, `damaged-${file}`);
    const { files } = await prepareSecureLocal(dir);
    const ca = await readFile(files.ca, 'utf8');
    await writeFile(join(dir, file), damage, { mode: 0o600 });
    assert.equal((await prepareSecureLocal(dir)).made, true);
    assert.notEqual(await readFile(files.ca, 'utf8'), ca);
  });
}

test('a key of another certificate makes everything anew', async () => {
  const a = await prepareSecureLocal(join(root, 'a'));
  const b = await prepareSecureLocal(join(root, 'b'));
  await writeFile(a.files.key, await readFile(b.files.key), { mode: 0o600 });
  assert.equal((await prepareSecureLocal(a.files.dir)).made, true);
});
