/**
 * The Via header kubeshim adds to every answer it gives or passes on (RFC 9110 §7.6.3): proxies
 * name themselves there, so a client, and `kubeshim doctor` (doctor/diagnose.ts), can tell that a
 * kubeshim is on the path.
 * A second Via line after the upstream's own is the same list, one entry further.
 */
export const VIA = '1.1 kubeshim';

/** The header line for raw HTTP/1.1 heads written to a socket. */
export const VIA_LINE = `Via: ${VIA}\r\n`;

/** Our entry after what the upstream's answer already had. */
export function appendVia(existing: string | string[] | undefined): string {
  const before = Array.isArray(existing) ? existing.join(', ') : existing;
  return before ? `${before}, ${VIA}` : VIA;
}
