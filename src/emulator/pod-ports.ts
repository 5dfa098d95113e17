/**
 * What listens on a pod's ports. The emulator serves each declared port itself, on an ephemeral
 * port of 127.0.0.1: `echo` sends every byte back (half-close aware), `http` is a small web server,
 * `none` is declared in the pod spec with nothing behind it (for port-forward error paths).
 *
 * http routes: `GET /` a greeting; `GET /bytes/N` N bytes (zeros), streamed with backpressure.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

export type PortService = 'echo' | 'http' | 'none';

export interface PodPortSpec {
  name: string;
  containerPort: number;
  serve: PortService;
}

export interface PortServer {
  /** The local port that stands for the pod port. */
  port: number;
  close(): Promise<void>;
}

export async function startPortServer(
  service: Exclude<PortService, 'none'>,
  podName: string,
): Promise<PortServer> {
  const server = service === 'echo' ? echoServer() : httpServer(podName);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function echoServer(): net.Server {
  return net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
}

const ZEROS = Buffer.alloc(64 * 1024);

function httpServer(podName: string): http.Server {
  return http.createServer((req, res) => {
    const bytes = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
    if (bytes) {
      sendZeros(res, Number(bytes[1]));
      return;
    }
    if (req.url === '/' || req.url === '') {
      const body = `hello from pod ${podName}\n`;
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found\n');
  });
}

function sendZeros(res: http.ServerResponse, total: number): void {
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': total });
  let left = total;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, ZEROS.length);
      left -= n;
      if (!res.write(n === ZEROS.length ? ZEROS : ZEROS.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  res.once('close', () => {
    left = 0;
  });
  pump();
}
