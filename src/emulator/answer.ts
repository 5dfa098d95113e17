/**
 * Answers that are not upgrades, written the way the Go servers write them: JSON Status objects
 * from the apiserver, `http.Error` plain text from the kubelet and CRI server, and the bare x/net
 * refusal (status line, no headers, §2.2). The same answer can go to an ordinary response or to the
 * raw socket of an upgrade request, where nothing but our own bytes may be written.
 */
import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Status } from '../k8s/status.js';

export type HeaderPairs = [name: string, value: string][];

export interface Answer {
  /** An API object or Status as JSON. */
  json(code: number, body: unknown): void;
  /** Go's `http.Error`: text/plain, nosniff, the message and a newline. */
  text(code: number, message: string, headers?: HeaderPairs): void;
}

export function answerStatus(answer: Answer, status: Status): void {
  answer.json(status.code ?? 500, status);
}

const TEXT_HEADERS: HeaderPairs = [
  ['Content-Type', 'text/plain; charset=utf-8'],
  ['X-Content-Type-Options', 'nosniff'],
];

export function responseAnswer(res: ServerResponse): Answer {
  return {
    json(code, body) {
      const bytes = Buffer.from(JSON.stringify(body));
      res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': bytes.length });
      res.end(bytes);
    },
    text(code, message, headers = []) {
      const bytes = Buffer.from(`${message}\n`);
      res.writeHead(code, [...TEXT_HEADERS, ...headers, ['Content-Length', String(bytes.length)]].flat());
      res.end(bytes);
    },
  };
}

/** Answer on the socket of an upgrade request, then close it (no keep-alive after a refusal). */
export function socketAnswer(socket: Duplex): Answer {
  return {
    json(code, body) {
      writeRaw(socket, code, [['Content-Type', 'application/json']], Buffer.from(JSON.stringify(body)));
    },
    text(code, message, headers = []) {
      writeRaw(socket, code, [...TEXT_HEADERS, ...headers], Buffer.from(`${message}\n`));
    },
  };
}

function writeRaw(socket: Duplex, code: number, headers: HeaderPairs, body: Buffer): void {
  const lines = [`HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}`];
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  lines.push(`Content-Length: ${body.length}`, 'Connection: close', '', '');
  endSocket(socket, Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), body]));
}

/**
 * golang.org/x/net/websocket's refusal: a status line, optional headers, a blank line and the
 * error text, then the connection closes — no Content-Length, no Content-Type (§2.2).
 */
export function xnetRefusal(socket: Duplex, code: number, body = '', headers: HeaderPairs = []): void {
  const head = [`HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}`, ...headers.map(([n, v]) => `${n}: ${v}`)];
  endSocket(socket, Buffer.from(`${head.join('\r\n')}\r\n\r\n${body}`, 'latin1'));
}

function endSocket(socket: Duplex, bytes: Buffer): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(bytes);
  // a client that never closes its side must not keep the socket forever
  setTimeout(() => socket.destroy(), 2000).unref();
}
