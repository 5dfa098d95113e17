/**
 * The SPDY upgrade as the CRI streaming server answers it (docs/protocols.md §2.1): apimachinery's
 * `Handshake` on X-Stream-Protocol-Version (every line, comma-split; the first client protocol the
 * server supports wins), then the SPDY upgrader's header check, then the 101 that echoes the
 * negotiated protocol.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { HEADER_STREAM_PROTOCOL, negotiate, splitProtocolHeader, UPGRADE_SPDY } from '../k8s/protocols.js';

export interface SpdyRefusal {
  code: number;
  message: string;
  headers: [name: string, value: string][];
}

export type SpdyNegotiation = { ok: true; protocol: string } | ({ ok: false } & SpdyRefusal);

/** Go's `%v` of a []string. */
const goList = (list: readonly string[]) => `[${list.join(' ')}]`;

export function negotiateSpdy(req: IncomingMessage, serverProtocols: readonly string[]): SpdyNegotiation {
  const offered = splitProtocolHeader(req.headers[HEADER_STREAM_PROTOCOL]);
  if (offered.length === 0) {
    return {
      ok: false,
      code: 400,
      message: 'unable to upgrade: X-Stream-Protocol-Version is required',
      headers: [],
    };
  }
  const protocol = negotiate(offered, serverProtocols);
  if (protocol === undefined) return { ok: false, ...noCommonProtocol(offered, serverProtocols) };
  const connection = String(req.headers.connection ?? '').toLowerCase();
  const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
  if (!connection.includes('upgrade') || !upgrade.includes(UPGRADE_SPDY.toLowerCase())) {
    return {
      ok: false,
      code: 400,
      message: `unable to upgrade: missing upgrade headers in request: Connection=${JSON.stringify(req.headers.connection ?? '')} Upgrade=${JSON.stringify(req.headers.upgrade ?? '')}`,
      headers: [],
    };
  }
  return { ok: true, protocol };
}

/** The 403 of apimachinery's Handshake when no offered protocol is supported. */
export function noCommonProtocol(
  offered: readonly string[],
  serverProtocols: readonly string[],
): SpdyRefusal {
  return {
    code: 403,
    message: `unable to upgrade: unable to negotiate protocol: client supports ${goList(offered)}, server accepts ${goList(serverProtocols)}`,
    headers: serverProtocols.map((p) => ['X-Accepted-Stream-Protocol-Versions', p]),
  };
}

/**
 * The 101 that echoes the negotiated protocol: without it client-go assumes v1 (§2.1). `extraLines`:
 * more header lines, each ending in CRLF.
 */
export function spdyUpgradeResponse(protocol: string, extraLines = ''): string {
  return `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${UPGRADE_SPDY}\r\nX-Stream-Protocol-Version: ${protocol}\r\n${extraLines}\r\n`;
}

export function acceptSpdy(socket: Duplex, protocol: string): void {
  socket.write(spdyUpgradeResponse(protocol));
}
