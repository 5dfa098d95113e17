/** `--listen HOST:PORT` parsing (IPv6 in brackets; a bare PORT is 127.0.0.1:PORT), and what counts as loopback. */
import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
}

export function parseListen(value: string): ListenAddress {
  const trimmed = value.trim();
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(
    /^\d{1,5}$/.test(trimmed) ? `127.0.0.1:${trimmed}` : trimmed,
  );
  if (!m) throw new Error(`--listen must be HOST:PORT or PORT (got '${value}')`);
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`--listen port ${port} is out of range`);
  if (m[1] !== undefined && isIP(host) !== 6) throw new Error(`--listen: '${host}' is not an IPv6 address`);
  return { host: host === '' ? '0.0.0.0' : host, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}
