/**
 * Hostile input through real shims over real sockets, with good sessions running alongside: raw
 * SPDY clients (garbage, a zlib bomb, a 16 MiB control frame, a million PINGs, mutated kubectl
 * sessions), WebSocket clients (mutated kubectl v5 messages, text on a binary protocol, a bad
 * CLOSE, a resize flood into a stalled upstream), tunnel clients (text, mutated kubectl tunnels),
 * malformed HTTP (bad request lines, oversized and endless heads, broken %-escapes) and a hostile
 * upstream. Each bad input closes only its own session, with a logged reason; the good sessions
 * keep echoing and the shims keep serving.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { constants, deflateSync } from 'node:zlib';
import fc from 'fast-check';
import WebSocket from 'ws';
import { CH_ERROR, CH_RESIZE, CH_STDIN, CH_STDOUT, encodeClose } from '../../src/channel/codec.js';
import { type Emulator, startEmulator } from '../../src/emulator/index.js';
import { decodeStatus, SUCCESS_STATUS_JSON } from '../../src/k8s/status.js';
import { FrameType } from '../../src/spdy/constants.js';
import { SPDY3_DICTIONARY } from '../../src/spdy/dictionary.js';
import { pingFrame } from '../../src/spdy/frame-writer.js';
import { serializeHeaderBlock } from '../../src/spdy/header-block.js';
import { dialWebSocket } from '../../src/upstream/dial.js';
import { mutated } from '../fixtures/mutate.js';
import { recordedSession, spdyBytes, wsDataMessages } from '../fixtures/sessions.js';
import {
  connectSpdyExec,
  connectWsExec,
  type SpdyExecClient,
  type WsExecClient,
} from '../support/exec-clients.js';
import { MiB, settledHeap } from '../support/memory.js';
import { startSpdyExecUpstream, startWsExecUpstream, type Upstream } from '../support/scripted-upstream.js';
import { startTestShim, type TestShim } from '../support/shim.js';
import { waitFor, withTimeout } from '../support/wait.js';

const EXEC = '/api/v1/namespaces/default/pods/p/exec?stdin=true&stdout=true&stderr=true';
const V5 = 'v5.channel.k8s.io';

let spdyUpstream: Upstream;
let wsUpstream: Upstream;
let emu: Emulator;
/** WebSocket clients → SPDY upstream (translated; the shim parses the upstream's SPDY). */
let wsShim: TestShim;
/** SPDY clients → WebSocket upstream (translated; the shim parses the client's SPDY). */
let spdyShim: TestShim;
/** Tunnel clients → the emulator over SPDY (unwrapped). */
let tunnelShim: TestShim;
let goodWs: WsExecClient;
let goodSpdy: SpdyExecClient;
const agent = new http.Agent();

before(async () => {
  spdyUpstream = await startSpdyExecUpstream(({ session, socket, streams, query }) => {
    const command = query.get('command');
    const stdout = streams.get('stdout')!;
    const error = streams.get('error')!;
    if (command === 'stall') {
      socket.pause(); // reads nothing more, ever
    } else if (command === 'garbage') {
      socket.write(Buffer.concat([Buffer.alloc(8), randomBytes(4096)])); // DATA on stream 0, then noise
    } else if (command === 'bomb') {
      const block = deflateSync(serializeHeaderBlock({ x: 'a'.repeat(32 * MiB) }), {
        dictionary: SPDY3_DICTIONARY,
        finishFlush: constants.Z_SYNC_FLUSH,
      });
      socket.write(controlFrame(FrameType.SYN_STREAM, Buffer.concat([u32(2, 0), Buffer.alloc(2), block])));
    } else {
      const stdin = streams.get('stdin');
      stdin?.on('data', (d: Buffer) => stdout.write(d));
      stdin?.on('end', () => {
        error.write(SUCCESS_STATUS_JSON);
        session.close();
      });
    }
  });
  wsUpstream = await startWsExecUpstream(({ ws }) => {
    ws.on('message', (data: Buffer) => {
      if (data[0] === CH_STDIN) ws.send(Buffer.concat([Buffer.from([CH_STDOUT]), data.subarray(1)]));
      else if (data[0] === 255) {
        ws.send(Buffer.concat([Buffer.from([CH_ERROR]), Buffer.from(SUCCESS_STATUS_JSON)]));
        ws.close(1000);
      }
    });
  });
  emu = await startEmulator({ generation: 'modern' });
  // short keepalives: a client that vanishes while held back is found by the next ping's write
  wsShim = await startTestShim(spdyUpstream.url, 'spdy', {
    handshakeTimeoutMs: 1000,
    keepalive: { intervalMs: 200, timeoutMs: 2000 },
  });
  spdyShim = await startTestShim(wsUpstream.url, 'websocket');
  tunnelShim = await startTestShim(emu.url, 'spdy');
  goodWs = await connectWsExec(`${wsUrl(wsShim)}${EXEC}&command=cat`, [V5]);
  goodSpdy = await connectSpdyExec(
    `${spdyShim.url}${EXEC}&command=cat`,
    ['v4.channel.k8s.io'],
    ['error', 'stdin', 'stdout', 'stderr'],
  );
});

after(async () => {
  goodWs?.ws.terminate();
  goodSpdy?.socket.destroy();
  for (const s of [wsShim, spdyShim, tunnelShim]) await s?.close();
  await spdyUpstream?.close();
  await wsUpstream?.close();
  await emu?.close();
  agent.destroy();
});

const wsUrl = (shim: TestShim) => shim.url.replace(/^http/, 'ws');

function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  for (const [i, v] of values.entries()) b.writeUInt32BE(v >>> 0, i * 4);
  return b;
}

function controlFrame(type: number, body: Buffer, declaredLength = body.length): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE((0x80030000 | type) >>> 0, 0);
  h.writeUInt32BE(declaredLength, 4);
  return Buffer.concat([h, body]);
}

let nonce = 0;
/** Both good sessions echo a fresh line right now. */
async function goodSessionsStillEcho(): Promise<void> {
  const line = `still here ${++nonce}\n`;
  const before = goodWs.text(CH_STDOUT).length;
  goodWs.send(CH_STDIN, line);
  const out: Buffer[] = [];
  const stdout = goodSpdy.streams.get('stdout')!;
  const onData = (d: Buffer) => out.push(d);
  stdout.on('data', onData);
  goodSpdy.streams.get('stdin')!.write(line);
  await waitFor(
    'the good WebSocket session to echo',
    () => goodWs.text(CH_STDOUT).slice(before) === line,
    3000,
  );
  await waitFor('the good SPDY session to echo', () => Buffer.concat(out).toString() === line, 3000);
  stdout.off('data', onData);
}

/**
 * Run one hostile case against `shim`: afterwards exactly `sessions` more session lines were logged
 * (each with a close reason), the shim is back to its good sessions, and the good sessions echo.
 */
async function isolated(
  shim: TestShim,
  sessions: number,
  hostile: () => Promise<void>,
): Promise<Record<string, unknown>[]> {
  const baseline = shim.sessions.size;
  const lines = shim.sessionLines().length;
  await hostile();
  await waitFor('the hostile sessions to end', () => shim.sessions.size === baseline, 3000);
  const added = shim.sessionLines().slice(lines);
  assert.equal(added.length, sessions, `session lines: ${JSON.stringify(added)}`);
  for (const l of added) assert.ok(typeof l['closeReason'] === 'string' && l['closeReason'] !== '');
  await goodSessionsStillEcho();
  return added;
}

interface RawConnection {
  socket: net.Socket;
  /** Everything received, head included. */
  received(): Buffer;
  closed: Promise<void>;
}

/** A raw connection that sends `head` and then `body` (which may arrive with the head). */
async function raw(shim: TestShim, head: string, body: Buffer = Buffer.alloc(0)): Promise<RawConnection> {
  const socket = net.connect(Number(new URL(shim.url).port), '127.0.0.1');
  socket.on('error', () => {});
  const parts: Buffer[] = [];
  socket.on('data', (d: Buffer) => parts.push(d));
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await once(socket, 'connect');
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  return { socket, received: () => Buffer.concat(parts), closed };
}

function spdyHead(query = '&command=cat'): string {
  return (
    `POST ${EXEC}${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n` +
    'X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n'
  );
}

describe('SPDY clients (the shim parses their frames)', () => {
  test('a malformed frame and garbage after the upgrade: a protocol error ends that session only', async () => {
    const [line] = await isolated(spdyShim, 1, async () => {
      const synOnStreamZero = controlFrame(FrameType.SYN_STREAM, Buffer.alloc(10));
      const c = await raw(spdyShim, spdyHead(), Buffer.concat([synOnStreamZero, randomBytes(1000)]));
      await withTimeout(c.closed, 2000, 'connection closed by the shim');
      assert.match(c.received().toString('latin1'), /^HTTP\/1\.1 101/);
    });
    assert.match(String(line!['closeReason']), /client connection failed/);
  });

  test('a zlib bomb in a SYN_STREAM is refused at the inflate cap', async () => {
    const bomb = deflateSync(serializeHeaderBlock({ streamtype: 'a'.repeat(64 * MiB) }), {
      dictionary: SPDY3_DICTIONARY,
      finishFlush: constants.Z_SYNC_FLUSH,
    });
    const before = await settledHeap();
    const [line] = await isolated(spdyShim, 1, async () => {
      const frame = controlFrame(FrameType.SYN_STREAM, Buffer.concat([u32(1, 0), Buffer.alloc(2), bomb]));
      const c = await raw(spdyShim, spdyHead(), frame);
      await withTimeout(c.closed, 2000, 'connection closed by the shim');
    });
    assert.match(String(line!['closeReason']), /inflates beyond/);
    assert.ok((await settledHeap()) - before < 16 * MiB);
  });

  test('a control frame declaring 16 MiB is refused from its header', async () => {
    const [line] = await isolated(spdyShim, 1, async () => {
      const c = await raw(
        spdyShim,
        spdyHead(),
        controlFrame(FrameType.SYN_STREAM, Buffer.alloc(0), 0xffffff),
      );
      await withTimeout(c.closed, 2000, 'connection closed by the shim');
    });
    assert.match(String(line!['closeReason']), /exceeds the limit/);
  });

  test('a million PINGs from a client that reads nothing: held back, memory bounded; it ends when the client does', async () => {
    const before = await settledHeap();
    await isolated(spdyShim, 1, async () => {
      const c = await raw(spdyShim, spdyHead());
      c.socket.pause();
      const batch = Buffer.concat(Array.from({ length: 10_000 }, () => pingFrame(1)));
      let sent = 0;
      const sending = (async () => {
        while (sent < 100 && !c.socket.destroyed) {
          sent++;
          if (!c.socket.write(batch)) await Promise.race([once(c.socket, 'drain'), c.closed]);
        }
      })();
      await new Promise((r) => setTimeout(r, 1000));
      assert.ok(sent < 100, `the flood is held back (${sent} of 100 batches sent)`);
      const grown = (await settledHeap()) - before;
      assert.ok(grown < 32 * MiB, `heap grew ${(grown / MiB).toFixed(1)} MiB`);
      c.socket.resume();
      await withTimeout(sending, 30_000, 'the rest of the flood');
      c.socket.end();
      // what the socket buffers still hold (some 300,000 PINGs) is answered first: under 1 s on
      // a quiet machine, under 2 s with both cores busy elsewhere
      await withTimeout(c.closed, 5000, 'connection closed after the client ended');
    });
  });

  test('mutated kubectl SPDY sessions: each ends within 2 s of its input, nothing escapes', async () => {
    const recorded = recordedSession('spdy-exec');
    const head = recorded.request.replace(/\r\nHost: [^\r]*/, '\r\nHost: 127.0.0.1');
    const bytes = spdyBytes(recorded, 'client');
    const runs = 25;
    await isolated(spdyShim, runs, async () => {
      await fc.assert(
        fc.asyncProperty(mutated(bytes), async (input) => {
          const c = await raw(spdyShim, head, input);
          c.socket.end();
          await withTimeout(c.closed, 2000, 'the session to end after its input');
        }),
        { numRuns: runs },
      );
    });
  });
});

describe('WebSocket clients (the shim decodes their channels)', () => {
  async function ws(query: string, protocol = V5): Promise<WebSocket> {
    const socket = new WebSocket(`${wsUrl(wsShim)}${EXEC}${query}`, [protocol], { perMessageDeflate: false });
    socket.on('error', () => {});
    await once(socket, 'open');
    return socket;
  }

  test('a CLOSE for channel 9 and a CLOSE of one byte: protocol errors, closed with 1002', async () => {
    for (const bad of [encodeClose(9), Buffer.from([255])]) {
      const [line] = await isolated(wsShim, 1, async () => {
        const c = await ws('&command=cat');
        const closed = once(c, 'close');
        c.send(bad);
        const [code] = await withTimeout(closed, 2000, 'close');
        assert.equal(code, 1002);
      });
      assert.match(String(line!['closeReason']), /client protocol error/);
    }
  });

  test('mutated kubectl v5 sessions: each ends within 2 s of the client leaving', async () => {
    const messages = wsDataMessages(recordedSession('websocket-v5-exec'), 'client');
    const runs = 25;
    await isolated(wsShim, runs, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.constantFrom(...messages.keys()), { maxLength: 6 }),
          fc.gen(),
          async (order, gen) => {
            const c = await ws('&command=cat');
            const closed = once(c, 'close');
            for (const i of order) c.send(gen(mutated, messages[i]!.data), { binary: true });
            c.close(1000);
            await withTimeout(closed, 2000, 'session end');
          },
        ),
        { numRuns: runs },
      );
    });
  });

  test('a resize flood into an upstream that reads nothing: the client is held back, memory bounded', async () => {
    const before = await settledHeap();
    await isolated(wsShim, 1, async () => {
      const c = await ws('&command=stall&tty=true');
      // resize payloads pass unread: 16 KiB ones fill the buffers on the way in few messages
      const resize = Buffer.from(
        `${String.fromCharCode(CH_RESIZE)}{"Width":200,"Height":60${' '.repeat(16 * 1024)}}`,
      );
      const cap = 256 * MiB;
      let sent = 0;
      let stalledSince = performance.now();
      while (sent * resize.length < cap && performance.now() - stalledSince < 500) {
        if (c.bufferedAmount > MiB) await new Promise((r) => setTimeout(r, 10));
        else {
          for (let i = 0; i < 16; i++, sent++) c.send(resize);
          stalledSince = performance.now();
        }
      }
      const grown = (await settledHeap()) - before;
      const accepted = sent * resize.length;
      assert.ok(accepted < cap, `the client was never held back (${accepted / MiB} MiB sent)`);
      assert.ok(
        grown < 32 * MiB,
        `heap grew ${(grown / MiB).toFixed(1)} MiB; ${(accepted / MiB).toFixed(0)} MiB sent`,
      );
      c.terminate();
    });
  });

  test('a hostile upstream (garbage, a zlib bomb): the client gets a Failure status, other sessions go on', async () => {
    for (const command of ['garbage', 'bomb']) {
      const [line] = await isolated(wsShim, 1, async () => {
        const c = await connectWsExec(`${wsUrl(wsShim)}${EXEC}&command=${command}`, [V5]);
        await withTimeout(c.done, 3000, 'session end');
        const status = decodeStatus(c.text(CH_ERROR));
        assert.equal(status.kind, 'failure', command);
      });
      assert.equal(line!['outcome'], 'error', command);
    }
  });
});

describe('tunnel clients (the shim unwraps their SPDY bytes)', () => {
  const PF = '/api/v1/namespaces/default/pods/demo/portforward';
  const TUNNEL = 'SPDY/3.1+portforward.k8s.io';

  /** A tunnel client (ws refuses to offer `SPDY/3.1+…` itself: the dialer takes care of it). */
  async function tunnel(): Promise<WebSocket> {
    const r = await dialWebSocket(
      { url: new URL(tunnelShim.url), agent },
      PF,
      [TUNNEL],
      {},
      { handshakeTimeoutMs: 2000 },
    );
    if (!r.ok) throw new Error(`tunnel refused: ${r.refusal.statusCode}`);
    r.ws.on('error', () => {});
    r.ws.resume();
    return r.ws;
  }

  test('a text message in the tunnel: closed with 1003', async () => {
    await isolated(tunnelShim, 1, async () => {
      const c = await tunnel();
      const closed = once(c, 'close');
      c.send('text is not allowed here');
      const [code] = await withTimeout(closed, 2000, 'close');
      assert.equal(code, 1003);
    });
  });

  test('mutated kubectl tunnels: each ends within 2 s of the client leaving', async () => {
    const messages = wsDataMessages(recordedSession('tunnel-portforward'), 'client');
    const joined = Buffer.concat(messages.map((m) => m.data));
    const runs = 20;
    await isolated(tunnelShim, runs, async () => {
      await fc.assert(
        fc.asyncProperty(mutated(joined), fc.integer({ min: 1, max: 64 }), async (bytes, size) => {
          const c = await tunnel();
          const closed = once(c, 'close');
          for (let off = 0; off < bytes.length; off += size) c.send(bytes.subarray(off, off + size));
          await new Promise((r) => setTimeout(r, 20));
          c.close(1000);
          await withTimeout(closed, 2000, 'session end');
        }),
        { numRuns: runs },
      );
    });
  });
});

describe('malformed HTTP', () => {
  const answer = async (text: string, waitMs = 2000) => {
    const c = await raw(wsShim, text);
    await withTimeout(c.closed, waitMs, 'the connection to be answered and closed');
    return c.received().toString('latin1');
  };

  test('a bad request line, a broken %-escape, an oversized head: answered, and the shim goes on', async () => {
    await isolated(wsShim, 0, async () => {
      assert.match(await answer('GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400/);
      const broken =
        'GET /api/v1/namespaces/%E0/pods/x/exec HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n' +
        'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
      assert.match(await answer(broken), /^HTTP\/1\.1 \d{3}/);
      const huge = `GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(128 * 1024)}\r\n\r\n`;
      assert.match(await answer(huge), /^HTTP\/1\.1 431/);
    });
    const logged = wsShim.logs().filter((l) => l['msg'] === 'malformed request');
    assert.ok(logged.length >= 2, 'each is logged');
  });

  test('a head that never ends is answered 408 after the handshake timeout', async () => {
    await isolated(wsShim, 0, async () => {
      const started = performance.now();
      const text = await answer('GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', 3000);
      assert.match(text, /^HTTP\/1\.1 408/);
      const ms = performance.now() - started;
      assert.ok(ms >= 900 && ms < 2500, `answered after ${ms.toFixed(0)} ms`);
    });
  });
});
