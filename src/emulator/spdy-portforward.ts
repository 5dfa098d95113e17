/**
 * Port-forward over SPDY, served the way the CRI streaming server serves it (docs/protocols.md §4.1):
 * streams need a `port` (1–65535) and a `streamtype` of data or error, else they are reset; they
 * pair by `requestid` (old clients: by stream id); a pair must be complete within 30 s; then the
 * pod port is dialled and bytes copied both ways, with FIN on both streams when done. Failures are
 * text on the pair's error stream, then both streams are reset. The same code serves the
 * WebSocket tunnel (§4.3), where the SPDY session runs over the tunnel's byte stream.
 */
import net from 'node:net';
import type { Logger } from '../observe/logger.js';
import { STREAM_CREATION_TIMEOUT_MS } from '../remotecommand/streams.js';
import type { SpdySession, SpdyStream } from '../spdy/session.js';
import type { Pod } from './pod.js';
import type { ActiveSession } from './sessions.js';

interface StreamPair {
  requestId: string;
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

/** The error a pod port with nothing behind it gives, in containerd's words. */
export function connectionRefusedText(pod: Pod, port: number): string {
  return (
    `error forwarding port ${port} to pod ${pod.sandboxId}, uid : failed to execute portforward in network ` +
    `namespace "/var/run/netns/cni-${pod.uid}": failed to connect to localhost:${port} inside namespace ` +
    `"${pod.sandboxId}", IPv4: dial tcp4 127.0.0.1:${port}: connect: connection refused ` +
    `IPv6 dial tcp6 [::1]:${port}: connect: connection refused `
  );
}

/** `port` as strconv.ParseUint(…, 10, 16) and `> 0` accept it, else why not. */
function validateStream(stream: SpdyStream): string | undefined {
  const port = stream.headers['port'];
  if (!port) return '"port" header is required';
  if (!/^\d+$/.test(port) || Number(port) > 0xffff) return `unable to parse "${port}" as a port`;
  if (Number(port) < 1) return `port "${port}" must be > 0`;
  const type = stream.streamType;
  if (!type) return '"streamType" header is required';
  if (type !== 'data' && type !== 'error') return `invalid stream type "${type}"`;
  return undefined;
}

export function servePortForward(spdy: SpdySession, pod: Pod, session: ActiveSession, log: Logger): void {
  const pairs = new Map<string, StreamPair>();
  const sockets = new Set<net.Socket>();
  let connections = 0;

  spdy.on('close', (err) => {
    for (const p of pairs.values()) clearTimeout(p.timer);
    for (const s of sockets) s.destroy();
    session.end({ connections, closeReason: err ? err.message : 'client closed the connection' });
  });
  session.signal.addEventListener('abort', () => spdy.destroy(), { once: true });

  spdy.on('stream', (stream) => {
    const invalid = validateStream(stream);
    if (invalid) {
      log.debug({ id: session.id, stream: stream.id, reason: invalid }, 'port-forward stream rejected');
      stream.reset();
      return;
    }
    stream.reply();
    const type = stream.streamType as 'data' | 'error';
    const requestId = stream.headers['requestid'] || String(type === 'error' ? stream.id : stream.id - 2);
    let pair = pairs.get(requestId);
    if (!pair) {
      const created: StreamPair = {
        requestId,
        timer: setTimeout(() => {
          pairs.delete(requestId);
          created.error?.end(`(conn=${session.id}, request=${requestId}) timed out waiting for streams`);
        }, STREAM_CREATION_TIMEOUT_MS),
      };
      created.timer.unref();
      pair = created;
      pairs.set(requestId, pair);
    }
    if (pair[type]) {
      stream.resume();
      pair.error?.write(`error processing stream for request ${requestId}: ${type} stream already assigned`);
      return;
    }
    pair[type] = stream;
    // the client half-closes the error stream at once and never writes to it
    if (type === 'error') stream.resume();
    if (pair.data && pair.error) {
      clearTimeout(pair.timer);
      pairs.delete(requestId);
      connections++;
      forward(pair.data, pair.error);
    }
  });

  const forward = (data: SpdyStream, error: SpdyStream) => {
    const port = Number(data.headers['port']);
    const fail = (text: string) => {
      error.write(text, () => {
        data.reset();
        error.reset();
      });
    };
    const local = pod.localPort(port);
    if (local === undefined) {
      fail(connectionRefusedText(pod, port));
      return;
    }
    const socket = net.connect({ port: local, host: '127.0.0.1' });
    sockets.add(socket);
    let connected = false;
    socket.once('connect', () => {
      connected = true;
    });
    socket.on('error', (err) => {
      if (!connected) fail(`error forwarding port ${port} to pod ${pod.sandboxId}, uid : ${err.message}`);
      else data.reset();
    });
    socket.once('close', () => {
      sockets.delete(socket);
      // whatever the client still sends has nowhere to go: drain it so the session keeps moving
      data.unpipe(socket);
      data.resume();
      if (!connected) return;
      if (!data.destroyed) data.end();
      if (!error.destroyed) error.end();
    });
    data.pipe(socket);
    socket.pipe(data, { end: false });
  };
}
