/**
 * A streaming request as Kubernetes defines it: the pod subresource it is for, the protocol the
 * client speaks, and the streams its query promises (docs/protocols.md §1.1, §2). The server's
 * classifier makes one; the bridges, the recorder and the emulator read it.
 */
import type { RequestTarget } from './canonical-target.js';

export type Subresource = 'exec' | 'attach' | 'portforward';

export type ClientProtocol =
  | { kind: 'spdy'; offered: string[] }
  /** `bearerToken`: from a `base64url.bearer.authorization.k8s.io.` subprotocol (browsers, §1.3). */
  | { kind: 'websocket'; offered: string[]; bearerToken?: string };

export interface StreamRequest {
  subresource: Subresource;
  namespace: string;
  pod: string;
  /** The request's canonical target (canonical-target.ts). */
  target: RequestTarget;
  query: URLSearchParams;
  client: ClientProtocol;
}

/** Which streams an exec/attach session has, from its query (§1.1; the CRI counts from the query too). */
export interface ExecStreams {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** Go's strconv.ParseBool truths, which is how the apiserver reads these parameters. */
function queryBool(q: URLSearchParams, name: string): boolean {
  return ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(q.get(name) ?? '');
}

export function execStreams(q: URLSearchParams): ExecStreams {
  const tty = queryBool(q, 'tty');
  return {
    stdin: queryBool(q, 'stdin'),
    stdout: queryBool(q, 'stdout'),
    // with a TTY stderr is merged into stdout and never gets a stream (§3.1)
    stderr: queryBool(q, 'stderr') && !tty,
    tty,
  };
}
