/**
 * The start-up check of what kubeshim assumes about `ws` (src/channel/ws-internals.ts): it passes
 * with the installed `ws`, and a broken assumption stops it with one line naming the `ws` version.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { WebSocketServer } from 'ws';
import wsPackage from 'ws/package.json' with { type: 'json' };
import { createWebSocketServer } from '../../src/channel/ws-accept.js';
import {
  checkWsAssumptions,
  verifySenderIdle,
  verifyWebSocketInternals,
  WsAssumptionError,
} from '../../src/channel/ws-internals.js';

/** One line, naming the installed ws version and the assumption. */
function brokenAssumption(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof WsAssumptionError, String(err));
    assert.ok(!err.message.includes('\n'), 'one line');
    assert.ok(err.message.startsWith(`ws ${wsPackage.version} `), err.message);
    assert.match(err.message, pattern);
    return true;
  };
}

/** What an accepted ws 8 WebSocket has of what we read. */
function fakeWebSocket(socket: PassThrough): Record<string, unknown> {
  return { _socket: socket, _isServer: true, _extensions: {}, extensions: '', _sender: { _queue: [] } };
}

test('the installed ws passes: as the shim and the emulator create their server, and checked again', () => {
  const wss = createWebSocketServer(['Via: test']);
  assert.doesNotThrow(() => checkWsAssumptions(wss));
});

test('a WebSocket missing a private field we read fails the check, naming the field', () => {
  const socket = new PassThrough();
  assert.doesNotThrow(() => verifyWebSocketInternals(fakeWebSocket(socket), socket, true));
  for (const [field, pattern] of [
    ['_socket', /_socket/],
    ['_isServer', /_isServer/],
    ['_extensions', /_extensions/],
    ['_sender', /_sender\._queue/],
  ] as const) {
    const ws = fakeWebSocket(socket);
    delete ws[field];
    assert.throws(() => verifyWebSocketInternals(ws, socket, true), brokenAssumption(pattern), field);
  }
  const renamed = { ...fakeWebSocket(socket), _sender: { queue: [] } };
  assert.throws(() => verifyWebSocketInternals(renamed, socket, true), brokenAssumption(/_sender\._queue/));
});

test('permessage-deflate negotiated fails the check', () => {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: true });
  assert.throws(() => checkWsAssumptions(wss), brokenAssumption(/permessage-deflate/));
});

test('a sender that holds a frame back, leaves the socket corked or writes another frame fails the check', () => {
  const frame = Buffer.from([0x82, 0x01, 0x2a]);
  const socket = new PassThrough();
  assert.doesNotThrow(() => verifySenderIdle(fakeWebSocket(socket), socket, frame, frame));
  const queued = { ...fakeWebSocket(socket), _sender: { _queue: [[]] } };
  assert.throws(() => verifySenderIdle(queued, socket, frame, frame), brokenAssumption(/holds nothing back/));
  assert.throws(
    () => verifySenderIdle(fakeWebSocket(socket), socket, Buffer.alloc(0), frame),
    brokenAssumption(/whole and at once/),
  );
  socket.cork();
  assert.throws(
    () => verifySenderIdle(fakeWebSocket(socket), socket, frame, frame),
    brokenAssumption(/uncorked/),
  );
});
