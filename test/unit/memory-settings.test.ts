/**
 * Which of serve's V8 memory flags a re-execution adds (src/server/memory-settings.ts): each one
 * unless a value for it was already given, in either of V8's spellings, on node's command line or in
 * NODE_OPTIONS.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { missingV8Flags, V8_MEMORY_FLAGS } from '../../src/server/memory-settings.js';

test('nothing given: every flag is added', () => {
  assert.deepEqual(missingV8Flags([]), [...V8_MEMORY_FLAGS]);
  assert.deepEqual(missingV8Flags(['--import', 'tsx', '']), [...V8_MEMORY_FLAGS]);
});

test('a value already given is kept, whatever it is', () => {
  assert.deepEqual(missingV8Flags(['--max-semi-space-size=32']), ['--initial-old-space-size=64']);
  assert.deepEqual(missingV8Flags(['--stack-trace-limit=50 --max-semi-space-size=1']), [
    '--initial-old-space-size=64',
  ]);
  assert.deepEqual(missingV8Flags(['--initial_old_space_size=128']), ['--max-semi-space-size=2']);
  assert.deepEqual(missingV8Flags(['--max_semi_space_size=4', '--initial-old-space-size=16']), []);
});

test('an unrelated flag with a similar name does not count', () => {
  assert.deepEqual(missingV8Flags(['--max-old-space-size=512', '--min-semi-space-size=1']), [
    ...V8_MEMORY_FLAGS,
  ]);
});
