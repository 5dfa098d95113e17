/**
 * Protocol names and negotiation rules of Kubernetes streaming (docs/protocols.md §2, §3, §4, §10.3).
 * Shared by the emulator, the server's classifier and the bridges: one place for each fact.
 */

export const UPGRADE_SPDY = 'SPDY/3.1';
export const HEADER_STREAM_PROTOCOL = 'x-stream-protocol-version';
export const HEADER_ACCEPTED_PROTOCOLS = 'x-accepted-stream-protocol-versions';

/** Remotecommand protocols, newest first (the order client-go offers them over SPDY). */
export const RC_V5 = 'v5.channel.k8s.io';
export const RC_V4 = 'v4.channel.k8s.io';
export const RC_V3 = 'v3.channel.k8s.io';
export const RC_V2 = 'v2.channel.k8s.io';
export const RC_V1 = 'channel.k8s.io';
export const RC_BASE64 = 'base64.channel.k8s.io';
export const RC_V4_BASE64 = 'v4.base64.channel.k8s.io';

export const PORTFORWARD = 'portforward.k8s.io';
/** Tunnelled port-forward subprotocol prefix (§4.3): `SPDY/3.1+portforward.k8s.io`. */
export const TUNNEL_PREFIX = 'SPDY/3.1+';
export const TUNNEL_PORTFORWARD = TUNNEL_PREFIX + PORTFORWARD;

/** What client-go offers over SPDY for exec/attach (kubectl ≥ 1.29 adds v5 in front). */
export const SPDY_REMOTECOMMAND_OFFER = [RC_V5, RC_V4, RC_V3, RC_V2, RC_V1];
/** What a CRI server accepts over SPDY (no v5 over SPDY anywhere, §2.1). */
export const SPDY_REMOTECOMMAND_SERVER = [RC_V4, RC_V3, RC_V2, RC_V1];
/** Legacy WebSocket remotecommand protocols of the CRI server, in its preference order (§2.2). */
export const WS_LEGACY_REMOTECOMMAND = [RC_V1, RC_BASE64, RC_V4, RC_V4_BASE64];
/** Legacy WebSocket port-forward protocols of the CRI server (plain channel.k8s.io is not accepted, §4.2). */
export const WS_LEGACY_PORTFORWARD = [RC_V4, RC_V4_BASE64];

/** Semantics of one remotecommand protocol version. */
export interface RemoteCommandVersion {
  name: string;
  /** 1..5 */
  version: number;
  /** Error stream carries a JSON metav1.Status (v4, v5) rather than plain text on failure only. */
  jsonStatus: boolean;
  /** A resize stream exists over SPDY (v3+). */
  resize: boolean;
  /** stdin half-close can be signalled: SPDY FIN (v2+) or WS CLOSE (v5 only). */
  spdyHalfClose: boolean;
  /** WebSocket text frames with base64 payloads. */
  base64: boolean;
  /** WebSocket v5 CLOSE message `[255, ch]`. */
  wsClose: boolean;
}

const VERSIONS: Record<string, RemoteCommandVersion> = {
  [RC_V5]: {
    name: RC_V5,
    version: 5,
    jsonStatus: true,
    resize: true,
    spdyHalfClose: true,
    base64: false,
    wsClose: true,
  },
  [RC_V4]: {
    name: RC_V4,
    version: 4,
    jsonStatus: true,
    resize: true,
    spdyHalfClose: true,
    base64: false,
    wsClose: false,
  },
  [RC_V3]: {
    name: RC_V3,
    version: 3,
    jsonStatus: false,
    resize: true,
    spdyHalfClose: true,
    base64: false,
    wsClose: false,
  },
  [RC_V2]: {
    name: RC_V2,
    version: 2,
    jsonStatus: false,
    resize: false,
    spdyHalfClose: true,
    base64: false,
    wsClose: false,
  },
  [RC_V1]: {
    name: RC_V1,
    version: 1,
    jsonStatus: false,
    resize: false,
    spdyHalfClose: false,
    base64: false,
    wsClose: false,
  },
  [RC_BASE64]: {
    name: RC_BASE64,
    version: 1,
    jsonStatus: false,
    resize: false,
    spdyHalfClose: false,
    base64: true,
    wsClose: false,
  },
  [RC_V4_BASE64]: {
    name: RC_V4_BASE64,
    version: 4,
    jsonStatus: true,
    resize: true,
    spdyHalfClose: false,
    base64: true,
    wsClose: false,
  },
};

export function remoteCommandVersion(name: string): RemoteCommandVersion | undefined {
  return VERSIONS[name];
}

/** The WebSocket subprotocol browsers carry a bearer token in (its base64url follows the prefix). */
export const BEARER_SUBPROTOCOL = 'base64url.bearer.authorization.k8s.io.';

/**
 * Split header values the way apimachinery does (§2.1): every line, comma-separated, trimmed,
 * empties dropped. Accepts what Node gives for a header: undefined, a string, or an array of lines.
 */
export function splitProtocolHeader(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const lines = Array.isArray(value) ? value : [value];
  const out: string[] = [];
  for (const line of lines) {
    for (const part of line.split(',')) {
      const p = part.trim();
      if (p) out.push(p);
    }
  }
  return out;
}

/** The first client protocol (client order) that the server supports wins (§2.1). */
export function negotiate(
  clientOffer: readonly string[],
  serverSupports: readonly string[],
): string | undefined {
  return clientOffer.find((p) => serverSupports.includes(p));
}

/** True when a comma/space separated header (Connection, Upgrade) contains the token, case-insensitively. */
export function headerHasToken(value: string | string[] | undefined, token: string): boolean {
  const want = token.toLowerCase();
  return splitProtocolHeader(value).some((t) => t.toLowerCase() === want);
}
