/**
 * certs/make-certs.sh: a CA, a server certificate with the local names plus the given ones, a
 * client certificate; running it again keeps what is good and re-issues only what changed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-certs-'));
});
after(() => rm(dir, { recursive: true, force: true }));

function makeCerts(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('certs/make-certs.sh', args, { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const FILES = ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'client.crt', 'client.key'];
async function snapshot(out: string): Promise<Record<string, string>> {
  const s: Record<string, string> = {};
  for (const f of FILES) s[f] = await readFile(join(out, f), 'utf8');
  return s;
}
const cert = async (out: string, f: string) => new X509Certificate(await readFile(join(out, f)));

test('first run: CA, server certificate for local and given names, client certificate', async () => {
  const out = join(dir, 'a');
  const r = makeCerts(out, 'shim.internal', '10.1.2.3', 'fd00::7');
  assert.equal(r.status, 0, r.stderr);
  for (const f of ['ca.crt', 'server.crt', 'client.crt'])
    assert.match(r.stdout, new RegExp(`^wrote .*/${f}`, 'm'));
  for (const f of ['ca.key', 'server.key', 'client.key'])
    assert.equal((await stat(join(out, f))).mode & 0o777, 0o600, `${f} is private`);

  const ca = await cert(out, 'ca.crt');
  const server = await cert(out, 'server.crt');
  const client = await cert(out, 'client.crt');
  assert.ok(ca.ca, 'the CA is a CA');
  for (const leaf of [server, client]) {
    assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey), 'signed by the CA');
    assert.equal(leaf.ca, false);
  }
  for (const host of ['localhost', 'shim.internal']) assert.equal(server.checkHost(host), host);
  for (const ip of ['127.0.0.1', '::1', '10.1.2.3', 'fd00::7']) assert.ok(server.checkIP(ip), ip);
  assert.equal(server.checkHost('other.internal'), undefined);
  assert.deepEqual(server.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'serverAuth');
  assert.deepEqual(client.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'clientAuth');
  assert.match(client.subject, /CN=kubeshim-client/);
});

test('running again keeps everything; new names re-issue only the server certificate', async () => {
  const out = join(dir, 'b');
  assert.equal(makeCerts(out, 'one.internal').status, 0);
  const first = await snapshot(out);

  const again = makeCerts(out, 'one.internal');
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stdout, /^wrote/m);
  assert.equal(again.stdout.match(/^kept /gm)?.length, 3);
  assert.deepEqual(await snapshot(out), first, 'nothing rewritten');

  const renamed = makeCerts(out, 'two.internal');
  assert.equal(renamed.status, 0, renamed.stderr);
  const second = await snapshot(out);
  assert.notEqual(second['server.crt'], first['server.crt']);
  for (const f of ['ca.crt', 'ca.key', 'client.crt', 'client.key'])
    assert.equal(second[f], first[f], `${f} kept`);
  const server = await cert(out, 'server.crt');
  assert.equal(server.checkHost('two.internal'), 'two.internal');
  assert.equal(server.checkHost('one.internal'), undefined);

  await unlink(join(out, 'client.crt'));
  const repaired = makeCerts(out, 'two.internal');
  assert.match(repaired.stdout, /^wrote .*client\.crt/m);
  assert.match(repaired.stdout, /^kept .*server\.crt/m);
});

test('without an output folder it prints its usage and fails', () => {
  const r = makeCerts();
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: .*OUTDIR/);
});
