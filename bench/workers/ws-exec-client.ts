/**
 * Load generator: WebSocket v5 exec sessions, as kubectl ≥ 1.30 opens them (docs/protocols.md §3.3.2):
 * stdin as one masked 32 KiB message per write, written as frames of our own (no copy but the
 * masking), CLOSE `[255, 0]` for stdin EOF, pings every 5 s. Many sessions in one process.
 */
import http from 'node:http';
import type { RawData } from 'ws';
import { CH_ERROR, CH_STDIN, CH_STDOUT, decodeMessage, encodeClose } from '../../src/channel/codec.js';
import { afterWsFlush } from '../../src/channel/ws-flow.js';
import { writeBinaryFrame } from '../../src/channel/ws-frame.js';
import { wsSocket } from '../../src/channel/ws-internals.js';
import { RC_V5 } from '../../src/k8s/protocols.js';
import { dialWebSocket } from '../../src/upstream/dial.js';
import { CLIENT_PING_MS, type OpenExec, serveExecClient } from '../lib/exec-client.js';
import { execPath } from '../lib/wire.js';

const agent = new http.Agent();

const openWsExec: OpenExec = async (base, program, onStdout) => {
  const dialed = await dialWebSocket(
    { url: new URL(base), agent },
    execPath(program),
    [RC_V5],
    {},
    {
      handshakeTimeoutMs: 60_000,
    },
  );
  if (!dialed.ok) throw new Error(`exec refused: ${dialed.refusal.statusCode} ${dialed.refusal.body}`);
  const { ws } = dialed;
  const socket = wsSocket(ws);
  const status: Buffer[] = [];
  const ping = setInterval(() => ws.ping(), CLIENT_PING_MS).unref();
  const ended = new Promise<string>((resolve, reject) => {
    ws.on('close', (code: number, reason: Buffer) => {
      clearInterval(ping);
      if (code === 1000) resolve(Buffer.concat(status).toString());
      else reject(new Error(`WebSocket closed ${code} ${reason}`));
    });
  });
  ended.catch(() => {}); // awaited by the caller; a failure before that must not end the process
  ws.on('error', () => {});
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const msg = decodeMessage(data as Buffer, isBinary, false);
    if (msg === null) return;
    if (msg.channel === CH_STDOUT) {
      if (msg.payload.length > 0) onStdout(msg.payload);
    } else if (msg.channel === CH_ERROR) status.push(Buffer.from(msg.payload));
  });
  ws.resume();
  return {
    writeStdin: (chunk) => {
      writeBinaryFrame(socket, false, CH_STDIN, chunk);
      return socket.writableNeedDrain ? new Promise((r) => afterWsFlush(ws, r)) : undefined;
    },
    closeStdin: () => ws.send(encodeClose(CH_STDIN)),
    pauseStdout: () => ws.pause(),
    resumeStdout: () => ws.resume(),
    ended,
  };
};

serveExecClient(openWsExec);
