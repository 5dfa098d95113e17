/**
 * The lean upstream: a cluster that serves exec over SPDY (v4, the CRI's answer) and WebSocket v5,
 * and port-forward over SPDY and the WebSocket tunnel, built on our codecs, in one process. It plays
 * the benchmark's three programs (bench/lib/wire.ts) itself instead of starting processes, and its
 * pod has one port, a download. The emulator (src/emulator) is the faithful upstream; this one
 * exists because a process per session, and the emulator's own costs, would dominate what is
 * measured. It answers the way docs/protocols.md §3 and §4 describe and nothing more.
 */
import { once } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import {
  CH_CLOSE,
  CH_ERROR,
  CH_STDIN,
  CH_STDOUT,
  decodeMessage,
  parseClosePayload,
} from '../../src/channel/codec.js';
import { sendChannel } from '../../src/channel/send.js';
import { TunnelStream } from '../../src/channel/tunnel.js';
import { acceptWebSocket, createWebSocketServer } from '../../src/channel/ws-accept.js';
import { afterWsFlush } from '../../src/channel/ws-flow.js';
import { wsSocket } from '../../src/channel/ws-internals.js';
import {
  HEADER_STREAM_PROTOCOL,
  headerHasToken,
  negotiate,
  PORTFORWARD,
  RC_V4,
  RC_V5,
  splitProtocolHeader,
  TUNNEL_PORTFORWARD,
} from '../../src/k8s/protocols.js';
import { SUCCESS_STATUS_JSON } from '../../src/k8s/status.js';
import { SpdySession, type SpdyStream } from '../../src/spdy/session.js';
import { CHUNK, DOWNLOAD_PORT, type Program, parseProgram } from '../lib/wire.js';
import { serveWorker } from '../lib/worker.js';

/** What a terminal shows: lines of text (the translators never look at it; a recording encodes it). */
const payload = Buffer.alloc(CHUNK, 'kubeshim bench output: the quick brown fox jumps over the lazy dog\r\n');
const status = Buffer.from(SUCCESS_STATUS_JSON);
const noop = () => {};

/** One exec session's streams, whichever protocol carries them. */
interface ExecIo {
  /** Write stdout; a promise when the writer should wait before writing more. */
  stdout(chunk: Buffer): Promise<void> | undefined;
  onStdin(data: (chunk: Buffer) => void, end: () => void): void;
  pauseStdin(): void;
  resumeStdin(): void;
  /** Success status, then the session ends. */
  finish(): void;
}

async function run(program: Program, io: ExecIo): Promise<void> {
  switch (program.kind) {
    case 'source': {
      for (let left = program.bytes; left > 0; ) {
        const piece = left >= CHUNK ? payload : payload.subarray(0, left);
        left -= piece.length;
        const wait = io.stdout(piece);
        if (wait) await wait;
      }
      io.finish();
      return;
    }
    case 'sink': {
      let count = 0;
      io.onStdin(
        (chunk) => {
          count += chunk.length;
        },
        () => {
          io.stdout(Buffer.from(`${count}\n`));
          io.finish();
        },
      );
      return;
    }
    case 'echo':
      io.onStdin(
        (chunk) => {
          const wait = io.stdout(chunk);
          if (wait) {
            io.pauseStdin();
            void wait.then(() => io.resumeStdin());
          }
        },
        () => io.finish(),
      );
      return;
  }
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
}

/** SPDY exec: v4, the streams the query promises, the CRI's way of ending (§3.2). */
function spdyExec(req: IncomingMessage, socket: Duplex, head: Buffer, program: Program, q: URLSearchParams) {
  if (negotiate(splitProtocolHeader(req.headers[HEADER_STREAM_PROTOCOL]), [RC_V4]) === undefined) {
    refuse(socket, 403, 'Forbidden');
    return;
  }
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${RC_V4}\r\n\r\n`,
  );
  const on = (k: string) => q.get(k) === 'true';
  const expected = 1 + +on('stdin') + +on('stdout') + +on('stderr');
  const session = new SpdySession(socket, { role: 'server', head });
  const streams = new Map<string, SpdyStream>();
  session.on('stream', (stream) => {
    stream.reply();
    stream.on('error', noop);
    streams.set(stream.streamType ?? '', stream);
    if (streams.size < expected) return;
    const stdout = streams.get('stdout')!;
    const stdin = streams.get('stdin');
    void run(program, {
      stdout: (chunk) => (stdout.write(chunk) ? undefined : once(stdout, 'drain').then(noop, noop)),
      onStdin: (data, end) => {
        stdin?.on('data', data);
        stdin?.once('end', end);
      },
      pauseStdin: () => stdin?.pause(),
      resumeStdin: () => stdin?.resume(),
      finish: () => {
        stdout.end();
        stdout.once('finish', () => {
          streams.get('error')?.write(status);
          closeWhenWritten(socket, session);
        });
      },
    });
  });
}

/**
 * SpdySession.close() drops a peer that has not closed 2 s later, with whatever is still queued:
 * first let everything written leave, so that a reader held back (a shim waiting for its slow
 * client) still gets the end of the output and the status, as from a Go peer's blocking writes.
 */
function closeWhenWritten(socket: Duplex, session: SpdySession): void {
  // the session writes its frames at the end of the tick; an empty write after them calls back once
  // everything before it has been handed to the kernel
  setImmediate(() => {
    if (!socket.writable) session.close();
    else socket.write(Buffer.alloc(0), () => session.close());
  });
}

/** WebSocket v5 exec, as the apiserver's translator serves it (§3.3.2). */
async function wsExec(req: IncomingMessage, socket: Duplex, head: Buffer, program: Program) {
  if (negotiate(splitProtocolHeader(req.headers['sec-websocket-protocol']), [RC_V5]) === undefined) {
    refuse(socket, 403, 'Forbidden');
    return;
  }
  const ws = await acceptWebSocket(wss, req, socket, head, RC_V5);
  ws.on('error', noop);
  let onData: (chunk: Buffer) => void = noop;
  let onEnd: () => void = noop;
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const msg = decodeMessage(data as Buffer, isBinary, false);
    if (msg === null) return;
    if (msg.channel === CH_STDIN) onData(msg.payload);
    else if (msg.channel === CH_CLOSE && parseClosePayload(msg.payload) === CH_STDIN) onEnd();
  });
  sendChannel(ws, CH_STDOUT, Buffer.alloc(0), false); // the established marker
  ws.resume();
  void run(program, {
    stdout: (chunk) => {
      sendChannel(ws, CH_STDOUT, chunk, false);
      return wsSocket(ws)?.writableNeedDrain ? new Promise((r) => afterWsFlush(ws, r)) : undefined;
    },
    onStdin: (data, end) => {
      onData = data;
      onEnd = end;
    },
    pauseStdin: () => ws.pause(),
    resumeStdin: () => ws.resume(),
    finish: () => {
      sendChannel(ws, CH_ERROR, status, false);
      ws.close(1000);
    },
  });
}

/**
 * A port-forward session (§4.1): streams paired by requestid; each pair's data stream carries one
 * download: a decimal byte count and a newline in, that many bytes out, then FIN on data and error.
 */
function servePortForward(session: SpdySession): void {
  const pairs = new Map<string, { data?: SpdyStream; error?: SpdyStream }>();
  session.on('stream', (stream) => {
    const type = stream.streamType;
    const id = stream.headers['requestid'];
    if (
      Number(stream.headers['port']) !== DOWNLOAD_PORT ||
      id === undefined ||
      (type !== 'data' && type !== 'error')
    ) {
      stream.reset();
      return;
    }
    stream.reply();
    stream.on('error', noop);
    const pair = pairs.get(id) ?? {};
    pair[type] = stream;
    pairs.set(id, pair);
    if (pair.data && pair.error) {
      pairs.delete(id);
      void download(pair.data, pair.error);
    }
  });
}

async function download(data: SpdyStream, error: SpdyStream): Promise<void> {
  error.resume(); // the client half-closes it at once
  const request = await new Promise<string>((resolve) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!text.includes('\n')) return;
      data.off('data', onData); // anything after the request is read and ignored
      resolve(text);
    };
    data.on('data', onData);
  });
  const bytes = Number.parseInt(request, 10);
  for (let left = bytes; left > 0; ) {
    const piece = left >= CHUNK ? payload : payload.subarray(0, left);
    left -= piece.length;
    if (!data.write(piece)) await once(data, 'drain');
  }
  data.end();
  error.end();
}

const wss = createWebSocketServer();
const server = http.createServer((_req, res) => res.writeHead(404).end());
server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
  socket.on('error', noop);
  const url = new URL(req.url ?? '/', 'http://upstream');
  const websocket = headerHasToken(req.headers.upgrade, 'websocket');
  if (url.pathname.endsWith('/portforward')) {
    if (websocket) {
      const offered = splitProtocolHeader(req.headers['sec-websocket-protocol']);
      if (!offered.includes(TUNNEL_PORTFORWARD)) {
        refuse(socket, 400, 'Bad Request');
        return;
      }
      void acceptWebSocket(wss, req, socket, head, TUNNEL_PORTFORWARD).then((ws: WebSocket) => {
        ws.on('error', noop);
        servePortForward(new SpdySession(new TunnelStream(ws), { role: 'server' }));
      });
      return;
    }
    if (negotiate(splitProtocolHeader(req.headers[HEADER_STREAM_PROTOCOL]), [PORTFORWARD]) === undefined) {
      refuse(socket, 403, 'Forbidden');
      return;
    }
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${PORTFORWARD}\r\n\r\n`,
    );
    servePortForward(new SpdySession(socket, { role: 'server', head }));
    return;
  }
  const program = url.pathname.endsWith('/exec')
    ? parseProgram(url.searchParams.getAll('command'))
    : undefined;
  if (program === undefined) {
    refuse(socket, 404, 'Not Found');
    return;
  }
  if (websocket) void wsExec(req, socket, head, program);
  else spdyExec(req, socket, head, program, url.searchParams);
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
serveWorker({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, {});
