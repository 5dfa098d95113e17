/**
 * Load generator: SPDY exec sessions, as client-go's SPDY executor opens them (docs/protocols.md §3.2):
 * the v5…v1 offer, streams error, stdin, stdout, stderr each after the previous one's SYN_REPLY,
 * 32 KiB DATA per stdin write, FIN for stdin EOF, PING every 5 s. Many sessions in one process.
 */
import { once } from 'node:events';
import http from 'node:http';
import { HEADER_STREAM_PROTOCOL, SPDY_REMOTECOMMAND_OFFER, UPGRADE_SPDY } from '../../src/k8s/protocols.js';
import { SpdySession } from '../../src/spdy/session.js';
import { dialUpgrade } from '../../src/upstream/dial.js';
import { CLIENT_PING_MS, type OpenExec, serveExecClient } from '../lib/exec-client.js';
import { execPath } from '../lib/wire.js';

const agent = new http.Agent();

const openSpdyExec: OpenExec = async (base, program, onStdout) => {
  const dialed = await dialUpgrade(
    { url: new URL(base), agent },
    'POST',
    execPath(program),
    { connection: 'Upgrade', upgrade: UPGRADE_SPDY, [HEADER_STREAM_PROTOCOL]: SPDY_REMOTECOMMAND_OFFER },
    { handshakeTimeoutMs: 60_000 },
  );
  if (!dialed.ok) throw new Error(`exec refused: ${dialed.refusal.statusCode} ${dialed.refusal.body}`);
  const session = new SpdySession(dialed.socket, {
    role: 'client',
    head: dialed.head,
    pingIntervalMs: CLIENT_PING_MS,
  });
  const status: Buffer[] = [];
  const error = await session.openStream({ streamtype: 'error' });
  error.on('data', (chunk: Buffer) => status.push(chunk));
  const stdin = program.kind === 'source' ? undefined : await session.openStream({ streamtype: 'stdin' });
  const stdout = await session.openStream({ streamtype: 'stdout' });
  stdout.on('data', onStdout);
  const stderr = await session.openStream({ streamtype: 'stderr' });
  stderr.resume();
  const ended = Promise.all([once(error, 'end'), once(stdout, 'end'), once(stderr, 'end')]).then(() => {
    if (session.failure) throw new Error(`SPDY session failed: ${session.failure.message}`);
    return Buffer.concat(status).toString();
  });
  ended.catch(() => {}); // awaited by the caller; a failure before that must not end the process
  return {
    writeStdin: (chunk) => (stdin!.write(chunk) ? undefined : once(stdin!, 'drain').then(() => {})),
    closeStdin: () => stdin!.end(),
    pauseStdout: () => stdout.pause(),
    resumeStdout: () => stdout.resume(),
    ended,
  };
};

serveExecClient(openSpdyExec);
