/**
 * Legacy WebSocket port-forward, as the CRI server serves it (docs/protocols.md §4.2): the i-th port of
 * the query gets data channel 2i and error channel 2i+1; both first carry the port number (2 bytes,
 * little-endian); one connection per port, opened at once, no half-close; errors are text on the
 * error channel; the WebSocket closes (1000) once every pair is finished.
 */
import net from 'node:net';
import type { RawData, WebSocket } from 'ws';
import { decodeMessage, encodePortPreamble } from '../channel/codec.js';
import { sendChannel } from '../channel/send.js';
import { sinkWritable } from '../remotecommand/node-streams.js';
import { ChannelSink } from '../remotecommand/ws-channel-io.js';
import type { Pod } from './pod.js';
import type { ActiveSession } from './sessions.js';
import { connectionRefusedText } from './spdy-portforward.js';

/** The kubelet's reading of `port=` values (§4.2): a list of ports, or the error it answers. */
export function parsePorts(values: readonly string[]): number[] | string {
  const parts = values.flatMap((v) => v.split(','));
  if (parts.length === 0) return 'query parameter "port" is required';
  const ports: number[] = [];
  for (const p of parts) {
    if (!/^\d+$/.test(p) || Number(p) > 0xffff) return `unable to parse "${p}" as a port`;
    if (Number(p) < 1) return `port "${p}" must be > 0`;
    ports.push(Number(p));
  }
  return ports;
}

export function serveWsPortForward(
  ws: WebSocket,
  ports: readonly number[],
  base64: boolean,
  pod: Pod,
  session: ActiveSession,
): void {
  const sockets: (net.Socket | undefined)[] = [];
  let open = ports.length;
  const pairDone = () => {
    open--;
    if (open === 0 && ws.readyState === ws.OPEN) ws.close(1000);
  };

  ports.forEach((port, i) => {
    const preamble = encodePortPreamble(port);
    sendChannel(ws, 2 * i, preamble, base64);
    sendChannel(ws, 2 * i + 1, preamble, base64);
  });

  ports.forEach((port, i) => {
    const errorText = (text: string) => sendChannel(ws, 2 * i + 1, Buffer.from(text), base64);
    const local = pod.localPort(port);
    if (local === undefined) {
      errorText(connectionRefusedText(pod, port));
      pairDone();
      return;
    }
    const socket = net.connect({ port: local, host: '127.0.0.1' });
    sockets[i] = socket;
    socket.on('error', (err) =>
      errorText(`error forwarding port ${port} to pod ${pod.sandboxId}, uid : ${err.message}`),
    );
    socket.once('close', () => {
      sockets[i] = undefined;
      pairDone();
    });
    socket.pipe(sinkWritable(new ChannelSink(ws, 2 * i, base64)), { end: false });
  });

  ws.on('message', (data: RawData, isBinary: boolean) => {
    let msg: ReturnType<typeof decodeMessage>;
    try {
      msg = decodeMessage(data as Buffer, isBinary || !base64, base64);
    } catch {
      return; // undecodable base64 is dropped
    }
    if (msg === null || msg.channel % 2 !== 0) return;
    const socket = sockets[msg.channel / 2];
    if (socket && !socket.write(msg.payload)) {
      ws.pause();
      socket.once('drain', () => ws.resume());
    }
  });

  ws.on('close', () => {
    for (const s of sockets) s?.destroy();
    session.end({ connections: ports.length, closeReason: 'completed' });
  });
  ws.on('error', () => {});
  session.signal.addEventListener('abort', () => ws.terminate(), { once: true });
  ws.resume(); // accepted paused (src/channel/ws-accept.ts): read once the listeners are in place
}
