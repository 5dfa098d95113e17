/**
 * On Node 24, http-proxy's util._extend warning (DEP0060) is dropped and nothing else is: a
 * process that loads the filter and then triggers DEP0060 and another deprecation prints only the other.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runProcess } from '../support/kubectl.js';
import { nodePath } from '../support/node.js';
import { REPO } from '../support/processes.js';

const SCRIPT = `
await import(${JSON.stringify(join(REPO, 'src/server/http-proxy-deprecation.ts'))});
const util = await import('node:util');
util._extend({}, { a: 1 });
process.emitWarning('another deprecation', { type: 'DeprecationWarning', code: 'DEP9999' });
// outside the single executable, url.parse's warning is not http-proxy's: it stays
process.emitWarning('url.parse', 'DeprecationWarning', 'DEP0169');
process.emitWarning('a plain warning');
`;

test('node 24: DEP0060 is silenced, other warnings are not', async () => {
  const r = await runProcess(
    nodePath('24'),
    ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', SCRIPT],
    { env: { PATH: process.env.PATH }, cwd: REPO, timeoutMs: 30_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /DEP0060|util\._extend/);
  assert.match(r.stderr, /\[DEP9999\] DeprecationWarning: another deprecation/);
  assert.match(r.stderr, /Warning: a plain warning/);
  assert.match(r.stderr, /\[DEP0169\] DeprecationWarning: url\.parse/);
});

test('node 24: without the filter the same script does print DEP0060 (the warning is real)', async () => {
  const r = await runProcess(
    nodePath('24'),
    ['--input-type=module', '-e', "(await import('node:util'))._extend({}, {});"],
    { env: { PATH: process.env.PATH }, timeoutMs: 30_000 },
  );
  assert.match(r.stderr, /\[DEP0060\] DeprecationWarning/);
});
