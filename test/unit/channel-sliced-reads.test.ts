/**
 * A translated session reads its upstream's frames itself (ChannelFrameReader, strict; ws-internals
 * takeOverReads): payloads come as slices of the reads, never joined; every frame is checked as ws
 * would check it; control frames go back to ws, which answers them. Here against real `ws` peers
 * on loopback, and frame by frame against the reader alone.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { ChannelFrameReader } from '../../src/channel/frame-reader.js';
import { MessageGather } from '../../src/channel/message-gather.js';
import { wsSocket } from '../../src/channel/ws-internals.js';
import { RC_V5, remoteCommandVersion } from '../../src/k8s/protocols.js';
import { createLogger } from '../../src/observe/logger.js';
import { WsEndpoint } from '../../src/remotecommand/ws-endpoint.js';
import { WsExecutor } from '../../src/remotecommand/ws-executor.js';

const V5 = remoteCommandVersion(RC_V5)!;
const log = createLogger({ level: 'silent', pretty: false });

/** An unmasked frame (server to client): FIN, opcode, payload. */
function frame(opcode: number, payload: Buffer, fin = true, rsv = 0): Buffer {
  const len = payload.length;
  const head =
    len < 126
      ? Buffer.from([(fin ? 0x80 : 0) | rsv | opcode, len])
      : len < 65536
        ? Buffer.from([(fin ? 0x80 : 0) | rsv | opcode, 126, len >> 8, len & 0xff])
        : Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | rsv | opcode, 127, 0, 0, 0, 0]), u32(len)]);
  return Buffer.concat([head, payload]);
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** The reader alone, fed `bytes` in pieces of `step`: what it hands on and what it refuses. */
function readStrict(bytes: Buffer, step: number) {
  const pieces: { channel: number; data: Buffer }[] = [];
  const controls: Buffer[] = [];
  let error: string | undefined;
  const reader = new ChannelFrameReader(
    (p) => pieces.push({ channel: p.channel, data: Buffer.from(p.data) }),
    (why) => {
      error = why;
    },
    { masked: false, onControl: (f) => controls.push(Buffer.from(f)) },
  );
  for (let at = 0; at < bytes.length; at += step) reader.write(bytes.subarray(at, at + step));
  return { pieces, controls, error };
}

test('strict: payloads by channel across any split, control frames whole in order, nothing after close', () => {
  const big = Buffer.alloc(70_000, 7);
  const ping = frame(0x9, Buffer.from('p1'));
  const bytes = Buffer.concat([
    frame(0x2, Buffer.concat([Buffer.from([1]), Buffer.from('hello')])),
    frame(0x2, Buffer.from([2, 0x41]), false),
    ping,
    frame(0x0, Buffer.from('BC')),
    frame(0x2, Buffer.concat([Buffer.from([1]), big])),
    frame(0x2, Buffer.from([1])), // the empty established marker: nothing handed on
    frame(0x8, Buffer.from([0x03, 0xe8])),
    frame(0x2, Buffer.from([1, 0x58])), // after the close frame: dropped
  ]);
  for (const step of [1, 3, 7, 1000, bytes.length]) {
    const r = readStrict(bytes, step);
    assert.equal(r.error, undefined);
    const byChannel = (c: number) =>
      Buffer.concat(r.pieces.filter((p) => p.channel === c).map((p) => p.data));
    assert.equal(byChannel(1).length, 5 + big.length, `step ${step}`);
    assert.equal(byChannel(1).subarray(0, 5).toString(), 'hello');
    assert.equal(byChannel(2).toString(), 'ABC');
    assert.deepEqual(r.controls, [ping, frame(0x8, Buffer.from([0x03, 0xe8]))]);
  }
});

test('strict: every frame ws would refuse is refused, naming what is wrong', () => {
  const cases: [Buffer, RegExp][] = [
    [frame(0x2, Buffer.from([1, 2]), true, 0x40), /reserved bit/],
    [Buffer.from([0x82, 0x82, 1, 2, 3, 4, 5, 6]), /masked frame from the server/],
    [frame(0x0, Buffer.from([1])), /continuation frame outside a message/],
    [
      Buffer.concat([frame(0x2, Buffer.from([1]), false), frame(0x2, Buffer.from([1]))]),
      /new message inside/,
    ],
    [frame(0x1, Buffer.from('1aGk=')), /text message on a binary/],
    [frame(0x3, Buffer.from([1])), /invalid opcode 3/],
    [frame(0xb, Buffer.from([1])), /invalid opcode 11/],
    [frame(0x9, Buffer.from('x'), false), /fragmented control frame/],
    [Buffer.from([0x89, 126, 0, 126, ...Buffer.alloc(126)]), /control frame of 126 bytes/],
    [Buffer.from([0x82, 127, 0, 0, 0, 0, 0x02, 0, 0, 1]), /a frame of 33554433 bytes/],
    [
      Buffer.concat([frame(0x2, Buffer.alloc(20 << 20), false), frame(0x0, Buffer.alloc(13 << 20))]),
      /a message of over 33554432 bytes/,
    ],
  ];
  for (const [bytes, why] of cases) {
    const r = readStrict(bytes, 5);
    assert.match(r.error ?? 'accepted', why, bytes.subarray(0, 12).toString('hex'));
  }
});

/** A ws server on loopback whose one connection is handed to `serve`, and a dialed client. */
async function pair(): Promise<{ server: WebSocket; client: WebSocket; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await once(wss, 'listening');
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, [RC_V5], {
    perMessageDeflate: false,
  });
  const [server] = (await once(wss, 'connection')) as [WebSocket];
  await once(client, 'open');
  client.pause(); // as dialWebSocket hands it over
  return {
    server,
    client,
    close: () =>
      new Promise((resolve) => {
        client.terminate();
        wss.close(() => resolve());
      }),
  };
}

test('the executor reads an upstream through sliced reads: output, status, pings answered, close', async () => {
  const p = await pair();
  try {
    const ended = new Promise<[Buffer, string | undefined]>((resolve) => {
      const executor = new WsExecutor(p.client, {
        version: V5,
        wants: { stdin: true, stdout: true, stderr: true, tty: false },
        log,
        onEnd: (status, failure) => resolve([status, failure]),
        onProtocolError: (m) => resolve([Buffer.alloc(0), `protocol: ${m}`]),
      });
      const out: Buffer[] = [];
      executor.stdout!.read(
        (c) => out.push(Buffer.from(c)),
        () => {},
      );
      executor.stderr!.read(
        () => {},
        () => {},
      );
      executor.start();
      (p as unknown as { out: Buffer[] }).out = out;
    });
    // ws's own reader is gone from the socket: ours is the one listener
    assert.equal(wsSocket(p.client).listeners('data').length, 1);
    assert.notEqual(wsSocket(p.client).listeners('data')[0]!.name, 'socketOnData');
    const pong = once(p.server, 'pong');
    p.server.ping(Buffer.from('are you there'));
    assert.equal(String((await pong)[0]), 'are you there');
    const big = Buffer.alloc(300_000, 'x');
    p.server.send(Buffer.concat([Buffer.from([1]), big]));
    p.server.send(Buffer.from([1, 0x21]));
    p.server.send(Buffer.from([3, ...Buffer.from('{"status":"Success"}')]));
    p.server.close(1000);
    const [status, failure] = await ended;
    assert.equal(failure, undefined);
    assert.equal(status.toString(), '{"status":"Success"}');
    const out = Buffer.concat((p as unknown as { out: Buffer[] }).out);
    assert.equal(out.length, big.length + 1);
    assert.equal(out.at(-1), 0x21);
  } finally {
    await p.close();
  }
});

test('an upstream frame that breaks the protocol ends the session as a protocol error', async () => {
  const p = await pair();
  try {
    const ended = new Promise<string | undefined>((resolve) => {
      const executor = new WsExecutor(p.client, {
        version: V5,
        wants: { stdin: true, stdout: true, stderr: false, tty: false },
        log,
        onEnd: (_s, failure) => resolve(failure ?? 'ended'),
        onProtocolError: (m) => resolve(`protocol: ${m}`),
      });
      executor.stdout!.read(
        () => {},
        () => {},
      );
      executor.start();
    });
    wsSocket(p.server).write(Buffer.from([0xc2, 0x02, 0x01, 0x41])); // RSV1 set, no extension
    assert.match((await ended) ?? '', /^protocol: a frame with a reserved bit set/);
  } finally {
    await p.close();
  }
});

/** A masked frame (client to server) with `key`. */
function maskedFrame(opcode: number, payload: Buffer, key: Buffer, fin = true): Buffer {
  const plain = frame(opcode, payload, fin);
  const headLen = plain.length - payload.length;
  const out = Buffer.concat([plain.subarray(0, headLen), key, payload]);
  out[1] = out[1]! | 0x80;
  for (let i = 0; i < payload.length; i++) out[headLen + 4 + i] = payload[i]! ^ key[i & 3]!;
  return out;
}

test('strict, masked: payloads unmasked where they lie across any split, text read as binary, message ends told', () => {
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const big = Buffer.alloc(70_001);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  const ping = maskedFrame(0x9, Buffer.from('p1'), key);
  const resize = Buffer.from('\x04{"Width":80,"Height":24}', 'latin1');
  const bytes = Buffer.concat([
    maskedFrame(0x2, Buffer.concat([Buffer.from([0]), big]), key),
    maskedFrame(0x2, resize.subarray(0, 9), key, false),
    ping,
    maskedFrame(0x0, resize.subarray(9), key),
    maskedFrame(0x1, Buffer.from('\x00typed as text', 'latin1'), key),
    maskedFrame(0x2, Buffer.from([255, 0]), key),
    maskedFrame(0x2, Buffer.from([4]), key), // a message with only its channel byte still ends
  ]);
  for (const step of [1, 3, 7, 1000, bytes.length]) {
    const pieces: { channel: number; data: Buffer }[] = [];
    const ends: number[] = [];
    const controls: Buffer[] = [];
    let error: string | undefined;
    const reader = new ChannelFrameReader(
      (p) => {
        assert.equal(p.mask, undefined);
        pieces.push({ channel: p.channel, data: Buffer.from(p.data) });
      },
      (why) => {
        error = why;
      },
      {
        masked: true,
        textAsBinary: true,
        onControl: (f) => controls.push(Buffer.from(f)),
        onMessageEnd: (c) => ends.push(c),
      },
    );
    const copy = Buffer.from(bytes); // unmasked in place: the reader's input is its own
    for (let at = 0; at < copy.length; at += step) reader.write(copy.subarray(at, at + step));
    assert.equal(error, undefined, `step ${step}`);
    const byChannel = (c: number) => Buffer.concat(pieces.filter((p) => p.channel === c).map((p) => p.data));
    assert.ok(byChannel(0).subarray(0, big.length).equals(big), `step ${step}`);
    assert.equal(byChannel(0).subarray(big.length).toString(), 'typed as text');
    assert.equal(byChannel(4).toString(), resize.subarray(1).toString());
    assert.deepEqual(byChannel(255), Buffer.from([0]));
    assert.deepEqual(ends, [0, 4, 0, 255, 4], `step ${step}`);
    assert.deepEqual(controls, [ping], 'control frames go on whole and still masked');
  }
});

test('strict, masked: an unmasked frame from the client and text without textAsBinary are refused', () => {
  const errors: [string, number][] = [];
  const read = (bytes: Buffer, textAsBinary: boolean) =>
    new ChannelFrameReader(
      () => {},
      (why, code) => errors.push([why, code]),
      { masked: true, textAsBinary, onControl: () => {} },
    ).write(bytes);
  read(frame(0x2, Buffer.from([0, 1])), true);
  read(maskedFrame(0x1, Buffer.from('\x00x'), Buffer.from([1, 2, 3, 4])), false);
  read(Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0x02, 0, 0, 1, 1, 2, 3, 4]), true);
  assert.deepEqual(errors, [
    ['an unmasked frame from the client', 1002],
    ['unexpected text message on a binary channel protocol', 1003],
    ['max payload size exceeded: a frame of 33554433 bytes', 1009],
  ]);
});

/** The endpoint on the server side of `p`, its stdin and resize as they arrive, and its end. */
function endpointOn(server: WebSocket) {
  const got = { stdin: [] as Buffer[], resize: [] as string[], stdinEnded: false };
  const ended = new Promise<{ code: number; reason: string; protocolError?: string }>((resolve) => {
    let protocolError: string | undefined;
    const endpoint = new WsEndpoint(server, {
      version: V5,
      wants: { stdin: true, stdout: true, stderr: false, tty: true },
      dropUndecodable: false,
      onProtocolError: (err) => {
        protocolError = `${err.closeCode} ${err.message}`;
      },
      onClose: (code, reason) => resolve({ code, reason, protocolError }),
    });
    endpoint.stdin!.read(
      (c) => got.stdin.push(Buffer.from(c)),
      () => {
        got.stdinEnded = true;
      },
    );
    endpoint.resize.read(
      (c) => got.resize.push(c.toString()),
      () => {},
    );
    endpoint.start();
  });
  return { got, ended };
}

test('the endpoint reads a client through sliced reads: stdin, whole resizes, CLOSE, pings answered', async () => {
  const p = await pair();
  try {
    p.server.pause(); // as acceptWebSocket hands it over
    const { got, ended } = endpointOn(p.server);
    assert.equal(wsSocket(p.server).listeners('data').length, 1);
    assert.notEqual(wsSocket(p.server).listeners('data')[0]!.name, 'socketOnData');
    p.client.resume();
    const pong = once(p.client, 'pong');
    p.client.ping(Buffer.from('still there?'));
    assert.equal(String((await pong)[0]), 'still there?');
    const big = Buffer.alloc(300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff;
    p.client.send(Buffer.concat([Buffer.from([0]), big]));
    // a resize frame written a byte at a time still arrives as one message
    const raw = wsSocket(p.client);
    const resize = maskedFrame(
      0x2,
      Buffer.from('\x04{"Width":120,"Height":40}', 'latin1'),
      Buffer.from([9, 8, 7, 6]),
    );
    for (const byte of resize) {
      raw.write(Buffer.from([byte]));
      await new Promise((r) => setImmediate(r));
    }
    // and one cut into a frame per byte
    const size = Buffer.from('\x04{"Width":100,"Height":30}', 'latin1');
    const fragments = [...size].map((byte, i) =>
      maskedFrame(i === 0 ? 0x2 : 0x0, Buffer.from([byte]), Buffer.from([i, 1, 2, 3]), i === size.length - 1),
    );
    raw.write(Buffer.concat(fragments));
    p.client.send(Buffer.from([255, 0]));
    p.client.send(Buffer.from([0, 0x58])); // after stdin's CLOSE: dropped
    p.client.close(1000);
    const end = await ended;
    assert.equal(end.code, 1000);
    assert.equal(end.protocolError, undefined);
    assert.ok(Buffer.concat(got.stdin).equals(big));
    assert.equal(got.stdinEnded, true);
    assert.deepEqual(got.resize, ['{"Width":120,"Height":40}', '{"Width":100,"Height":30}']);
  } finally {
    await p.close();
  }
});

test('a client frame that breaks the protocol, or a resize message too big, closes with its code', async () => {
  for (const [bytes, code, why] of [
    [frame(0x2, Buffer.from([0, 0x41])), 1002, /unmasked frame from the client/],
    [
      maskedFrame(0x2, Buffer.alloc(70_000, 4), Buffer.from([1, 2, 3, 4])),
      1009,
      /channel 4 message of over 65536/,
    ],
  ] as [Buffer, number, RegExp][]) {
    const p = await pair();
    try {
      p.server.pause();
      const { ended } = endpointOn(p.server);
      p.client.resume();
      const closed = once(p.client, 'close');
      wsSocket(p.client).write(bytes);
      const [closeCode] = (await closed) as [number];
      assert.equal(closeCode, code);
      const end = await ended;
      assert.match(end.protocolError ?? '', why);
      assert.ok(end.protocolError?.startsWith(`${code} `));
    } finally {
      await p.close();
    }
  }
});

test('a small message gathered whole: one piece kept as it is, many joined, the limit held', () => {
  const gather = new MessageGather(64 * 1024);
  const one = Buffer.from('{"Width":80,"Height":24}');
  assert.equal(gather.add(one), true);
  assert.equal(gather.take(), one, 'a message in one piece is not copied');
  assert.deepEqual(gather.take(), Buffer.alloc(0), 'then it starts afresh');
  const text = '{"Width":132,"Height":43}'.repeat(100);
  for (const ch of Buffer.from(text)) assert.equal(gather.add(Buffer.from([ch])), true);
  assert.equal(gather.take().toString(), text);
  for (let i = 0; i < 64; i++) assert.equal(gather.add(Buffer.alloc(1024, i)), true);
  assert.equal(gather.add(Buffer.from([1])), false, 'one byte over the limit');
  assert.deepEqual(gather.take(), Buffer.alloc(0), 'what was gathered is dropped');
});
