/**
 * The shim's health endpoints, for container probes:
 * - `/healthz`: 200 `ok` while the process runs;
 * - `/readyz`: 200 `ok` only when the upstream answers — `GET <upstream>/readyz` (or `/version`
 *   when an old or filtered upstream has no /readyz) through the target's agent with its
 *   credentials — and 503 with a one-line reason otherwise. The answer is cached for a few seconds
 *   and concurrent probes share one upstream request, so probes cannot flood the upstream.
 * These paths shadow the API server's own /healthz and /readyz for clients of the shim (a
 * `kubectl get --raw /readyz` through the shim gets the shim's answer).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AuthHeaders } from '../upstream/credentials.js';
import type { UpstreamTarget } from '../upstream/target.js';
import { upstreamUrl } from '../upstream/upstream-url.js';
import type { Logger } from './logger.js';

export type HealthTarget = Pick<
  UpstreamTarget,
  'url' | 'agent' | 'authHeaders' | 'injectsCredentials' | 'invalidateCredentials'
>;

export interface HealthOptions {
  /** How long an upstream answer is reused (default 5 s). */
  cacheMs?: number;
  /** How long the upstream has to answer a probe (default 3 s). */
  timeoutMs?: number;
}

export interface Readiness {
  ready: boolean;
  /** `ok`, or one line saying what failed: anyone who can reach /readyz reads it. */
  reason: string;
  /** For the shim's log only: the error text behind `reason` (a plugin's message, an address). */
  detail?: string;
}

export interface Health {
  /** Answers GET/HEAD /healthz and /readyz; returns false for anything else (to be proxied). */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** The (cached) readiness of the upstream, as /readyz reports it. */
  readiness(): Promise<Readiness>;
}

/** Bytes of a failing /readyz body read for its `[-]check failed` lines. */
const MAX_BODY = 4096;

export function createHealth(target: HealthTarget, log: Logger, opts: HealthOptions = {}): Health {
  const cacheMs = opts.cacheMs ?? 5000;
  const timeoutMs = opts.timeoutMs ?? 3000;
  let cached: { at: number; result: Readiness } | undefined;
  let pending: Promise<Readiness> | undefined;

  const readiness = (): Promise<Readiness> => {
    if (cached && Date.now() - cached.at < cacheMs) return Promise.resolve(cached.result);
    pending ??= probe(target, timeoutMs)
      .then((result) => {
        if (
          cached?.result.ready !== result.ready ||
          (!result.ready && cached.result.reason !== result.reason)
        ) {
          if (result.ready) log.info({ upstream: target.url.origin }, 'upstream ready');
          else
            log.warn(
              { upstream: target.url.origin, reason: result.reason, detail: result.detail },
              'upstream not ready',
            );
        }
        cached = { at: Date.now(), result };
        return result;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = req.url?.split('?')[0];
    if (path === '/healthz') {
      reply(req, res, 200, 'ok');
      return true;
    }
    if (path !== '/readyz') return false;
    readiness().then(
      (r) => reply(req, res, r.ready ? 200 : 503, r.reason),
      (err: Error) => {
        log.warn({ err: err.message }, 'readiness probe failed');
        reply(req, res, 503, 'readiness probe failed');
      },
    );
    return true;
  };

  return { handle, readiness };
}

function reply(req: IncomingMessage, res: ServerResponse, status: number, text: string): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

async function probe(target: HealthTarget, timeoutMs: number): Promise<Readiness> {
  let auth: AuthHeaders;
  try {
    auth = await target.authHeaders();
  } catch (err) {
    return {
      ready: false,
      reason: 'cannot get upstream credentials',
      detail: oneLine((err as Error).message),
    };
  }
  try {
    let path = '/readyz';
    let answer = await get(target, path, auth, timeoutMs);
    if (answer.status === 404) {
      path = '/version';
      answer = await get(target, path, auth, timeoutMs);
    }
    if (answer.status === 200) return { ready: true, reason: 'ok' };
    if (answer.status === 401 || answer.status === 403) {
      // Without credentials of our own, an upstream that refuses an anonymous probe is still up.
      if (!target.injectsCredentials) return { ready: true, reason: 'ok' };
      if (answer.status === 401) target.invalidateCredentials();
      return {
        ready: false,
        reason: `upstream rejected the shim's credentials (${answer.status} on ${path})`,
      };
    }
    const failed = answer.body
      .split('\n')
      .filter((l) => l.startsWith('[-]'))
      .join('; ');
    return {
      ready: false,
      reason: `upstream ${path} answered ${answer.status}${failed ? `: ${failed}` : ''}`,
    };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return {
      ready: false,
      reason: `upstream unreachable${e.code ? ` (${e.code})` : ''}`,
      detail: oneLine(e.message),
    };
  }
}

/** GET a path under the target's URL (its prefix kept); the status and the start of the body. */
function get(
  target: HealthTarget,
  path: string,
  headers: AuthHeaders,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  const url = upstreamUrl(target.url, path);
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { agent: target.agent, headers: { ...headers, accept: 'text/plain, */*' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (body.length < MAX_BODY) body += d.slice(0, MAX_BODY - body.length);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', reject);
      },
    );
    const timer = setTimeout(
      () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })),
      timeoutMs,
    );
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
