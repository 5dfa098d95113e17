/** Reading a SPDY stream in tests. */
import { once } from 'node:events';
import type { SpdyStream } from '../../src/spdy/session.js';
import { withTimeout } from './wait.js';

/** Everything `stream` delivers until its end; rejects after `ms`. */
export async function readAll(stream: SpdyStream, ms = 10_000): Promise<Buffer> {
  const parts: Buffer[] = [];
  stream.on('data', (d: Buffer) => parts.push(d));
  await withTimeout(once(stream, 'end'), ms, `end of stream ${stream.id}`);
  return Buffer.concat(parts);
}
