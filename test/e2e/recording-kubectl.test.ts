/**
 * Issue 14's acceptance: real kubectl (1.27, which speaks SPDY, and 1.36, WebSocket v5) runs an
 * `-it` shell, a piped exec and an attach through a recording shim, on both translation directions
 * and on both relays. Each recording is read back by the real `asciinema cat` and must show the
 * session's output and its exit status; each audit line joins its recording by session id; the
 * session line of a relayed exec carries the upstream's exit code and its true outcome.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Generation } from '../../src/emulator/index.js';
import { silentLogger } from '../../src/observe/logger.js';
import { Metrics } from '../../src/observe/metrics.js';
import { type KubectlVersion, runKubectl, runKubectlWithTty } from '../support/kubectl.js';
import { asciinemaCat, readCast, recordingChain } from '../support/recording.js';
import { waitFor } from '../support/wait.js';

/** An unsigned JWT (the emulator takes it as its token): its claims become the claimed identity. */
const JWT = [
  Buffer.from('{"alg":"none"}').toString('base64url'),
  Buffer.from(
    JSON.stringify({
      iss: 'https://issuer.test',
      sub: 'system:serviceaccount:team-a:deployer',
      'kubernetes.io': { namespace: 'team-a', serviceaccount: { name: 'deployer' } },
      exp: 4102444800,
    }),
  ).toString('base64url'),
  'c2ln',
].join('.');

interface Cell {
  name: string;
  generation: Generation;
  version: KubectlVersion;
  mode: 'translate' | 'relay';
  client: RegExp;
  upstream: RegExp;
}

const SPDY = /^spdy\/v4\.channel\.k8s\.io$/;
const WS = /^websocket\/v5\.channel\.k8s\.io$/;

const CELLS: Cell[] = [
  {
    name: 'SPDY client → WebSocket upstream',
    generation: 'websocket',
    version: '1.27',
    mode: 'translate',
    client: SPDY,
    upstream: WS,
  },
  {
    name: 'WebSocket client → SPDY upstream',
    generation: 'spdy',
    version: '1.36',
    mode: 'translate',
    client: WS,
    upstream: SPDY,
  },
  { name: 'SPDY relay', generation: 'spdy', version: '1.27', mode: 'relay', client: SPDY, upstream: SPDY },
  {
    name: 'WebSocket relay',
    generation: 'websocket',
    version: '1.36',
    mode: 'relay',
    client: WS,
    upstream: WS,
  },
];

/** A TLS listener (kubectl sends bearer tokens only over https), with the dev CA of certs/make-certs.sh. */
let certDir: string;
let tls: { cert: string; key: string; ca: string };
before(async () => {
  certDir = await mkdtemp(join(tmpdir(), 'kubeshim-rec-certs-'));
  const made = spawnSync('certs/make-certs.sh', [certDir], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(made.status, 0, made.stderr);
  const read = (f: string) => readFile(join(certDir, f), 'utf8');
  tls = { cert: await read('server.crt'), key: await read('server.key'), ca: await read('ca.crt') };
});
after(() => rm(certDir, { recursive: true, force: true }));

for (const cell of CELLS) {
  describe(`recording, kubectl ${cell.version}: ${cell.name}`, () => {
    const metrics = new Metrics();
    const chain = recordingChain(() => ({
      emulator: { generation: cell.generation, logger: silentLogger(), auth: { token: JWT } },
      shim: { metrics, tls: { cert: tls.cert, key: tls.key } },
      kube: { token: JWT, caData: tls.ca },
    }));

    /** The session line of the session that just ended, its recording and its audit line. */
    async function lastSession(before: number, subresource: string, ending: string) {
      const line = await waitFor(
        'the session line',
        () =>
          chain.shim.sessions.size === 0 &&
          chain.shim.sessionLines().length > before &&
          chain.shim.sessionLines().at(-1),
        10_000,
      );
      assert.equal(line['subresource'], subresource, JSON.stringify(line));
      assert.match(String(line['client']), cell.client, JSON.stringify(line));
      assert.match(String(line['upstream']), cell.upstream, JSON.stringify(line));
      assert.equal(line['mode'], cell.mode, JSON.stringify(line));
      const file = String(line['recording']);
      assert.ok(file.endsWith('.cast'), `a recording named in ${JSON.stringify(line)}`);
      // the end line is written off the session's path: wait for it
      await waitFor(
        'the recording to end',
        async () => (await readCast(file)).events.some((e) => String(e[2]).includes(ending)),
        10_000,
      );
      const audit = await waitFor(
        'the audit line',
        async () => (await chain.rec.audit()).find((a) => a['sessionId'] === line['sessionId']),
        10_000,
      );
      return { line, file, audit };
    }

    test('an -it shell session: recorded with its terminal, read back by asciinema cat', async () => {
      const before = chain.shim.sessionLines().length;
      const r = await runKubectlWithTty(cell.version, ['exec', '-it', 'demo', '--', 'sh'], {
        env: chain.kube.env,
        input: 'echo marker-$((6*7))\nexit 7\n',
        cols: 93,
        rows: 19,
        timeoutMs: 30_000,
      });
      assert.equal(r.code, 7, `kubectl: ${r.stdout}`);
      const { line, file, audit } = await lastSession(before, 'exec', 'exit code 7');
      assert.equal(line['exitCode'], 7);
      assert.equal(line['outcome'], 'exit-code');
      const { header, events } = await readCast(file);
      assert.equal(header['version'], 2);
      assert.equal(header['width'], 93);
      assert.equal(header['height'], 19);
      const meta = header['kubeshim'] as Record<string, unknown>;
      assert.equal(meta['sessionId'], line['sessionId']);
      assert.equal(meta['namespace'], 'default');
      assert.equal(meta['pod'], 'demo');
      assert.deepEqual(meta['command'], ['sh']);
      assert.equal(meta['tty'], true);
      assert.match(String(meta['client']), cell.client);
      assert.match(String(meta['upstream']), cell.upstream);
      assert.deepEqual((meta['identity'] as Record<string, unknown>)['claimed'], {
        iss: 'https://issuer.test',
        sub: 'system:serviceaccount:team-a:deployer',
        namespace: 'team-a',
        serviceaccount: 'deployer',
      });
      assert.ok(!JSON.stringify(header).includes(JWT.split('.')[1]!), 'no token in the header');
      assert.ok(
        events.some((e) => e[1] === 'r' && e[2] === '93x19'),
        'a resize event',
      );
      assert.ok(!events.some((e) => e[1] === 'i'), 'no stdin without --record-stdin');
      const shown = await asciinemaCat(file);
      assert.match(shown, /marker-42/);
      assert.match(shown, /\[kubeshim: exit code 7\]/);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.equal(audit['status'], 101);
      assert.equal(audit['recording'], file);
      assert.equal(audit['exitCode'], 7);
      assert.equal(audit['path'], '/api/v1/namespaces/default/pods/demo/exec');
      assert.equal(audit['subresource'], 'exec');
      assert.equal((audit['identity'] as Record<string, unknown>)['via'], 'bearer-claims');
      assert.ok(!JSON.stringify(audit).includes(JWT), 'no token in the audit line');
    });

    test('a piped exec exiting 3: stdout and stderr recorded, exit code 3 logged and counted', async () => {
      const before = chain.shim.sessionLines().length;
      const r = await runKubectl(
        cell.version,
        ['exec', '-i', 'demo', '--', 'sh', '-c', 'cat; echo to-stderr >&2; exit 3'],
        { env: chain.kube.env, input: 'piped-line\n', timeoutMs: 30_000 },
      );
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stdout.toString(), 'piped-line\n');
      const { line, file, audit } = await lastSession(before, 'exec', 'exit code 3');
      assert.equal(line['exitCode'], 3, JSON.stringify(line));
      assert.equal(line['outcome'], 'exit-code', JSON.stringify(line));
      const shown = await asciinemaCat(file);
      assert.match(shown, /piped-line/);
      assert.match(shown, /to-stderr/);
      assert.match(shown, /\[kubeshim: exit code 3\]/);
      assert.equal(audit['exitCode'], 3);
      assert.equal(audit['outcome'], 'exit-code');
      // counted as what it was
      const counted = await metrics.registry.getSingleMetric('kubeshim_sessions_total')!.get();
      const exits = counted.values.filter((v) => v.labels['outcome'] === 'exit-code');
      assert.equal(
        exits.reduce((n, v) => n + v.value, 0),
        2,
        JSON.stringify(counted.values),
      );
    });

    test('an attach: what the pod echoed is recorded', async () => {
      const before = chain.shim.sessionLines().length;
      const r = await runKubectl(cell.version, ['attach', '-i', 'demo'], {
        env: chain.kube.env,
        input: 'attached-hello\n',
        timeoutMs: 30_000,
      });
      assert.equal(r.code, 0, r.stderr);
      const { line, file, audit } = await lastSession(before, 'attach', 'exit code 0');
      assert.equal(line['outcome'], 'success');
      const shown = await asciinemaCat(file);
      assert.match(shown, /attached-hello/);
      assert.match(shown, /\[kubeshim: exit code 0\]/);
      assert.equal(audit['subresource'], 'attach');
      assert.equal(audit['recording'], file);
    });

    test('recordings sort by time and name namespace and pod', async () => {
      const casts = await chain.rec.casts();
      assert.equal(casts.length, 3);
      for (const f of casts)
        assert.match(f, /\/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z_default_demo_[0-9a-f-]{36}\.cast$/);
      const times = await Promise.all(
        casts.map(async (f) => (await readCast(f)).header['timestamp'] as number),
      );
      assert.deepEqual([...times].sort(), times);
    });
  });
}
