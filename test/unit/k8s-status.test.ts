import assert from 'node:assert/strict';
import { test } from 'node:test';
import { negotiate, splitProtocolHeader } from '../../src/k8s/protocols.js';
import {
  decodeStatus,
  encodeStatus,
  exitCodeStatus,
  internalErrorStatus,
  SUCCESS_STATUS_JSON,
  successStatus,
} from '../../src/k8s/status.js';

test('success status is byte-exact what servers write', () => {
  assert.equal(encodeStatus(successStatus()).toString(), SUCCESS_STATUS_JSON);
});

test('exit code status decodes the way kubectl does', () => {
  assert.deepEqual(decodeStatus(encodeStatus(exitCodeStatus(3, ['sh', '-c', 'exit 3']))), {
    kind: 'exit',
    code: 3,
  });
  assert.equal(
    decodeStatus(
      '{"metadata":{},"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"256"}]}}',
    ).kind,
    'invalid',
  );
  assert.equal(decodeStatus('not json').kind, 'invalid');
  const f = decodeStatus(encodeStatus(internalErrorStatus('boom')));
  assert.equal(f.kind, 'failure');
  assert.equal(f.kind === 'failure' && f.message, 'Internal error occurred: boom');
});

test('protocol headers split on lines and commas; first client protocol wins', () => {
  assert.deepEqual(splitProtocolHeader(['v4.channel.k8s.io, v3.channel.k8s.io', ' channel.k8s.io ']), [
    'v4.channel.k8s.io',
    'v3.channel.k8s.io',
    'channel.k8s.io',
  ]);
  assert.equal(
    negotiate(['v5.channel.k8s.io', 'v4.channel.k8s.io'], ['v4.channel.k8s.io', 'v3.channel.k8s.io']),
    'v4.channel.k8s.io',
  );
  assert.equal(negotiate(['x'], ['y']), undefined);
});
