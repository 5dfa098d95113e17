/**
 * Dialing streaming upgrades to the upstream: a raw HTTP/1.1 upgrade (SPDY, or a WebSocket relayed
 * byte for byte), and a WebSocket client connection (for translation). An upstream that answers
 * with anything but 101 is a refusal, returned with its status, headers and (capped) body so the
 * client can be given exactly the answer it would have had without us (docs/protocols.md §2.3, §8.2).
 *
 * No reused read buffer (`onread`) on these sockets, though it would spare an allocation per read
 * (issue 15): a read's chunk outlives the read. The SPDY parser keeps slices of it until a frame is
 * whole and hands DATA payloads to streams that queue them while their reader is slow; `ws`'s
 * receiver keeps chunks until a frame is whole and emits messages that are slices of them, which a
 * bridge may queue behind a congested peer. And the sockets come from http.request and `ws` through
 * the target's Agent: the HTTP response is parsed from 'data' events, which `onread` replaces, and a
 * socket cannot take `onread` after its upgrade.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import type { RequestTarget } from '../k8s/canonical-target.js';
import { apiStatus, encodeStatus } from '../k8s/status.js';
import { upstreamUrl } from './upstream-url.js';

/** What the dialer needs of an upstream target (src/upstream/target.ts provides it). */
export interface DialTarget {
  readonly url: URL;
  readonly agent: http.Agent;
}

/** A non-101 answer, kept to be replayed to the client. */
export interface Refusal {
  statusCode: number;
  statusMessage: string;
  /** Raw header pairs as received. */
  rawHeaders: string[];
  body: Buffer;
}

export type UpgradeResult =
  | { ok: true; socket: Duplex; head: Buffer; response: IncomingMessage }
  | { ok: false; refusal: Refusal };

export type WebSocketResult = { ok: true; ws: WebSocket; protocol: string } | { ok: false; refusal: Refusal };

export interface DialOptions {
  /** Time allowed from connect to the end of the handshake. */
  handshakeTimeoutMs: number;
  /** Largest WebSocket message accepted from the upstream. */
  maxPayload?: number;
  /** Abandon the dial (close what it opened, reject) when this aborts: the client left. */
  signal?: AbortSignal;
}

/** Refusal bodies are for error messages; gorilla keeps 1 KiB, client-go reads 64 KiB (§2.3). */
const MAX_REFUSAL_BODY = 64 * 1024;

/** Send an HTTP/1.1 upgrade request and hand back the upgraded socket, or the refusal. */
export function dialUpgrade(
  target: DialTarget,
  method: string,
  path: RequestTarget | string,
  headers: OutgoingHttpHeaders,
  opts: DialOptions,
): Promise<UpgradeResult> {
  const url = upstreamUrl(target.url, path);
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: target.agent, signal: opts.signal });
    const timer = setTimeout(() => {
      req.destroy(
        new Error(
          `upstream did not answer the ${headers['upgrade']} upgrade within ${opts.handshakeTimeoutMs} ms`,
        ),
      );
    }, opts.handshakeTimeoutMs);
    req.once('upgrade', (response: IncomingMessage, socket: Duplex, head: Buffer) => {
      clearTimeout(timer);
      resolve({ ok: true, socket, head, response });
    });
    req.once('response', (response: IncomingMessage) => {
      readRefusal(response).then(
        (refusal) => {
          clearTimeout(timer);
          resolve({ ok: false, refusal });
        },
        (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

/**
 * Open a WebSocket to the upstream offering `protocols`; never fragments what it sends (ws default).
 * The protocols travel in a header of our own and the answer is read before `ws` checks it: `ws`
 * rejects `SPDY/3.1+portforward.k8s.io` (not an RFC 6455 token) on both ends. As client-go does,
 * an answer that names none of the offered protocols is a refusal (§2.2).
 * The WebSocket comes back paused: resume it once its listeners are in place.
 */
export function dialWebSocket(
  target: DialTarget,
  path: RequestTarget | string,
  protocols: string[],
  headers: OutgoingHttpHeaders,
  opts: DialOptions,
): Promise<WebSocketResult> {
  const url = upstreamUrl(target.url, path, true);
  return new Promise((resolve, reject) => {
    let settled = false;
    let answered = '';
    const ws = new WebSocket(url, [], {
      agent: target.agent,
      headers: { ...(headers as Record<string, string>), 'sec-websocket-protocol': protocols.join(', ') },
      perMessageDeflate: false,
      followRedirects: false,
      handshakeTimeout: opts.handshakeTimeoutMs,
      maxPayload: opts.maxPayload ?? 32 * 1024 * 1024,
      skipUTF8Validation: true,
    });
    const abandon = () => {
      if (settled) return;
      settled = true;
      ws.terminate();
      reject(new Error('the dial was abandoned'));
    };
    opts.signal?.addEventListener('abort', abandon, { once: true });
    ws.once('upgrade', (response: IncomingMessage) => {
      const value = response.headers['sec-websocket-protocol'];
      answered = (Array.isArray(value) ? value[0] : value)?.trim() ?? '';
      delete response.headers['sec-websocket-protocol'];
    });
    ws.once('open', () => {
      settled = true;
      // Paused here, synchronously: messages that came with the 101 would otherwise be emitted on
      // the next tick, before the caller (resumed on a later microtask) has attached its listeners.
      ws.pause();
      if (!protocols.includes(answered)) {
        ws.terminate();
        const message = `invalid protocol, expected one of [${protocols.join(' ')}], got "${answered}"`;
        resolve({
          ok: false,
          refusal: syntheticRefusal(502, `upstream accepted the WebSocket with an ${message}`),
        });
        return;
      }
      resolve({ ok: true, ws, protocol: answered });
    });
    ws.once('unexpected-response', (req, response) => {
      settled = true;
      readRefusal(response).then(
        (refusal) => {
          req.destroy();
          resolve({ ok: false, refusal });
        },
        (err: Error) => {
          req.destroy();
          reject(err);
        },
      );
    });
    ws.once('error', (err) => {
      if (settled) return;
      settled = true;
      reject(err);
    });
  });
}

function readRefusal(response: IncomingMessage): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = () =>
      resolve({
        statusCode: response.statusCode ?? 502,
        statusMessage: response.statusMessage ?? '',
        rawHeaders: response.rawHeaders,
        body: Buffer.concat(chunks),
      });
    response.on('data', (chunk: Buffer) => {
      if (size >= MAX_REFUSAL_BODY) return;
      const take = chunk.subarray(0, MAX_REFUSAL_BODY - size);
      chunks.push(take);
      size += take.length;
      if (size >= MAX_REFUSAL_BODY) {
        response.destroy();
        finish();
      }
    });
    response.once('end', finish);
    response.once('error', (err) => (size >= MAX_REFUSAL_BODY ? finish() : reject(err)));
  });
}

/** A refusal made up by the shim, with a Kubernetes Status body so kubectl prints its message. */
export function syntheticRefusal(
  statusCode: number,
  message: string,
  reason = 'ServiceUnavailable',
): Refusal {
  const body = encodeStatus(apiStatus(statusCode, reason, message));
  return {
    statusCode,
    statusMessage: http.STATUS_CODES[statusCode] ?? '',
    rawHeaders: ['Content-Type', 'application/json'],
    body,
  };
}
