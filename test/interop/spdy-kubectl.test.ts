/**
 * Interop of our SPDY core with real kubectl (client-go + moby/spdystream): a small SPDY exec
 * server built on src/spdy answers kubectl the way a CRI streaming server does (docs/protocols.md §2.1,
 * §3.2, §3.7). Both directions of the wire are tapped with our own parser so that the tests can
 * say which frames kubectl sent and which we answered.
 *
 * kubectl first asks for /api, /apis, /api/v1 (discovery) and the pod (to pick the container);
 * those get minimal JSON. Commands the server understands:
 *   cat            echo stdin to stdout; on stdin FIN: Success status, then close the CRI way
 *                  (RST_STREAM CANCEL on every stream, GOAWAY, TCP close)
 *   exit N         status for exit code N (Success for 0), then close the CRI way
 *   … fin          instead of closing: FIN our side of every stream and let kubectl end the session
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import {
  HEADER_ACCEPTED_PROTOCOLS,
  HEADER_STREAM_PROTOCOL,
  headerHasToken,
  negotiate,
  SPDY_REMOTECOMMAND_SERVER,
  splitProtocolHeader,
  UPGRADE_SPDY,
} from '../../src/k8s/protocols.js';
import { encodeStatus, exitCodeStatus, successStatus } from '../../src/k8s/status.js';
import { RstStatus } from '../../src/spdy/constants.js';
import { type FrameHandler, FrameParser } from '../../src/spdy/frame-parser.js';
import { HeaderDecompressor } from '../../src/spdy/header-block.js';
import { SpdySession, type SpdySessionError, type SpdyStream } from '../../src/spdy/session.js';
import { type KubectlVersion, makeKubeEnv, runKubectl } from '../support/kubectl.js';
import { waitFor, withTimeout } from '../support/wait.js';

type Frame = [kind: string, id: number, detail?: number | string];

/** Records the frames of one direction of a SPDY connection (DATA reduced to byte counts). */
class Tap implements FrameHandler {
  readonly frames: Frame[] = [];
  readonly parser = new FrameParser(this, new HeaderDecompressor(1 << 20, 256), {
    maxControlFrameSize: 1 << 24,
  });
  onData(id: number, payload: Buffer, fin: boolean) {
    const last = this.frames.at(-1);
    if (last?.[0] === 'data' && last[1] === id) last[2] = (last[2] as number) + payload.length;
    else this.frames.push(['data', id, payload.length]);
    if (fin) this.frames.push(['fin', id]);
  }
  onSynStream(id: number, _a: number, _p: number, _f: number, headers: Record<string, string>) {
    this.frames.push(['syn_stream', id, headers['streamtype'] ?? '']);
  }
  onSynReply(id: number) {
    this.frames.push(['syn_reply', id]);
  }
  onRstStream(id: number, status: number) {
    this.frames.push(['rst', id, status]);
  }
  onPing(id: number) {
    this.frames.push(['ping', id]);
  }
  onGoAway(last: number, status: number) {
    this.frames.push(['goaway', last, status]);
  }
  onIgnoredFrame(type: number) {
    this.frames.push(['ignored', type]);
  }
  onError(err: Error) {
    this.frames.push(['tap-error', 0, err.message]);
  }
  of(kind: string): Frame[] {
    return this.frames.filter((f) => f[0] === kind);
  }
}

interface ExecRecord {
  offered: string[];
  protocol: string;
  query: URLSearchParams;
  session: SpdySession;
  /** Frames kubectl sent (in) and we sent (out). */
  inbound: Tap;
  outbound: Tap;
  streams: Map<string, SpdyStream>;
  /** Settles with the session's close error (undefined: a clean end). */
  closed: Promise<SpdySessionError | undefined>;
  goaways: [number, number][];
}

interface ExecServer {
  url: string;
  /** Plain requests and upgrades, as "METHOD path". */
  log: string[];
  execs: ExecRecord[];
  close(): Promise<void>;
}

const POD = {
  kind: 'Pod',
  apiVersion: 'v1',
  metadata: { name: 'x', namespace: 'default' },
  spec: { containers: [{ name: 'c', image: 'busybox' }] },
  status: { phase: 'Running' },
};

/** The plain API answers kubectl needs before an exec (found by logging its requests). */
const API: Record<string, unknown> = {
  '/api': { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] },
  '/apis': { kind: 'APIGroupList', apiVersion: 'v1', groups: [] },
  '/api/v1': {
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: [{ name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list'] }],
  },
  '/api/v1/namespaces/default/pods/x': POD,
};
const NOT_FOUND = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  reason: 'NotFound',
  code: 404,
};

function answerApi(req: IncomingMessage, res: ServerResponse): void {
  const body = API[new URL(req.url ?? '/', 'http://x').pathname];
  res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body ?? NOT_FOUND));
}

function refuse(socket: Socket, status: string, headers: string[], body: string): void {
  socket.end(
    [
      `HTTP/1.1 ${status}`,
      'Content-Type: text/plain',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...headers,
    ]
      .join('\r\n')
      .concat('\r\n\r\n', body),
  );
}

async function startExecServer(): Promise<ExecServer> {
  const log: string[] = [];
  const execs: ExecRecord[] = [];
  const server = http.createServer((req, res) => {
    log.push(`${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`);
    answerApi(req, res);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    log.push(`UPGRADE ${req.method} ${url.pathname} ${req.headers.upgrade}`);
    socket.on('error', () => {});
    // docs/protocols.md §2.1: the first client protocol the server supports wins
    const offered = splitProtocolHeader(req.headers[HEADER_STREAM_PROTOCOL]);
    const protocol = negotiate(offered, SPDY_REMOTECOMMAND_SERVER);
    if (
      !headerHasToken(req.headers.upgrade, UPGRADE_SPDY) ||
      !headerHasToken(req.headers.connection, 'upgrade')
    ) {
      refuse(socket, '400 Bad Request', [], 'unable to upgrade: missing upgrade headers in request');
      return;
    }
    if (offered.length === 0) {
      refuse(socket, '400 Bad Request', [], `unable to upgrade: header ${HEADER_STREAM_PROTOCOL} missing`);
      return;
    }
    if (protocol === undefined) {
      const accepted = SPDY_REMOTECOMMAND_SERVER.map((p) => `${HEADER_ACCEPTED_PROTOCOLS}: ${p}`);
      refuse(socket, '403 Forbidden', accepted, 'unable to upgrade: unable to negotiate protocol');
      return;
    }
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${UPGRADE_SPDY}\r\n` +
        `X-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
    );
    const inbound = new Tap();
    const outbound = new Tap();
    inbound.parser.write(head);
    socket.on('data', (d: Buffer) => inbound.parser.write(d));
    const write = socket.write.bind(socket) as (chunk: Buffer) => boolean;
    socket.write = ((chunk: Buffer, ...rest: unknown[]) => {
      outbound.parser.write(chunk);
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof socket.write;

    const session = new SpdySession(socket, { role: 'server', head });
    const record: ExecRecord = {
      offered,
      protocol,
      query: url.searchParams,
      session,
      inbound,
      outbound,
      streams: new Map(),
      closed: once(session, 'close').then(([e]) => e as SpdySessionError | undefined),
      goaways: [],
    };
    execs.push(record);
    session.on('goaway', (last, status) => record.goaways.push([last, status]));
    // §3.2: the expected streams come from the query, not from what arrives
    const q = url.searchParams;
    const on = (k: string) => q.get(k) === 'true';
    const expected = 1 + +on('stdin') + +on('stdout') + +(on('stderr') && !on('tty')) + +(on('tty') ? 1 : 0);
    session.on('stream', (stream) => {
      stream.reply();
      record.streams.set(stream.streamType ?? '', stream);
      if (record.streams.size === expected) run(record);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    log,
    execs,
    close: async () => {
      for (const e of execs) e.session.destroy();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** The "container": what happens once every expected stream exists. */
function run(rec: ExecRecord): void {
  const command = rec.query.getAll('command');
  const { streams, session } = rec;
  const error = streams.get('error')!;
  const stdin = streams.get('stdin');
  const stdout = streams.get('stdout');
  const finish = command.at(-1) === 'fin';
  const end = (status: Buffer) => {
    if (finish) {
      // leave the end of the session to kubectl
      for (const s of streams.values()) if (s !== stdin && s !== error) s.end();
      error.end(status);
      return;
    }
    error.write(status, () => session.close()); // the CRI way: RST CANCEL all, GOAWAY, TCP close
  };
  if (command[0] === 'exit') {
    const code = Number(command[1]);
    end(encodeStatus(code === 0 ? successStatus() : exitCodeStatus(code, command)));
    return;
  }
  if (command[0] === 'cat' && stdin && stdout) {
    stdin.pipe(stdout, { end: false });
    stdin.once('end', () => end(encodeStatus(successStatus())));
    return;
  }
  end(encodeStatus(exitCodeStatus(127, command)));
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function setup(t: { after(fn: () => unknown): void }) {
  const server = await startExecServer();
  const kube = await makeKubeEnv(server.url);
  t.after(async () => {
    await server.close();
    await kube.cleanup();
  });
  return { server, kube };
}

const SPDY_ONLY = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' };

for (const [version, extraEnv] of [
  ['1.27', {}],
  ['1.33', SPDY_ONLY],
] as [KubectlVersion, NodeJS.ProcessEnv][]) {
  test(`kubectl ${version}: exec -i … -- cat with 50 MB of random stdin comes back sha256-equal, exit 0`, async (t) => {
    const { server, kube } = await setup(t);
    const input = randomBytes(50 * 1000 * 1000);
    const r = await runKubectl(version, ['exec', '-i', 'x', '--', 'cat'], {
      env: kube.env,
      extraEnv,
      input,
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, input.length);
    assert.equal(sha(r.stdout), sha(input));

    assert.equal(server.execs.length, 1);
    const exec = server.execs[0]!;
    // §2.1: kubectl ≤ 1.28 offers v4 first, ≥ 1.29 v5 first (also over SPDY); we answer v4
    assert.equal(exec.offered[0], version === '1.27' ? 'v4.channel.k8s.io' : 'v5.channel.k8s.io');
    assert.equal(exec.protocol, 'v4.channel.k8s.io');
    assert.deepEqual(server.log.at(-1), 'UPGRADE POST /api/v1/namespaces/default/pods/x/exec SPDY/3.1');
    // §3.2: error, stdin, stdout, stderr, in that order, each waiting for our SYN_REPLY
    assert.deepEqual(exec.inbound.of('syn_stream'), [
      ['syn_stream', 1, 'error'],
      ['syn_stream', 3, 'stdin'],
      ['syn_stream', 5, 'stdout'],
      ['syn_stream', 7, 'stderr'],
    ]);
    assert.deepEqual(
      exec.outbound.of('syn_reply').map((f) => f[1]),
      [1, 3, 5, 7],
    );
    assert.deepEqual(exec.inbound.of('fin'), [['fin', 3]], 'stdin EOF is a FIN on the stdin stream');
    // closed the CRI way, in this order: status, RST CANCEL on every stream, GOAWAY
    const tail = exec.outbound.frames.filter((f) => f[0] !== 'data' || f[1] === 1).slice(-6);
    assert.deepEqual(tail, [
      ['data', 1, 34],
      ['rst', 1, RstStatus.CANCEL],
      ['rst', 3, RstStatus.CANCEL],
      ['rst', 5, RstStatus.CANCEL],
      ['rst', 7, RstStatus.CANCEL],
      ['goaway', 7, 0],
    ]);
    assert.equal(await withTimeout(exec.closed, 5000, 'session close'), undefined);
    assert.deepEqual(exec.inbound.of('tap-error'), []);
  });

  test(`kubectl ${version}: a non-zero exit status gives kubectl's exit code; 0 gives 0`, async (t) => {
    const { kube } = await setup(t);
    const r = await runKubectl(version, ['exec', 'x', '--', 'exit', '3'], { env: kube.env, extraEnv });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /command terminated with exit code 3/);
    const r255 = await runKubectl(version, ['exec', 'x', '--', 'exit', '255'], { env: kube.env, extraEnv });
    assert.equal(r255.code, 255, r255.stderr);
    const ok = await runKubectl(version, ['exec', 'x', '--', 'exit', '0'], { env: kube.env, extraEnv });
    assert.equal(ok.code, 0, ok.stderr);
  });

  test(`kubectl ${version}: kubectl's own RST_STREAM/GOAWAY at exit end our session cleanly`, async (t) => {
    const { server, kube } = await setup(t);
    const r = await runKubectl(version, ['exec', '-i', 'x', '--', 'cat', 'fin'], {
      env: kube.env,
      extraEnv,
      input: 'hello\n',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'hello\n');
    const exec = server.execs[0]!;
    assert.equal(await withTimeout(exec.closed, 5000, 'session close'), undefined);
    // measured: kubectl resets the streams whose sending side it never closed, then says GOAWAY
    const rsts = exec.inbound.of('rst');
    assert.deepEqual(
      rsts.map((f) => f[1]).sort((a, b) => a - b),
      [1, 5, 7],
      JSON.stringify(exec.inbound.frames),
    );
    assert.ok(rsts.every((f) => f[2] === RstStatus.CANCEL));
    assert.deepEqual(exec.inbound.frames.at(-1), ['goaway', 0, 0]);
    assert.deepEqual(exec.goaways, [[0, 0]]);
    assert.deepEqual(exec.outbound.of('rst'), [], 'we reset nothing: kubectl ended the session');
  });
}

test('kubectl 1.27: PINGs every 5 s reach us and are echoed unchanged on the wire', async (t) => {
  const { server, kube } = await setup(t);
  // stdin stays open 6.5 s: the session lives past kubectl's first ping
  async function* slowInput() {
    for (let i = 0; i < 13; i++) {
      yield Buffer.from(`tick ${i}\n`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const r = await runKubectl('1.27', ['exec', '-i', 'x', '--', 'cat'], {
    env: kube.env,
    input: Readable.from(slowInput()),
    timeoutMs: 30_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.toString().split('\n').length, 14);
  const exec = server.execs[0]!;
  const pings = exec.inbound.of('ping').map((f) => f[1]);
  assert.ok(pings.length >= 1, `kubectl pinged ${pings.length} times`);
  assert.ok(
    pings.every((id) => id % 2 === 1),
    'client ping ids are odd',
  );
  await waitFor('echoes', () => exec.outbound.of('ping').length >= pings.length, 2000);
  assert.deepEqual(
    exec.outbound.of('ping').map((f) => f[1]),
    pings,
    'every PING echoed with its id',
  );
});
