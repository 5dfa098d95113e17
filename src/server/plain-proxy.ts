/**
 * Everything that is not a streaming upgrade (discovery, get, watch, `logs -f`) goes to the upstream
 * through http-proxy, unchanged and unbuffered: responses are piped as they arrive. The upstream has
 * `responseTimeoutMs` to start answering (the response head); a body may then take as long as it
 * likes (a quiet watch is not a dead upstream).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import httpProxy from 'http-proxy';
import './http-proxy-deprecation.js';
import { apiStatus, encodeStatus } from '../k8s/status.js';
import type { Logger } from '../observe/logger.js';
import { CREDENTIALS_UNAVAILABLE } from '../upstream/credentials.js';
import {
  credentialPolicy,
  dropClientIdentity,
  dropOneHopHeaders,
  noteUpstreamStatus,
} from '../upstream/headers.js';
import type { CredentialedUpstream } from '../upstream/target.js';
import { upstreamUrl } from '../upstream/upstream-url.js';
import { requestTarget } from './request-target.js';
import { appendVia } from './via.js';

export type PlainHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function createPlainProxy(
  target: CredentialedUpstream,
  log: Logger,
  responseTimeoutMs: number,
): PlainHandler {
  const agentOptions = (target.agent as HttpsAgent).options ?? {};
  // http-proxy only ever connects to the upstream's origin; the path it would build from req.url is
  // replaced with the one URL builder's (proxyReq below)
  const proxy = httpProxy.createProxyServer({
    target: target.url.origin,
    ignorePath: true,
    agent: target.agent,
    changeOrigin: true,
    xfwd: true,
    // http-proxy sets rejectUnauthorized on every request; keep the target's own choice
    secure: agentOptions.rejectUnauthorized !== false,
  });
  proxy.on('proxyReq', (proxyReq, req) => {
    const url = upstreamUrl(target.url, requestTarget(req));
    proxyReq.path = url.pathname + url.search;
    const timer = setTimeout(() => {
      proxyReq.destroy(new Error(`no answer within ${responseTimeoutMs} ms`));
    }, responseTimeoutMs);
    proxyReq.once('response', () => clearTimeout(timer));
    proxyReq.once('close', () => clearTimeout(timer));
  });
  proxy.on('proxyRes', (upstreamRes) => {
    upstreamRes.headers['via'] = appendVia(upstreamRes.headers['via']);
    noteUpstreamStatus(target, upstreamRes.statusCode);
  });
  proxy.on('error', (err, req, res) => {
    log.warn(
      { err: err.message, method: req.method, path: requestTarget(req).path },
      'upstream request failed',
    );
    const r = res as ServerResponse;
    if (typeof r.writeHead !== 'function') return;
    if (r.headersSent) {
      r.destroy();
      return;
    }
    const body = encodeStatus(
      apiStatus(
        502,
        'ServiceUnavailable',
        `kubeshim could not reach the upstream ${target.url.origin}: ${err.message}`,
      ),
    );
    r.writeHead(502, { 'content-type': 'application/json', 'content-length': body.length });
    r.end(body);
  });
  return (req, res) => {
    credentialPolicy(target, log).then(
      (policy) => {
        dropOneHopHeaders(req.headers);
        if (policy.injectsCredentials) dropClientIdentity(req.headers);
        // http-proxy's types say string values; it hands them to http.request, which repeats arrays
        proxy.web(req, res, { headers: policy.auth as Record<string, string> });
      },
      () => {
        const body = encodeStatus(apiStatus(502, 'ServiceUnavailable', CREDENTIALS_UNAVAILABLE));
        res.writeHead(502, { 'content-type': 'application/json', 'content-length': body.length });
        res.end(body);
      },
    );
  };
}
