/**
 * The upstream target's TLS and kubeconfig handling against real servers on 127.0.0.1, with
 * certificates from certs/make-certs.sh: client certificates, CA file vs data, tls-server-name,
 * insecure-skip-tls-verify, proxy-url through a CONNECT proxy (plain request and WebSocket
 * upgrade), several contexts, $KUBECONFIG merging, --upstream, and the error sentences.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import WebSocket, { WebSocketServer } from 'ws';
import { loadUpstreamTarget, type TargetOptions, type UpstreamTarget } from '../../src/upstream/target.js';
import { withTimeout } from '../support/wait.js';

let dir: string;
let pem: Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string>;
const cleanups: (() => unknown)[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-target-'));
  execFileSync('certs/make-certs.sh', [join(dir, 'pki'), 'api.example.test'], { stdio: 'ignore' });
  const read = (f: string) => readFile(join(dir, 'pki', f), 'utf8');
  pem = {
    ca: await read('ca.crt'),
    serverCert: await read('server.crt'),
    serverKey: await read('server.key'),
    clientCert: await read('client.crt'),
    clientKey: await read('client.key'),
  };
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

interface Seen {
  cn?: string | string[];
  sni?: string | false | null;
  authorization?: string;
}

/** An https server answering JSON about the caller; with `mtls`, a client certificate is required. */
async function startServer(opts: { mtls?: boolean } = {}): Promise<{ url: string; wsUrl: string }> {
  const server = https.createServer(
    {
      cert: pem.serverCert,
      key: pem.serverKey,
      ca: pem.ca,
      requestCert: opts.mtls === true,
      rejectUnauthorized: opts.mtls === true,
    },
    (req, res) => {
      const sock = req.socket as TLSSocket;
      const seen: Seen = {
        cn: sock.getPeerCertificate().subject?.CN,
        sni: sock.servername,
        authorization: req.headers.authorization,
      };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(seen));
    },
  );
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${m.toString()}`)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  const { port } = server.address() as net.AddressInfo;
  return { url: `https://127.0.0.1:${port}`, wsUrl: `wss://127.0.0.1:${port}` };
}

/** Listen on a free port of 127.0.0.1; after the tests, destroy the `sockets` and close `proxy`. */
async function listenUntilCleanup(proxy: net.Server, sockets: Set<net.Socket>): Promise<number> {
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        proxy.close(() => r());
      }),
  );
  return (proxy.address() as net.AddressInfo).port;
}

/** A CONNECT-only proxy that records where it was asked to connect. */
async function startConnectProxy(): Promise<{ url: string; connects: string[] }> {
  const connects: string[] = [];
  const sockets = new Set<net.Socket>();
  const proxy = http.createServer((_req, res) => {
    res.writeHead(405);
    res.end();
  });
  proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    connects.push(`${req.url} ${req.headers['proxy-authorization'] ?? ''}`.trim());
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
  });
  return { url: `http://127.0.0.1:${await listenUntilCleanup(proxy, sockets)}`, connects };
}

/** A minimal SOCKS5 proxy (no authentication, CONNECT to IPv4) that records its targets. */
async function startSocksProxy(): Promise<{ url: string; connects: string[] }> {
  const connects: string[] = [];
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => {});
    client.on('close', () => sockets.delete(client));
    let buf = Buffer.alloc(0);
    let greeted = false;
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!greeted) {
        if (buf.length < 2 || buf.length < 2 + (buf[1] as number)) return;
        buf = buf.subarray(2 + (buf[1] as number));
        greeted = true;
        client.write(Buffer.from([5, 0]));
      }
      if (buf.length < 10) return; // VER CMD RSV ATYP=1 ADDR(4) PORT(2)
      client.off('data', onData);
      const host = [...buf.subarray(4, 8)].join('.');
      const port = buf.readUInt16BE(8);
      connects.push(`${host}:${port}`);
      const upstream = net.connect(port, host, () => {
        client.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
        upstream.write(buf.subarray(10));
        upstream.pipe(client);
        client.pipe(upstream);
      });
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
      upstream.on('close', () => sockets.delete(upstream));
    };
    client.on('data', onData);
  });
  return { url: `socks5://127.0.0.1:${await listenUntilCleanup(proxy, sockets)}`, connects };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
let n = 0;

/** A kubeconfig file (JSON, which is YAML) in its own folder; returns its path. */
async function kubeconfigFile(doc: object, name = `kc-${++n}.json`): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, JSON.stringify(doc));
  return file;
}

/** One cluster, one user, one context named `ctx`. */
function oneContext(cluster: object, user: object = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', namespace: 'ns1' } }],
    'current-context': 'ctx',
  };
}

const noEnv = (): NodeJS.ProcessEnv => ({ HOME: join(dir, 'empty-home') });

async function load(opts: TargetOptions, env: NodeJS.ProcessEnv = noEnv()): Promise<UpstreamTarget> {
  const target = await loadUpstreamTarget(opts, env);
  cleanups.push(() => target.agent.destroy());
  return target;
}

/** GET through the target, as the proxy does: its agent and its auth headers. */
async function get(target: UpstreamTarget, path = '/version'): Promise<Seen> {
  const url = new URL(path, target.url);
  const headers = await target.authHeaders();
  const request = url.protocol === 'https:' ? https.request : http.request;
  return withTimeout(
    new Promise<Seen>((resolve, reject) => {
      const req = request(url, { agent: target.agent, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(body))));
      });
      req.on('error', reject);
      req.end();
    }),
    5000,
    `GET ${url.href}`,
  );
}

test('client certificate and CA from files (relative paths) against a server that requires mTLS', async () => {
  const srv = await startServer({ mtls: true });
  const kc = await kubeconfigFile(
    oneContext(
      { server: srv.url, 'certificate-authority': 'pki/ca.crt' },
      { 'client-certificate': 'pki/client.crt', 'client-key': 'pki/client.key' },
    ),
  );
  const target = await load({ kubeconfig: kc });
  assert.equal((await get(target)).cn, 'kubeshim-client');
  assert.equal(target.injectsCredentials, true, 'a client certificate is a credential of the shim');
  assert.deepEqual(await target.authHeaders(), {});
  assert.match(target.describe(), /context "ctx".*client certificate/);
  // the agent pools: a second request reuses the connection
  await get(target);
  assert.equal(Object.values(target.agent.freeSockets).flat().length, 1);
});

test('CA and client certificate as data work the same; without a CA the server is not trusted', async () => {
  const srv = await startServer({ mtls: true });
  const user = { 'client-certificate-data': b64(pem.clientCert), 'client-key-data': b64(pem.clientKey) };
  const withData = await load({
    kubeconfig: await kubeconfigFile(
      oneContext({ server: srv.url, 'certificate-authority-data': b64(pem.ca) }, user),
    ),
  });
  assert.equal((await get(withData)).cn, 'kubeshim-client');

  const noCa = await load({ kubeconfig: await kubeconfigFile(oneContext({ server: srv.url }, user)) });
  await assert.rejects(get(noCa), /self-signed|unable to (get|verify)/i);
});

test('without a client certificate an mTLS server refuses the connection', async () => {
  const srv = await startServer({ mtls: true });
  const target = await load({
    kubeconfig: await kubeconfigFile(
      oneContext({ server: srv.url, 'certificate-authority-data': b64(pem.ca) }),
    ),
  });
  assert.equal(target.injectsCredentials, false, 'a user without credentials lets the client authenticate');
  await assert.rejects(get(target));
});

test('tls-server-name is sent as SNI and used to verify the certificate', async () => {
  const srv = await startServer();
  const cluster = { server: srv.url, 'certificate-authority-data': b64(pem.ca) };
  const good = await load({
    kubeconfig: await kubeconfigFile(oneContext({ ...cluster, 'tls-server-name': 'api.example.test' })),
  });
  assert.equal((await get(good)).sni, 'api.example.test');
  const wrong = await load({
    kubeconfig: await kubeconfigFile(oneContext({ ...cluster, 'tls-server-name': 'other.example.test' })),
  });
  await assert.rejects(get(wrong), /other\.example\.test|altnames/i);
});

test('insecure-skip-tls-verify reaches a server whose CA is unknown', async () => {
  const srv = await startServer();
  const target = await load({
    kubeconfig: await kubeconfigFile(oneContext({ server: srv.url, 'insecure-skip-tls-verify': true })),
  });
  assert.equal((await get(target)).sni, false, 'no SNI for an IP address');
  assert.equal((target.agent as https.Agent).options.rejectUnauthorized, false);
});

test('proxy-url: plain requests and WebSocket upgrades go through an HTTP CONNECT proxy', async () => {
  const srv = await startServer();
  const proxy = await startConnectProxy();
  const proxyUrl = proxy.url.replace('http://', 'http://user:s3cret@');
  const target = await load({
    kubeconfig: await kubeconfigFile(
      oneContext(
        { server: srv.url, 'certificate-authority-data': b64(pem.ca), 'proxy-url': proxyUrl },
        { token: 't' },
      ),
    ),
  });
  const seen = await get(target);
  assert.equal(seen.authorization, 'Bearer t');
  const host = new URL(srv.url).host;
  assert.deepEqual(proxy.connects, [`${host} Basic ${b64('user:s3cret')}`]);
  assert.ok(!target.describe().includes('s3cret'), target.describe());
  assert.match(target.describe(), /via proxy http:\/\/127\.0\.0\.1/);

  const ws = new WebSocket(`${srv.wsUrl}/api/v1/x`, {
    agent: target.agent,
    headers: await target.authHeaders(),
  });
  cleanups.push(() => ws.terminate());
  const echoed = await withTimeout(
    new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('hi'));
      ws.once('message', (m) => resolve(m.toString()));
      ws.once('error', reject);
    }),
    5000,
    'WebSocket through the proxy',
  );
  assert.equal(echoed, 'echo:hi');
  assert.equal(proxy.connects.length, 2, 'the upgrade made its own CONNECT');
});

test('proxy-url: socks5 through the SOCKS agent of client-node, with tls-server-name', async () => {
  const srv = await startServer();
  const proxy = await startSocksProxy();
  const target = await load({
    kubeconfig: await kubeconfigFile(
      oneContext(
        {
          server: srv.url,
          'certificate-authority-data': b64(pem.ca),
          'tls-server-name': 'api.example.test',
          'proxy-url': proxy.url,
        },
        { token: 'via-socks' },
      ),
    ),
  });
  const seen = await get(target);
  assert.deepEqual(seen, { sni: 'api.example.test', authorization: 'Bearer via-socks' });
  assert.deepEqual(proxy.connects, [new URL(srv.url).host]);
});

test('a kubeconfig with several contexts: current-context by default, --context picks, unknown names fail', async () => {
  const mtls = await startServer({ mtls: true });
  const plain = await startServer();
  const yaml = `apiVersion: v1
kind: Config
current-context: first
clusters:
- name: one
  cluster:
    server: ${mtls.url}
    certificate-authority: pki/ca.crt
- name: two
  cluster:
    server: ${plain.url}/prefix/
    certificate-authority-data: ${b64(pem.ca)}
users:
- name: cert
  user:
    client-certificate: pki/client.crt
    client-key: pki/client.key
- name: tok
  user:
    token: second-token
contexts:
- name: first
  context: {cluster: one, user: cert}
- name: second
  context: {cluster: two, user: tok, namespace: kube-system}
`;
  const file = join(dir, 'multi.yaml');
  await writeFile(file, yaml);
  const first = await load({ kubeconfig: file });
  assert.equal((await get(first)).cn, 'kubeshim-client');
  const second = await load({ kubeconfig: file, context: 'second' });
  assert.equal((await get(second)).authorization, 'Bearer second-token');
  assert.equal(second.url.pathname, '/prefix', 'the server path prefix is kept');
  assert.match(second.describe(), /context "second".*auth: token/);
  await assert.rejects(
    load({ kubeconfig: file, context: 'third' }),
    /context "third" is not in .*contexts: first, second/,
  );
});

test('$KUBECONFIG: files merged as kubectl does (first definition wins), missing files skipped', async () => {
  const srv = await startServer();
  const ca = { 'certificate-authority-data': b64(pem.ca) };
  const a = await kubeconfigFile({
    clusters: [{ name: 'shared', cluster: { server: srv.url, ...ca } }],
    users: [{ name: 'u', user: { token: 'from-a' } }],
    contexts: [{ name: 'ctx-a', context: { cluster: 'shared', user: 'u' } }],
    'current-context': 'ctx-b',
  });
  const b = await kubeconfigFile({
    clusters: [{ name: 'shared', cluster: { server: 'https://127.0.0.1:1', ...ca } }],
    users: [{ name: 'u', user: { token: 'from-b' } }],
    contexts: [{ name: 'ctx-b', context: { cluster: 'shared', user: 'u' } }],
    'current-context': 'ctx-a',
  });
  const env = { ...noEnv(), KUBECONFIG: [join(dir, 'missing.yaml'), a, b].join(':') };
  const target = await load({}, env);
  assert.match(target.describe(), /context "ctx-b"/, 'the first file that sets current-context decides');
  assert.equal((await get(target)).authorization, 'Bearer from-a', "the first file's cluster and user win");
});

test('~/.kube/config is read when neither --kubeconfig nor $KUBECONFIG is given', async () => {
  const srv = await startServer();
  const home = join(dir, 'home');
  execFileSync('mkdir', ['-p', join(home, '.kube')]);
  await writeFile(
    join(home, '.kube', 'config'),
    JSON.stringify(
      oneContext({ server: srv.url, 'certificate-authority-data': b64(pem.ca) }, { token: 'home' }),
    ),
  );
  const target = await load({}, { HOME: home });
  assert.equal((await get(target)).authorization, 'Bearer home');
});

test('--upstream with a kubeconfig replaces only the server; TLS and credentials stay', async () => {
  const srv = await startServer({ mtls: true });
  const kc = await kubeconfigFile(
    oneContext(
      { server: 'https://127.0.0.1:1', 'certificate-authority-data': b64(pem.ca) },
      { 'client-certificate-data': b64(pem.clientCert), 'client-key-data': b64(pem.clientKey) },
    ),
  );
  const target = await load({ kubeconfig: kc, upstream: srv.url });
  assert.equal(target.url.origin, srv.url);
  assert.equal((await get(target)).cn, 'kubeshim-client');
});

test('--upstream without any kubeconfig: pass-through target verified against the system CAs', async () => {
  const srv = await startServer();
  const target = await load({ upstream: srv.url });
  assert.equal(target.injectsCredentials, false);
  assert.deepEqual(await target.authHeaders(), {});
  assert.match(target.describe(), /no kubeconfig/);
  await assert.rejects(get(target), /self-signed|unable to (get|verify)/i, 'the dev CA is not a system CA');
});

test('an http: server needs neither a CA nor insecure-skip-tls-verify', async () => {
  const server = http.createServer((req, res) =>
    res.end(JSON.stringify({ authorization: req.headers.authorization })),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const target = await load({
    kubeconfig: await kubeconfigFile(oneContext({ server: url }, { token: 'plain' })),
  });
  assert.equal((await get(target)).authorization, 'Bearer plain');
});

test('errors are sentences: missing file, no kubeconfig, no context, unreadable or bad TLS material', async () => {
  await assert.rejects(
    load({ kubeconfig: join(dir, 'nope.yaml') }),
    /kubeconfig file .*nope\.yaml does not exist/,
  );
  await assert.rejects(load({}), /no kubeconfig found .*--kubeconfig PATH or --upstream URL/);
  await assert.rejects(load({ upstream: 'ftp://x' }), /--upstream must be an http:\/\/ or https:\/\/ URL/);

  const noCurrent = await kubeconfigFile({ ...oneContext({ server: 'https://x' }), 'current-context': '' });
  await assert.rejects(load({ kubeconfig: noCurrent }), /has no current-context; pass --context/);

  const missingCa = await kubeconfigFile(
    oneContext({ server: 'https://x', 'certificate-authority': 'pki/none.crt' }),
  );
  await assert.rejects(load({ kubeconfig: missingCa }), /TLS settings of context "ctx".*ENOENT.*none\.crt/);

  const badCa = await kubeconfigFile(
    oneContext({ server: 'https://x', 'certificate-authority-data': b64('junk') }),
  );
  await assert.rejects(
    load({ kubeconfig: badCa }),
    /certificate-authority data of cluster "c" is not a PEM certificate/,
  );

  const mismatch = await kubeconfigFile(
    oneContext(
      { server: 'https://x', 'certificate-authority-data': b64(pem.ca) },
      { 'client-certificate-data': b64(pem.clientCert), 'client-key-data': b64(pem.serverKey) },
    ),
  );
  await assert.rejects(
    load({ kubeconfig: mismatch }),
    /client certificate and key of user "u" are not usable/,
  );

  const noUser = await kubeconfigFile({
    ...oneContext({ server: 'https://x' }),
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'ghost' } }],
  });
  await assert.rejects(load({ kubeconfig: noUser }), /user "ghost" of context "ctx" is not in/);

  const notYaml = join(dir, 'broken.yaml');
  await writeFile(notYaml, 'clusters: [');
  await assert.rejects(load({ kubeconfig: notYaml }), /broken\.yaml is not valid YAML/);
});
