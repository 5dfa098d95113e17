/**
 * `kubeshim recordings` against hostile files in the recordings directory, as the real CLI process:
 * client-chosen fields with terminal escapes, FIFOs and directories named *.cast, symlinks out of
 * the directory, paths out of it, a huge sparse file, a huge line, malformed headers and identities.
 * The list shows what is readable and says on one stderr line what it skipped; every failure is one
 * line on stderr naming the file, exit 1, no stack, and never quotes the file's content.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RunResult } from '../support/kubectl.js';
import { runCli } from '../support/processes.js';

const TIMEOUT = 20_000;
let work: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kubeshim-rec-hostile-'));
  env = { PATH: process.env.PATH, HOME: join(work, 'home') };
});
after(() => rm(work, { recursive: true, force: true }));

const recordings = (args: string[]) => runCli(['recordings', ...args], env, TIMEOUT);

function header(sessionId: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    version: 2,
    width: 80,
    height: 24,
    timestamp: 1796549436,
    kubeshim: {
      sessionId,
      started: '2026-12-06T09:30:36.365Z',
      subresource: 'exec',
      namespace: 'default',
      pod: 'demo',
      command: ['id'],
      identity: { via: 'listener-token', name: 'ops', address: '127.0.0.1' },
      ...extra,
    },
  });
}

const castName = (n: number, id: string) =>
  `2026-12-06T09-30-${String(n).padStart(2, '0')}.000Z_default_demo_${id}.cast`;

async function newDir(name: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir);
  return dir;
}

async function good(
  dir: string,
  n: number,
  id: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const file = join(dir, castName(n, id));
  await writeFile(
    file,
    `${header(id, extra)}\n[0.5, "o", "hello from ${id}\\r\\n"]\n[0.6, "o", "\\r\\n[kubeshim: exit code 0]\\r\\n"]\n`,
  );
  return file;
}

/** The whole of stderr is one `kubeshim recordings:` line, without a stack. */
function oneLineError(r: RunResult, text: RegExp): void {
  assert.equal(r.code, 1, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^kubeshim recordings: [^\n]+\n$/, `one line: ${JSON.stringify(r.stderr)}`);
  assert.match(r.stderr, text);
  assert.doesNotMatch(r.stderr, /\n\s+at |node:internal|Error:/, 'no stack, no raw error');
}

const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/;

describe('kubeshim recordings: client-chosen fields in the table', () => {
  let dir: string;
  before(async () => {
    dir = await newDir('escapes');
    await good(dir, 1, 'plain');
    await good(dir, 2, 'esc', {
      pod: 'demo\u001b]0;pwned\u0007\u001b[2J',
      container: 'c\u009b31m',
      command: ['\u001b[1A\u001b[2Kfake line\u202e'],
      identity: { via: 'listener-token', name: '\u001b[8mroot', address: '127.0.0.1' },
    });
  });

  test('control characters are written as escapes, the rest of the table unchanged', async () => {
    const r = await recordings(['--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const text = r.stdout.toString();
    assert.doesNotMatch(text, CONTROL, JSON.stringify(text));
    assert.match(text, /^STARTED +POD +WHAT +IDENTITY +ENDED +DURATION +SESSION$/m);
    assert.match(text, /default\/demo +exec id +token:ops +exit code 0 +0\.6s +plain$/m);
    assert.ok(text.includes('default/demo\\x1b]0;pwned\\x07\\x1b[2J:c\\x9b31m'), text);
    assert.ok(text.includes('exec \\x1b[1A\\x1b[2Kfake line\\u202e'), text);
    assert.ok(text.includes('token:\\x1b[8mroot'), text);
    assert.equal(text.split('\n').length, 4, 'a header, two rows, the last newline');
  });

  test('--output json and show keep the data as it was', async () => {
    const json = await recordings(['--dir', dir, '--output', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const entries = JSON.parse(json.stdout.toString()) as { sessionId: string; pod: string }[];
    assert.equal(entries.find((e) => e.sessionId === 'esc')?.pod, 'demo\u001b]0;pwned\u0007\u001b[2J');
    const shown = await recordings(['show', 'plain', '--dir', dir]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout.toString(), 'hello from plain\r\n\r\n[kubeshim: exit code 0]\r\n');
  });
});

describe('kubeshim recordings: malformed files never break the list', () => {
  let dir: string;
  before(async () => {
    dir = await newDir('malformed');
    await good(dir, 1, 'good');
    await good(dir, 2, 'oddvia', { identity: { via: 'x' } });
    await writeFile(join(dir, castName(3, 'nullhdr')), 'null\n[0.1,"o","x"]\n');
    await writeFile(join(dir, castName(4, 'nots')), '{"version":2,"kubeshim":{"sessionId":"nots"}}\n');
    await writeFile(join(dir, castName(5, 'notjson')), 'root:x:0:0:SECRETCONTENT\n');
  });

  test('the readable ones are listed; one stderr line names the skipped', async () => {
    const r = await recordings(['--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout.toString();
    assert.match(text, /default\/demo +exec id +token:ops +exit code 0 +0\.6s +good$/m);
    assert.match(text, /default\/demo +exec id +\? +exit code 0 +0\.6s +oddvia$/m);
    assert.equal(text.split('\n').length, 4);
    assert.match(
      r.stderr,
      /^kubeshim recordings: skipped 3 \*\.cast in [^\n]+: 3 not recordings \([^\n]*\)\n$/,
    );
    for (const id of ['nullhdr', 'nots', 'notjson'])
      assert.ok(r.stderr.includes(castName(0, id).slice(24)), id);
    assert.doesNotMatch(r.stderr, /SECRETCONTENT/);
  });

  test('show: a line that is not asciicast is named by number, not quoted', async () => {
    oneLineError(
      await recordings(['show', 'notjson', '--dir', dir]),
      /_notjson\.cast is not an asciicast v2 recording/,
    );
    await writeFile(join(dir, 'other.cast'), `${header('other')}\n[0.1, "o", "ok\\n"]\nSECRETCONTENT\n`);
    const r = await recordings(['show', 'other.cast', '--dir', dir]);
    oneLineError(r, /other\.cast line 3 is not an asciicast line/);
    assert.doesNotMatch(r.stderr, /SECRETCONTENT/);
    assert.equal(r.stdout.toString(), 'ok\n');
  });
});

describe('kubeshim recordings: only regular files in DIR are read', () => {
  let dir: string;
  let outside: string;
  before(async () => {
    dir = await newDir('special');
    await good(dir, 1, 'good');
    execFileSync('mkfifo', [join(dir, castName(2, 'fifo'))]);
    await mkdir(join(dir, castName(3, 'dir')));
    const out = await newDir('outside');
    outside = join(out, 'secret.cast');
    await writeFile(outside, `${header('outside')}\n[0.1, "o", "SECRET OUTSIDE DIR\\n"]\n`);
    await symlink(outside, join(dir, castName(4, 'link')));
  });

  test('the list skips a FIFO, a directory and a symlink, and says so', async () => {
    const r = await recordings(['--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), / good$/m);
    assert.doesNotMatch(r.stdout.toString(), /fifo|outside|link/);
    assert.match(
      r.stderr,
      /^kubeshim recordings: skipped 3 \*\.cast in [^\n]+: 3 not regular files \([^\n]+\)\n$/,
    );
    const json = await recordings(['--dir', dir, '--output', 'json']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal((JSON.parse(json.stdout.toString()) as unknown[]).length, 1);
  });

  test('show refuses a FIFO, a directory and a symlink', async () => {
    oneLineError(
      await recordings(['show', 'fifo', '--dir', dir]),
      /_fifo\.cast is not a regular file \(a FIFO\)/,
    );
    oneLineError(
      await recordings(['show', join(dir, castName(2, 'fifo'))]),
      /is not a regular file \(a FIFO\)/,
    );
    oneLineError(
      await recordings(['show', 'dir', '--dir', dir]),
      /_dir\.cast is not a regular file \(a directory\)/,
    );
    const link = await recordings(['show', 'link', '--dir', dir]);
    oneLineError(link, /_link\.cast is a symlink/);
    assert.equal(link.stdout.toString(), '');
  });

  test('show --dir: a path must be in DIR', async () => {
    for (const what of [
      outside,
      '../outside/secret.cast',
      '/etc/passwd',
      join(dir, '..', 'outside', 'secret.cast'),
    ]) {
      const r = await recordings(['show', what, '--dir', dir]);
      oneLineError(r, /is not in --dir/);
      assert.equal(r.stdout.toString(), '', what);
      assert.doesNotMatch(r.stderr, /SECRET|root:/);
    }
    const inside = await recordings(['show', join(dir, castName(1, 'good')), '--dir', dir]);
    assert.equal(inside.code, 0, inside.stderr);
    assert.match(inside.stdout.toString(), /^hello from good\r\n/);
  });
});

describe('kubeshim recordings show: huge files', () => {
  let dir: string;
  before(async () => {
    dir = await newDir('huge');
    const sparse = join(dir, castName(1, 'sparse'));
    await writeFile(sparse, '');
    await truncate(sparse, 2 * 1024 * 1024 * 1024);
    await writeFile(
      join(dir, castName(2, 'longline')),
      `${header('longline')}\n[0.1,"o","${'A'.repeat(20 * 1024 * 1024)}`,
    );
  });

  test('a 2 GB sparse file: line 1 is too long, one line, exit 1', async () => {
    oneLineError(
      await recordings(['show', 'sparse', '--dir', dir]),
      /_sparse\.cast line 1 is longer than 16 MiB/,
    );
  });

  test('a 20 MB line: its number, one line, exit 1', async () => {
    oneLineError(
      await recordings(['show', 'longline', '--dir', dir]),
      /_longline\.cast line 2 is longer than 16 MiB/,
    );
  });

  test('the list leaves the sparse file out and says so', async () => {
    const r = await recordings(['--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), / longline$/m);
    assert.match(r.stderr, /skipped 1 \*\.cast in [^\n]+: 1 not a recording \([^)]*_sparse\.cast\)\n$/);
  });
});
