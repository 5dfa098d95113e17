/** node-pty is optional: its absence, or a build that does not load, becomes an error saying how to get terminals. */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { probeTerminals, TerminalsUnavailableError } from '../../src/emulator/terminal.js';

test('terminals: a missing node-pty is reported with the way to install it', () => {
  const missing = Object.assign(new Error("Cannot find module 'node-pty'"), { code: 'MODULE_NOT_FOUND' });
  const got = probeTerminals(() => {
    throw missing;
  });
  assert.ok(got instanceof TerminalsUnavailableError);
  assert.match(got.message, /node-pty, which is not installed/);
  assert.match(got.message, /npm install node-pty/);
  assert.match(got.message, /exec without -t/);
  assert.equal(got.cause, missing);
});

test('terminals: a node-pty that does not load says why, in one line', () => {
  const got = probeTerminals(() => {
    throw new Error(
      'node-pty.node was compiled against a different Node.js version\nusing NODE_MODULE_VERSION 115',
    );
  });
  assert.ok(got instanceof TerminalsUnavailableError);
  assert.match(
    got.message,
    /does not load \(node-pty\.node was compiled against a different Node\.js version\)/,
  );
  assert.doesNotMatch(got.message, /\n/);
});

test('terminals: an installed node-pty is loaded and spawns', async () => {
  const got = probeTerminals(() => createRequire(import.meta.url)('node-pty'));
  assert.ok(!(got instanceof TerminalsUnavailableError), String(got));
  const term = got.spawn('sh', ['-c', 'echo pty-ok'], {
    name: 'xterm',
    cols: 80,
    rows: 24,
    cwd: process.cwd(),
    env: { PATH: process.env.PATH },
    encoding: null,
  });
  let out = '';
  term.onData((d) => {
    out += d.toString();
  });
  const code = await new Promise<number>((resolve) => term.onExit((e) => resolve(e.exitCode)));
  assert.equal(code, 0);
  assert.match(out, /pty-ok/);
});
