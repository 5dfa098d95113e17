/**
 * An http:// upstream whose port speaks TLS: a TLS server hangs up on plain HTTP (Node) or answers
 * 400 (Go), neither of which names the mix-up. A TLS handshake to the same port settles it; its
 * certificate is not checked, only whether TLS is spoken at all.
 */
import { connect } from 'node:tls';

export function speaksTls(url: URL, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 80),
      servername: undefined,
      rejectUnauthorized: false,
    });
    const done = (tls: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(tls);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}
