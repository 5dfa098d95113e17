/**
 * exec/attach over a Kubernetes WebSocket, served the way `wsstream.Conn` serves it (docs/protocols.md
 * §3.3): the legacy protocols of the CRI server and v5 of the apiserver's StreamTranslator.
 * Right after the handshake an empty "established" message goes to the lowest requested writable
 * channel; at the end the status goes on channel 3 (v4/v5 JSON; older: text on failure only),
 * then Close 1000. v5 adds CLOSE `[255, ch]`: it half-closes stdin; a malformed one ends the
 * session as a protocol error.
 */
import type { RawData, WebSocket } from 'ws';
import {
  CH_CLOSE,
  CH_ERROR,
  CH_RESIZE,
  CH_STDERR,
  CH_STDIN,
  CH_STDOUT,
  type ChannelMessage,
  type ChannelProtocolError,
  decodeMessage,
  parseClosePayload,
} from '../channel/codec.js';
import { sendChannel } from '../channel/send.js';
import type { RemoteCommandVersion } from '../k8s/protocols.js';
import type { Logger } from '../observe/logger.js';
import { type CommandRequest, type CommandStreams, runCommand } from './remotecommand.js';
import type { ActiveSession } from './sessions.js';
import type { StreamWants } from './spdy-command.js';
import { statusBytes } from './status-bytes.js';
import { ChannelReader, ChannelWriter } from './ws-channels.js';

const EMPTY = Buffer.alloc(0);
/** x/net closes TCP right after its Close frame; a peer that lingers is cut after this. */
const CLOSE_LINGER_MS = 1000;

export function serveWsCommand(
  ws: WebSocket,
  version: RemoteCommandVersion,
  req: CommandRequest,
  wants: StreamWants,
  session: ActiveSession,
  log: Logger,
): void {
  const base64 = version.base64;
  const stdin = wants.stdin ? new ChannelReader(ws) : undefined;
  const resize = wants.tty ? new ChannelReader(ws) : undefined;
  const stderrWanted = wants.stderr && !wants.tty;
  const io: CommandStreams = {
    stdin,
    resize,
    stdout: wants.stdout ? new ChannelWriter(ws, CH_STDOUT, base64) : undefined,
    stderr: stderrWanted ? new ChannelWriter(ws, CH_STDERR, base64) : undefined,
  };
  let protocolError: ChannelProtocolError | undefined;

  const established = wants.stdout ? CH_STDOUT : stderrWanted ? CH_STDERR : CH_ERROR;
  sendChannel(ws, established, EMPTY, base64);

  ws.on('message', (data: RawData, isBinary: boolean) => {
    let msg: ChannelMessage | null;
    try {
      // x/net takes text and binary frames alike; undecodable base64 is dropped
      msg = decodeMessage(data as Buffer, isBinary || !base64, base64);
    } catch {
      return;
    }
    if (msg === null) return;
    if (msg.channel === CH_STDIN) stdin?.feed(msg.payload);
    else if (msg.channel === CH_RESIZE) resize?.feed(msg.payload);
    else if (msg.channel === CH_CLOSE && version.wsClose) onClose(msg.payload);
  });

  const onClose = (payload: Buffer) => {
    try {
      const ch = parseClosePayload(payload);
      if (ch === CH_STDIN) stdin?.finish();
      else if (ch === CH_RESIZE) resize?.finish();
    } catch (err) {
      protocolError = err as ChannelProtocolError;
      log.info({ id: session.id, err: protocolError.message }, 'v5 protocol error; ending the session');
      ws.close(protocolError.closeCode, protocolError.message);
      session.abort();
    }
  };

  ws.on('close', () => {
    stdin?.finish();
    resize?.finish();
    session.abort();
  });
  ws.on('error', () => {});
  ws.resume(); // accepted paused (src/channel/ws-accept.ts): read once the listeners are in place

  runCommand(req, io, session.signal).then(
    (result) => {
      if (ws.readyState !== ws.OPEN) {
        session.end({
          exitCode: result.exitCode,
          closeReason: protocolError ? `protocol error: ${protocolError.message}` : 'client went away',
        });
        return;
      }
      const bytes = statusBytes(result.status, version.jsonStatus);
      if (bytes.length > 0) sendChannel(ws, CH_ERROR, bytes, base64);
      ws.close(1000);
      setTimeout(() => ws.terminate(), CLOSE_LINGER_MS).unref();
      session.end({ exitCode: result.exitCode, status: result.status.status, closeReason: 'completed' });
    },
    (err: unknown) => {
      log.error({ err, id: session.id }, 'exec session failed');
      ws.terminate();
      session.end({ closeReason: 'internal error' });
    },
  );
}
