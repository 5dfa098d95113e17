/**
 * replacePrivately (src/io/private-file.ts): a file that will hold a token is never readable by
 * others, not even for a moment, and a reader that opened the old file never sees the new text.
 */
import assert from 'node:assert/strict';
import {
  lstatSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { replacePrivately } from '../../src/io/private-file.js';

const dir = mkdtempSync(join(tmpdir(), 'kubeshim-private-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('an existing 0644 file becomes 0600 with the new text; a descriptor opened before sees the old text', () => {
  const file = join(dir, 'config');
  writeFileSync(file, 'old\n', { mode: 0o644 });
  const earlier = openSync(file, 'r');
  replacePrivately(file, 'token: secret\n');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(readFileSync(file, 'utf8'), 'token: secret\n');
  const seen = Buffer.alloc(64);
  assert.equal(seen.subarray(0, readSync(earlier, seen, 0, 64, 0)).toString(), 'old\n');
});

test("a symlink's target is replaced, the link is kept", () => {
  const target = join(dir, 'real');
  const link = join(dir, 'link');
  writeFileSync(target, 'old\n', { mode: 0o644 });
  symlinkSync(target, link);
  replacePrivately(link, 'new\n');
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.equal(readFileSync(target, 'utf8'), 'new\n');
  assert.equal(statSync(target).mode & 0o777, 0o600);
});
