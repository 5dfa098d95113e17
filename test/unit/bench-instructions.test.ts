/** The bench's instruction counter reads perf stat's CSV lines as perf writes them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { instructionCount } from '../../bench/lib/instructions.js';

test('perf stat CSV: a count is read, an uncountable or missing counter is none', () => {
  assert.equal(
    instructionCount('4211837559,,instructions,2003948816,100.00,1.31,insn per cycle\n'),
    4211837559,
  );
  assert.equal(instructionCount('# started\n\n98765,,instructions:u,1000,100.00,,\n'), 98765);
  // what a virtual machine without a counter prints (this one among them)
  assert.equal(instructionCount('<not supported>,,instructions,0,100.00,,\n'), undefined);
  assert.equal(instructionCount('<not counted>,,instructions,0,0.00,,\n'), undefined);
  assert.equal(instructionCount('2.20,msec,task-clock,2201857,100.00,0.291,CPUs utilized\n'), undefined);
  assert.equal(instructionCount(''), undefined);
});
