/** Any other upgrade (a WebSocket watch, logs over WebSocket …): relayed as it is, never translated. */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { relay } from '../bridge/relay.js';
import { SessionRecord } from '../bridge/session-record.js';
import type { UpgradeResult } from '../upstream/dial.js';
import { credentialPolicy } from '../upstream/headers.js';
import { CLIENT_CLOSED, ClientGone, headerValue, type SessionSettings } from './attempts/context.js';
import { relayHandshake } from './attempts/pass-through.js';
import { replyRefusal } from './http-answers.js';
import { requestTarget } from './request-target.js';

export async function relayOtherUpgrade(
  settings: SessionSettings,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  const trail = await settings.recorder?.open(req, undefined);
  const policy = await credentialPolicy(settings.target, settings.log);
  const target = requestTarget(req);
  let r: UpgradeResult;
  try {
    r = await relayHandshake(settings, req, socket, target, policy);
  } catch (err) {
    if (!(err instanceof ClientGone)) throw err;
    settings.log.info({ path: target.path }, err.message);
    socket.destroy(); // a client that only ended its side would hold it half-open
    trail?.rejected(CLIENT_CLOSED, err.message);
    return;
  }
  if (!r.ok) {
    trail?.rejected(r.refusal.statusCode, 'the upstream refused the upgrade');
    replyRefusal(socket, r.refusal);
    return;
  }
  const protocol = headerValue(req.headers.upgrade) || 'upgrade';
  const record = new SessionRecord(
    { subresource: 'other', client: protocol, upstream: protocol, mode: 'relay', namespace: '', pod: '' },
    settings.log,
    undefined,
    settings.active,
  );
  record.note('path', target.path);
  trail?.attach(record);
  void relay({ client: socket, upstream: r.socket, clientHead: head, upstreamHead: r.head }, record).then(
    (reason) => record.finish(reason),
  );
}
