/**
 * One voice for errors, as a user reads them: each command, run as a real process, writes one line
 * on stderr that names the flag or input and says what to do; usage errors exit 2 and point at the
 * command's --help (without reprinting it), failures at run time exit 1, and no stack is printed.
 * Also: --listen PORT, Go durations in doctor, serve's warning for an upstream it cannot reach.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunResult } from '../support/kubectl.js';
import { runCli, startServe } from '../support/processes.js';
import { freePort, waitFor } from '../support/wait.js';

let dir: string;
let env: NodeJS.ProcessEnv;
let pki: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-errors-'));
  env = { PATH: process.env.PATH, HOME: join(dir, 'home') };
  pki = join(dir, 'pki');
  execFileSync('certs/make-certs.sh', [pki], { stdio: 'ignore' });
});
after(() => rm(dir, { recursive: true, force: true }));

/** The whole of stderr is one line for `command`; stdout is empty; no stack. */
function says(r: RunResult, command: string, code: 1 | 2, text: RegExp): void {
  const stderr = r.stderr;
  assert.equal(r.code, code, `exit code; stderr: ${stderr}`);
  assert.equal(r.stdout.toString(), '', 'nothing on stdout');
  assert.match(
    stderr,
    new RegExp(`^kubeshim ${command}: [^\\n]+\\n$`),
    `one line: ${JSON.stringify(stderr)}`,
  );
  assert.match(stderr, text);
  assert.doesNotMatch(stderr, /\n\s+at |node:internal|Error:/, 'no stack, no raw error');
  if (code === 2) assert.match(stderr, new RegExp(`; see 'kubeshim ${command} --help'\\n$`));
  else assert.doesNotMatch(stderr, /--help/);
}

const serve = (args: string[]) => runCli(['serve', ...args], env);
const UP = ['--upstream', 'http://127.0.0.1:1'];

describe('serve', () => {
  test('missing certificate or key file: the flag, the file, no such file', async () => {
    says(
      await serve([...UP, '--tls-cert', '/nope.crt', '--tls-key', join(pki, 'server.key')]),
      'serve',
      1,
      /--tls-cert \/nope\.crt: no such file$/m,
    );
    says(
      await serve([...UP, '--tls-cert', join(pki, 'server.crt'), '--tls-key', '/nope.key']),
      'serve',
      1,
      /--tls-key \/nope\.key: no such file$/m,
    );
  });

  test('a flag file that never ends (/dev/zero) is refused past 16 MiB, not read into memory', async () => {
    says(
      await serve([...UP, '--token-file', '/dev/zero']),
      'serve',
      1,
      /--token-file \/dev\/zero: larger than 16 MiB, which no certificate, key or token is: is it the right file\?$/m,
    );
  });

  test("a key that is not the certificate's: said so, not OpenSSL's text", async () => {
    const r = await serve([...UP, '--tls-cert', join(pki, 'server.crt'), '--tls-key', join(pki, 'ca.key')]);
    says(
      r,
      'serve',
      1,
      /--tls-key .*ca\.key is not the private key of --tls-cert .*server\.crt: give the key/,
    );
    assert.doesNotMatch(r.stderr, /key values mismatch/);
  });

  test('a port in use: --listen named, what to do', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const r = await serve([...UP, '--listen', `127.0.0.1:${port}`]);
      says(
        r,
        'serve',
        1,
        new RegExp(`--listen 127\\.0\\.0\\.1:${port}: the port is already in use .*choose another port`),
      );
      assert.doesNotMatch(r.stderr, /EADDRINUSE/);
    } finally {
      busy.close();
    }
  });

  test('unknown --log-level: the levels there are', async () => {
    const r = await serve([...UP, '--log-level', 'loud']);
    says(
      r,
      'serve',
      2,
      /--log-level 'loud' is not a level: use one of trace, debug, info, warn, error, fatal, silent/,
    );
    assert.doesNotMatch(r.stderr, /custom levels/);
  });

  test('--upstream without a scheme is refused, with both spellings offered', async () => {
    says(
      await serve(['--upstream', '10.0.0.1:6443']),
      'serve',
      2,
      /--upstream '10\.0\.0\.1:6443' has no scheme: write https:\/\/10\.0\.0\.1:6443 \(or http:\/\/10\.0\.0\.1:6443/,
    );
  });

  test('missing kubeconfig, unknown context', async () => {
    says(
      await serve(['--kubeconfig', '/nope.yaml']),
      'serve',
      1,
      /--kubeconfig \/nope\.yaml: no such file; give the path/,
    );
    says(await serve([]), 'serve', 1, /no kubeconfig found .*: pass --kubeconfig PATH or --upstream URL/);
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      'apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]\n' +
        'users: [{name: u, user: {}}]\ncontexts: [{name: a, context: {cluster: c, user: u}}, {name: b, context: {cluster: c, user: u}}]\n',
    );
    says(
      await serve(['--kubeconfig', kubeconfig, '--context', 'nope']),
      'serve',
      1,
      /context "nope" is not in kubeconfig .*\(contexts: a, b\)/,
    );
  });

  test('usage errors: unknown flag, missing value, bad duration, half of TLS', async () => {
    says(await serve(['--bogus']), 'serve', 2, /unknown flag --bogus/);
    says(await serve(['--listen']), 'serve', 2, /--listen needs a value/);
    says(await serve([...UP, '--idle-timeout', '5x']), 'serve', 2, /--idle-timeout: '5x' is not a duration/);
    says(
      await serve([...UP, '--tls-cert', join(pki, 'server.crt')]),
      'serve',
      2,
      /--tls-cert and --tls-key go together/,
    );
    says(await serve([...UP, '--listen', 'nowhere']), 'serve', 2, /--listen must be HOST:PORT or PORT/);
  });

  test('a --record-dir that takes no files is said at start, with or without the warm-up; the check leaves nothing there', async () => {
    const records = join(dir, 'records-locked');
    await mkdir(records);
    // root writes through file modes: the immutable attribute stops it too
    const locked = process.getuid?.() === 0 ? ['chattr', '+i'] : ['chmod', '0500'];
    execFileSync(locked[0]!, [locked[1]!, records]);
    try {
      for (const extra of [[], ['--no-warm-up']])
        says(
          await serve([...UP, '--record-dir', records, ...extra]),
          'serve',
          1,
          /--record-dir \S+records-locked: cannot create a recording there \((EPERM|EACCES)\): give a directory kubeshim can write$/m,
        );
    } finally {
      execFileSync(locked[0]!, [locked[0] === 'chattr' ? '-i' : '0700', records]);
    }
    const shim = await startServe([...UP, '--record-dir', records], env);
    try {
      assert.deepEqual(await readdir(records), [], 'the warm-up recording is deleted');
    } finally {
      assert.equal(await shim.stop(), 0);
    }
  });

  test('--listen PORT is 127.0.0.1:PORT; an upstream it cannot reach is a warning naming kubeshim doctor', async () => {
    const port = await freePort();
    const shim = await startServe([...UP, '--listen', String(port)], env);
    try {
      assert.equal(shim.url, `http://127.0.0.1:${port}`);
      const warning = await waitFor(
        'the upstream warning',
        () => shim.lines().find((l) => l['level'] === 40 && /upstream/.test(String(l['msg']))),
        15_000,
      );
      assert.match(String(warning['msg']), /nothing listens at 127\.0\.0\.1:1 .*run 'kubeshim doctor'/);
      assert.equal(shim.child.exitCode, null, 'not fatal: still serving');
    } finally {
      assert.equal(await shim.stop(), 0);
    }
  });
});

describe('other commands', () => {
  test('kubeshim: an unknown command', async () => {
    const r = await runCli(['frobnicate'], env);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^kubeshim: unknown command 'frobnicate' \(commands: serve, demo, kubeconfig, doctor, recordings, version\); see 'kubeshim --help'\n$/,
    );
  });

  test('doctor: usage errors, Go durations accepted', async () => {
    says(
      await runCli(['doctor', '--timeout', 'soon'], env),
      'doctor',
      2,
      /--timeout: 'soon' is not a duration/,
    );
    says(await runCli(['doctor', '--idle', '1m', ...UP], env), 'doctor', 2, /--idle needs --pod/);
    says(
      await runCli(['doctor', '--timeout', '0s', ...UP], env),
      'doctor',
      2,
      /--timeout must be more than 0/,
    );
    // 5s and 1m parse: the run gets as far as the unreachable upstream, and says so
    const r = await runCli(['doctor', '--timeout', '5s', '--idle', '1m', '--pod', 'p', ...UP], env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout.toString(), /nothing listens at 127\.0\.0\.1:1/);
  });

  test('kubeconfig: the missing directory of --output', async () => {
    says(
      await runCli(['kubeconfig', ...UP, '--output', join(dir, 'missing', 'config')], env),
      'kubeconfig',
      1,
      /--output .*missing\/config: the directory .*missing does not exist; create it first/,
    );
  });

  test('demo: a bad flag', async () => {
    says(
      await runCli(['demo', '--generation', 'ancient'], env),
      'demo',
      2,
      /--generation 'ancient' is not one of legacy/,
    );
  });
});
