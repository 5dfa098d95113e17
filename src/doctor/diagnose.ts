/**
 * What an upstream's answer to a streaming upgrade proves about the path (docs/protocols.md §2, §5.1,
 * §9, §10.2). Every answer is read the way kubectl would meet it, and named by what produced it:
 * the API server (a JSON Status), a kubelet or CRI streaming server (Go's plain-text errors, x/net's
 * empty 403), or something in between (anything else, often with a Server header).
 *
 * One limit shapes the doctor: the API server looks the pod up before it looks at the upgrade
 * (kubernetes `pkg/registry/core/pod/rest/subresources.go`: Connect → ExecLocation → the upgrade-aware
 * handler). So a 404 for a pod that does not exist proves that the request reached the API server
 * with working credentials, and nothing about the upgrade: a hop that stripped `Upgrade` gets the
 * same 404. Only a request for a real pod can show `400 Upgrade request required`.
 */
import type { Status } from '../k8s/status.js';
import type { Refusal } from '../upstream/dial.js';

export type Verdict = 'pass' | 'fail' | 'reached';
export type Transport = 'spdy' | 'websocket';
export type StreamSubresource = 'exec' | 'portforward';

export interface Reading {
  verdict: Verdict;
  /** The answer in a few words: status and message, or the header that is missing. */
  answer: string;
  /** What it shows about the path, for the notes under the table. */
  why?: string;
}

/** The pod a probe asked for; `named`: the user said it exists. */
export interface AskedPod {
  name: string;
  namespace: string;
  named: boolean;
}

/** Read a non-101 answer. */
export function readRefusal(
  transport: Transport,
  subresource: StreamSubresource,
  refusal: Refusal,
  pod: AskedPod,
): Reading {
  const podNamed = pod.named;
  const code = refusal.statusCode;
  const status = apiStatusOf(refusal.body);
  const protocolName = transport === 'spdy' ? 'SPDY' : 'WebSocket';
  if (status) {
    const answer = `${code} ${oneLine(status.message ?? status.reason ?? '')}`.trim();
    const subprotocol = /accepted the WebSocket with an invalid protocol.*got "(.*)"/.exec(
      status.message ?? '',
    );
    if (subprotocol) {
      // dial.ts turns a 101 that names none of the offered subprotocols into this refusal (§2.2)
      const got = subprotocol[1] ?? '';
      return {
        verdict: 'fail',
        answer: got ? `101 with Sec-WebSocket-Protocol "${got}"` : '101 without Sec-WebSocket-Protocol',
        why: 'the WebSocket upgrade got through but the subprotocol was dropped or changed on the way back; client-go rejects such an answer and falls back to SPDY',
      };
    }
    if (code === 401)
      return {
        verdict: 'fail',
        answer,
        why: 'the credentials were refused: check --kubeconfig/--context (kubectl gets the same answer)',
      };
    if (/Upgrade request required/i.test(status.message ?? ''))
      return {
        verdict: 'fail',
        answer,
        why: `the API server saw a plain request: a hop between here and it dropped the Upgrade and Connection headers (it does not carry ${protocolName} upgrades)`,
      };
    if (code === 404 && podNamed && status.reason === 'NotFound')
      return {
        verdict: 'fail',
        answer: `404 pod "${pod.name}" not found`,
        why: `pod ${pod.name} not found in namespace ${pod.namespace} (use -n)`,
      };
    if (code === 404 && !podNamed)
      return {
        verdict: 'reached',
        answer,
        why: 'the request reached the API server, which looks the pod up before it looks at the upgrade; whether the upgrade itself gets through is proven only with --pod',
      };
    if (code === 403 && status.reason === 'Forbidden')
      return {
        verdict: 'fail',
        answer,
        why: `RBAC refused it: ${subresource === 'exec' ? 'pods/exec' : 'pods/portforward'} needs create (and get too, for WebSocket before Kubernetes 1.35)`,
      };
    return { verdict: 'fail', answer, why: 'the API server refused the request itself' };
  }

  const text = oneLine(refusal.body.toString('utf8'));
  const server = headerOf(refusal, 'server');
  const accepted = headerValues(refusal, 'x-accepted-stream-protocol-versions');
  if (accepted.length > 0)
    return {
      verdict: 'fail',
      answer: `${code} no common protocol (server accepts ${accepted.join(', ')})`,
      why: 'the streaming server speaks none of the offered protocol versions',
    };
  if (/query parameter "port" is required/.test(text))
    return {
      verdict: 'fail',
      answer: `${code} ${text}`,
      why: 'the API server has no port-forward tunnel (before 1.31, or PortForwardWebsockets off) and relayed the WebSocket to the kubelet, which wants ports= (kubernetes#133913); kubectl falls back to SPDY',
    };
  if (/X-Stream-Protocol-Version/i.test(text))
    return {
      verdict: 'fail',
      answer: `${code} ${text}`,
      why: 'a hop dropped the X-Stream-Protocol-Version header of the request',
    };
  if (transport === 'websocket' && code === 403 && text === '' && !server)
    return {
      verdict: 'fail',
      answer: '403 with an empty body',
      why:
        subresource === 'exec'
          ? "a WebSocket server without v5.channel.k8s.io refused it (x/net's answer): an API server before 1.30, or with TranslateStreamCloseWebsocketRequests off, relays WebSocket to the CRI, which has no v5; kubectl falls back to SPDY"
          : "a WebSocket server without the port-forward tunnel refused it (x/net's answer): the API server has no tunnel for SPDY/3.1+portforward.k8s.io; kubectl falls back to SPDY",
    };
  const from = server ? ` from ${server}` : '';
  return {
    verdict: 'fail',
    answer: `${code}${text ? ` ${text}` : ' with an empty body'}${from}`,
    why: `not a Kubernetes Status: ${server ? `${server} answered` : 'a proxy or load balancer in the path, or a kubelet, answered'} instead of the API server`,
  };
}

/** Read a 101 to a SPDY upgrade: client-go needs both headers (docs/protocols.md §2.1). */
export function readSpdyUpgrade(
  headers: Record<string, string | string[] | undefined>,
  subresource: StreamSubresource,
): Reading | undefined {
  const upgrade = first(headers['upgrade']);
  if (!/(^|[\s,])spdy\/3\.1($|[\s,])/i.test(upgrade))
    return {
      verdict: 'fail',
      answer: `101 without Upgrade: SPDY/3.1${upgrade ? ` (got "${upgrade}")` : ''}`,
      why: 'a hop rewrote the upgrade answer; client-go refuses it (unable to upgrade connection)',
    };
  if (!first(headers['x-stream-protocol-version']))
    return {
      verdict: 'fail',
      answer: '101 without X-Stream-Protocol-Version',
      why:
        subresource === 'exec'
          ? 'a hop dropped the negotiated version from the answer: kubectl would run the session with v1 semantics (no exit codes, no resize)'
          : 'a hop dropped the negotiated version from the answer: kubectl port-forward fails with "unable to negotiate protocol"',
    };
  return undefined;
}

/** An error thrown before any answer: the connection, TLS, silence, or a broken WebSocket handshake. */
export function readDialError(err: Error & { code?: string }, timeoutMs: number, url: URL): Reading {
  const message = oneLine(err.message);
  const at = `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
  if (err.code === 'ECONNREFUSED')
    return {
      verdict: 'fail',
      answer: `nothing listens at ${at}`,
      why: 'the connection was refused: is the API server (or the next hop) running, and is this its address and port?',
    };
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN')
    return {
      verdict: 'fail',
      answer: `no such host ${url.hostname}`,
      why: 'the name does not resolve from here: check the server address (or DNS)',
    };
  if (url.protocol === 'https:' && /wrong version number|packet length too long|http request/i.test(message))
    return {
      verdict: 'fail',
      answer: `${at} answers in plain HTTP, not TLS`,
      why: `https:// was given for a plain-HTTP port: use ${withScheme(url, 'http:')}`,
    };
  // dial.ts's own timeout, and ws's
  if (/did not answer|handshake has timed out/i.test(message))
    return {
      verdict: 'fail',
      answer: `no answer within ${timeoutMs} ms`,
      why: 'the connection was accepted and nothing came back: a firewall that swallows the traffic, or a proxy that holds the request',
    };
  if (/Sec-WebSocket-Accept|Upgrade header|Connection header/i.test(message))
    return {
      verdict: 'fail',
      answer: `101 but ${message}`,
      why: 'a hop answered the WebSocket upgrade but broke its handshake headers',
    };
  return {
    verdict: 'fail',
    answer: `no answer: ${message}`,
    why: 'the upstream could not be reached this way',
  };
}

/** The reading for an http:// URL whose port speaks TLS (found by scheme.ts). */
export function plainToTls(url: URL): Reading {
  return {
    verdict: 'fail',
    answer: `${url.hostname}:${url.port || 80} speaks TLS, not plain HTTP`,
    why: `http:// was given for a TLS port: use ${withScheme(url, 'https:')}`,
  };
}

/** What a Go server answers to plain HTTP on a TLS port. */
export function isPlainToTlsAnswer(refusal: Refusal): boolean {
  return refusal.statusCode === 400 && /HTTP request to an HTTPS server/i.test(refusal.body.toString('utf8'));
}

function withScheme(url: URL, protocol: 'http:' | 'https:'): string {
  const u = new URL(url.href);
  u.protocol = protocol;
  return u.href.replace(/\/$/, '');
}

function apiStatusOf(body: Buffer): Status | undefined {
  if (body.length === 0 || body[0] !== 0x7b) return undefined;
  try {
    const s = JSON.parse(body.toString('utf8')) as Status;
    return s && typeof s === 'object' && s.kind === 'Status' ? s : undefined;
  } catch {
    return undefined;
  }
}

export function headerValues(refusal: Refusal, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < refusal.rawHeaders.length; i += 2) {
    if (refusal.rawHeaders[i]!.toLowerCase() === name) out.push(refusal.rawHeaders[i + 1]!);
  }
  return out;
}

export function headerOf(refusal: Refusal, name: string): string | undefined {
  return headerValues(refusal, name)[0];
}

function first(v: string | string[] | undefined): string {
  return (Array.isArray(v) ? v[0] : v)?.trim() ?? '';
}

/** A body as one short line: HTML tags and runs of whitespace collapsed, at most 120 characters. */
export function oneLine(s: string): string {
  const line = s
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}

/** True when a Via value names a kubeshim (server/via.ts writes `1.1 kubeshim`; any protocol version counts). */
export function viaNamesKubeshim(value: string | undefined): boolean {
  return value !== undefined && /(^|,)\s*[^,\s]+\s+kubeshim\b/i.test(value);
}
