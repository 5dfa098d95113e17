/**
 * Recording and audit through a real `kubeshim serve` process with the flags of the contract, real
 * kubectl and the real `kubeshim recordings`: the listener's own authentication names the identity
 * (the listener token's name; a client certificate's subject), --record-stdin records input,
 * --record-max-bytes truncates with a marker, port-forward sessions put their connections and bytes
 * per port in the audit log (never their payload), plain requests get their lines too.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { silentLogger } from '../../src/observe/logger.js';
import { makeKubeEnv, runKubectl } from '../support/kubectl.js';
import { echoThroughPortForward } from '../support/port-forward.js';
import { runCli, type ServeProcess, startServe } from '../support/processes.js';
import { asciinemaCat, readCast } from '../support/recording.js';
import { waitFor } from '../support/wait.js';

let work: string;
let certs: string;
let emulator: Emulator;
const read = (f: string) => readFile(join(certs, f), 'utf8');

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kubeshim-rec-serve-'));
  certs = join(work, 'certs');
  const made = spawnSync('certs/make-certs.sh', [certs], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(made.status, 0, made.stderr);
  emulator = await startEmulator({ generation: 'modern', logger: silentLogger() });
});
after(async () => {
  await emulator.close();
  await rm(work, { recursive: true, force: true });
});

const env = () => ({ PATH: process.env.PATH, HOME: work });

/** serve in front of the emulator over TLS (the dev certificates), then `args`. */
const serveTls = (args: string[]) =>
  startServe(
    [
      '--upstream',
      emulator.url,
      '--tls-cert',
      join(certs, 'server.crt'),
      '--tls-key',
      join(certs, 'server.key'),
      ...args,
    ],
    env(),
  );

async function auditLines(file: string): Promise<Record<string, unknown>[]> {
  return (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

describe('serve --record-dir --record-stdin --record-max-bytes --audit-log, behind --token-file', () => {
  let serve: ServeProcess;
  let dir: string;
  let auditFile: string;
  const LISTENER_TOKEN = 'listener-secret-0123456789';
  before(async () => {
    dir = join(work, 'casts');
    auditFile = join(work, 'audit.log');
    const tokenFile = join(work, 'ops-team');
    await writeFile(tokenFile, `${LISTENER_TOKEN}\n`);
    serve = await serveTls([
      '--token-file',
      tokenFile,
      '--record-dir',
      dir,
      '--record-stdin',
      '--record-max-bytes',
      '8192',
      '--audit-log',
      auditFile,
    ]);
  });
  after(() => serve.stop());

  const kube = async () => makeKubeEnv(serve.url, { token: LISTENER_TOKEN, caData: await read('ca.crt') });

  test('stdin is recorded, the identity is the listener token by name, the token nowhere', async () => {
    const k = await kube();
    try {
      const r = await runKubectl('1.36', ['exec', '-i', 'demo', '--', 'cat'], {
        env: k.env,
        input: 'typed-secret\n',
        timeoutMs: 30_000,
      });
      assert.equal(r.code, 0, r.stderr);
      const line = await waitFor('the session line', () =>
        serve.lines().find((l) => l['msg'] === 'session' && l['subresource'] === 'exec'),
      );
      const file = String(line['recording']);
      await waitFor('the end line', async () => (await readFile(file, 'utf8')).includes('exit code 0'));
      const { header, events } = await readCast(file);
      assert.ok(
        events.some((e) => e[1] === 'i' && e[2] === 'typed-secret\n'),
        JSON.stringify(events),
      );
      const meta = header['kubeshim'] as Record<string, unknown>;
      assert.deepEqual(meta['identity'], { via: 'listener-token', name: 'ops-team', address: '127.0.0.1' });
      assert.equal(meta['stdinRecorded'], true);
      assert.equal((await stat(dir)).mode & 0o777, 0o700);
      assert.equal((await stat(auditFile)).mode & 0o777, 0o600);
      const audit = await waitFor('the audit line', async () =>
        (await auditLines(auditFile)).find((a) => a['sessionId'] === line['sessionId']),
      );
      assert.equal(audit['recording'], file);
      for (const text of [await readFile(file, 'utf8'), await readFile(auditFile, 'utf8'), serve.output()])
        assert.ok(!text.includes(LISTENER_TOKEN), 'the listener token is in no record');
    } finally {
      await k.cleanup();
    }
  });

  test('a session past --record-max-bytes is cut with a marker, and still ends with its status', async () => {
    const k = await kube();
    try {
      const r = await runKubectl(
        '1.27',
        ['exec', 'demo', '--', 'sh', '-c', "head -c 100000 /dev/zero | tr '\\0' x; exit 4"],
        { env: k.env, timeoutMs: 30_000 },
      );
      assert.equal(r.code, 4, r.stderr);
      assert.equal(r.stdout.length, 100000);
      const line = await waitFor('the session line', () =>
        serve.lines().find((l) => l['msg'] === 'session' && l['exitCode'] === 4),
      );
      const file = String(line['recording']);
      await waitFor('the end line', async () => (await readFile(file, 'utf8')).includes('exit code 4'));
      assert.ok((await stat(file)).size < 8192 + 4096, `${(await stat(file)).size} bytes`);
      const shown = await asciinemaCat(file);
      assert.match(shown, /\[kubeshim: recording truncated at 8192 bytes\]/);
      assert.match(shown, /\[kubeshim: exit code 4\]/);
    } finally {
      await k.cleanup();
    }
  });

  test('port-forward: connections and bytes per port in the audit log, no payload', async () => {
    const k = await kube();
    try {
      const { sent, echoed } = await echoThroughPortForward('1.36', k.env);
      assert.equal(echoed, sent);
      const audit = await waitFor('the port-forward audit line', async () =>
        (await auditLines(auditFile)).find((a) => a['subresource'] === 'portforward' && a['status'] === 101),
      );
      assert.equal(audit['connections'], 1, JSON.stringify(audit));
      const forwards = audit['forwards'] as Record<string, Record<string, number>>;
      assert.equal(forwards['8080']?.['connections'], 1, JSON.stringify(audit));
      assert.equal(forwards['8080']?.['bytesIn'], sent.length);
      assert.equal(forwards['8080']?.['bytesOut'], sent.length);
      assert.ok(!(await readFile(auditFile, 'utf8')).includes(sent.trim()), 'no payload in the audit log');
      assert.equal(audit['recording'], undefined, 'port-forward is not recorded as a cast');
    } finally {
      await k.cleanup();
    }
  });

  test('plain requests and refusals have their audit lines', async () => {
    const k = await kube();
    try {
      const r = await runKubectl('1.36', ['get', 'pod', 'demo'], { env: k.env, timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      const bad = await makeKubeEnv(serve.url, { token: 'wrong', caData: await read('ca.crt') });
      await runKubectl('1.36', ['get', 'pod', 'demo'], { env: bad.env, timeoutMs: 30_000 });
      await bad.cleanup();
      const lines = await waitFor('the audit lines', async () => {
        const all = await auditLines(auditFile);
        const got = all.find(
          (a) => a['path'] === '/api/v1/namespaces/default/pods/demo' && a['status'] === 200,
        );
        const denied = all.find((a) => a['status'] === 401);
        return got && denied ? { got, denied } : undefined;
      });
      assert.equal(lines.got['method'], 'GET');
      assert.ok(Number(lines.got['bytes']) > 0);
      assert.equal((lines.got['identity'] as Record<string, unknown>)['via'], 'listener-token');
      assert.equal((lines.denied['identity'] as Record<string, unknown>)['via'], 'address');
    } finally {
      await k.cleanup();
    }
  });

  test('kubeshim recordings lists them and prints one as text', async () => {
    const list = await runCli(['recordings', '--dir', dir], env());
    assert.equal(list.code, 0, list.stderr);
    const text = list.stdout.toString();
    assert.match(text, /^STARTED +POD +WHAT +IDENTITY +ENDED +DURATION +SESSION$/m);
    assert.match(text, /default\/demo:demo +exec cat +token:ops-team +exit code 0/);
    assert.match(text, /exit code 4/);
    const json = await runCli(['recordings', '--dir', dir, '--output', 'json'], env());
    const entries = JSON.parse(json.stdout.toString()) as {
      sessionId: string;
      command: string[];
      ended: string;
    }[];
    assert.equal(entries.length, 2);
    const cat = entries.find((e) => e.command.join(' ') === 'cat')!;
    assert.equal(cat.ended, 'exit code 0');
    const shown = await runCli(['recordings', 'show', cat.sessionId, '--dir', dir], env());
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout.toString(), 'typed-secret\n\r\n[kubeshim: exit code 0]\r\n');
    const missing = await runCli(['recordings', 'show', 'nope', '--dir', dir], env());
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `kubeshim recordings: no recording of session nope in ${dir}\n`);
    const usage = await runCli(['recordings'], env());
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--dir DIR is required/);
  });
});

describe('serve --client-ca --record-dir: the identity is the client certificate subject', () => {
  let serve: ServeProcess;
  let dir: string;
  before(async () => {
    dir = join(work, 'mtls-casts');
    serve = await serveTls(['--client-ca', join(certs, 'ca.crt'), '--record-dir', dir]);
  });
  after(() => serve.stop());

  test('exec with a client certificate', async () => {
    const k = await makeKubeEnv(serve.url, {
      caData: await read('ca.crt'),
      clientCertData: await read('client.crt'),
      clientKeyData: await read('client.key'),
    });
    try {
      const r = await runKubectl('1.27', ['exec', 'demo', '--', 'echo', 'mtls'], {
        env: k.env,
        timeoutMs: 30_000,
      });
      assert.equal(r.code, 0, r.stderr);
      const line = await waitFor('the session line', () => serve.lines().find((l) => l['msg'] === 'session'));
      const file = String(line['recording']);
      await waitFor('the end line', async () => (await readFile(file, 'utf8')).includes('exit code 0'));
      const meta = (await readCast(file)).header['kubeshim'] as Record<string, unknown>;
      const identity = meta['identity'] as Record<string, unknown>;
      assert.equal(identity['via'], 'client-certificate');
      assert.equal(identity['subject'], 'O=kubeshim,CN=kubeshim-client');
    } finally {
      await k.cleanup();
    }
  });
});

describe('serve --audit-log -', () => {
  test('audit lines go to stdout with the log, as lines whose msg is audit, whatever the log level', async () => {
    const serve = await startServe(
      ['--upstream', emulator.url, '--audit-log', '-', '--log-level', 'warn'],
      env(),
    );
    try {
      const k = await makeKubeEnv(serve.url);
      try {
        const r = await runKubectl('1.36', ['get', 'pod', 'demo'], { env: k.env, timeoutMs: 30_000 });
        assert.equal(r.code, 0, r.stderr);
      } finally {
        await k.cleanup();
      }
      const line = await waitFor('an audit line', () =>
        serve
          .lines()
          .find((l) => l['msg'] === 'audit' && l['path'] === '/api/v1/namespaces/default/pods/demo'),
      );
      assert.equal(line['status'], 200);
      assert.equal(line['method'], 'GET');
      assert.deepEqual(line['identity'], { via: 'address', address: '127.0.0.1' });
    } finally {
      await serve.stop();
    }
  });

  test('recording flags without --record-dir are a usage error', async () => {
    const r = await runCli(['serve', '--record-stdin'], env());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^kubeshim serve: --record-stdin needs --record-dir/);
  });

  test('an existing audit log that others could read is made owner-only', async () => {
    const file = join(work, 'shared-audit.log');
    await writeFile(file, '', { mode: 0o644 });
    await chmod(file, 0o644);
    const serve = await startServe(['--upstream', emulator.url, '--audit-log', file], env());
    try {
      assert.equal((await stat(file)).mode & 0o777, 0o600);
    } finally {
      await serve.stop();
    }
  });

  test('--record-max-bytes 0 would record nothing: a usage error', async () => {
    const r = await runCli(['serve', '--record-dir', join(work, 'zero'), '--record-max-bytes', '0'], env());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^kubeshim serve: --record-max-bytes: 0 would record nothing; give at least 1/);
  });
});

describe('serve --record-required --record-max-bytes', () => {
  test('a session that passes the cap is ended as recording stopped: output past the cap never goes unrecorded', async () => {
    const serve = await startServe(
      [
        '--upstream',
        emulator.url,
        '--record-dir',
        join(work, 'capped'),
        '--record-required',
        '--record-max-bytes',
        '8192',
      ],
      env(),
    );
    try {
      const k = await makeKubeEnv(serve.url);
      try {
        const r = await runKubectl(
          '1.36',
          [
            'exec',
            'demo',
            '--',
            'sh',
            '-c',
            "head -c 100000 /dev/zero | tr '\\0' x; sleep 5; echo UNRECORDED",
          ],
          { env: k.env, timeoutMs: 30_000 },
        );
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /recording stopped: the session passed --record-max-bytes \(8192 bytes\)/);
        assert.doesNotMatch(r.stdout.toString(), /UNRECORDED/);
      } finally {
        await k.cleanup();
      }
      const line = await waitFor('the session line', () => serve.lines().find((l) => l['msg'] === 'session'));
      assert.match(String(line['closeReason']), /recording stopped/);
    } finally {
      await serve.stop();
    }
  });
});
