/**
 * A TCP tap: forwards every connection to a target port and keeps the bytes of each direction, so
 * a test can see exactly what crossed a hop (a recording, or proof that a secret never did).
 */
import net, { type AddressInfo } from 'node:net';

export interface TappedConnection {
  /** Bytes from the connecting side. */
  client: Buffer[];
  /** Bytes from the target. */
  server: Buffer[];
}

export interface Tap {
  url: string;
  port: number;
  connections: TappedConnection[];
  /** Everything that crossed, both directions, as latin1 text (for searching). */
  text(): string;
  close(): Promise<void>;
}

export async function startTap(targetPort: number): Promise<Tap> {
  const connections: TappedConnection[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((c) => {
    const t: TappedConnection = { client: [], server: [] };
    connections.push(t);
    const up = net.connect(targetPort, '127.0.0.1');
    for (const s of [c, up]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    }
    c.on('data', (d: Buffer) => t.client.push(d));
    up.on('data', (d: Buffer) => t.server.push(d));
    c.pipe(up);
    up.pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connections,
    text: () =>
      connections.map((c) => Buffer.concat([...c.client, ...c.server]).toString('latin1')).join('\n'),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
