/** A plain-HTTP GET on a connection of its own (no keep-alive: node:cluster hands each new connection to the next worker). */
import http, { type OutgoingHttpHeaders } from 'node:http';

export function httpGet(
  url: string,
  opts: { headers?: OutgoingHttpHeaders; timeoutMs?: number } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`no answer from ${url}`)));
    req.on('error', reject);
  });
}
