/**
 * The TLS listener gives back what idle clients take. `kubeshim serve` runs as its own process
 * with TLS and a 1 s --handshake-timeout; 200 connections that never start TLS, then 200 that
 * finish TLS but never send a request head, must each be destroyed by the shim, and the shim's
 * descriptor count (/proc/PID/fd) must come back to where it was.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { type ServeProcess, startServe } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

const COUNT = 200;
let dir: string;
let serve: ServeProcess;
let port: number;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-tls-'));
  const made = spawnSync('certs/make-certs.sh', [join(dir, 'certs')], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(made.status, 0, made.stderr);
  serve = await startServe(
    [
      '--upstream',
      'http://127.0.0.1:9',
      '--tls-cert',
      join(dir, 'certs', 'server.crt'),
      '--tls-key',
      join(dir, 'certs', 'server.key'),
      '--handshake-timeout',
      '1s',
    ],
    { PATH: process.env.PATH, HOME: dir },
  );
  port = Number(new URL(serve.url).port);
});

after(async () => {
  await serve?.stop();
  await rm(dir, { recursive: true, force: true });
});

const descriptors = async () => (await readdir(`/proc/${serve.child.pid}/fd`)).length;

/** Open `COUNT` connections with `open`; resolve once the shim has closed every one of them. */
async function heldAndDropped(open: () => net.Socket, ready: string): Promise<void> {
  const baseline = await descriptors();
  const sockets: net.Socket[] = [];
  let closed = 0;
  let up = 0;
  for (let i = 0; i < COUNT; i++) {
    const s = open();
    s.on('error', () => {});
    s.once(ready, () => up++);
    s.once('close', () => closed++);
    sockets.push(s);
  }
  try {
    await waitFor(`${COUNT} connections up`, () => up === COUNT, 20_000);
    await waitFor(`the shim to close all ${COUNT} connections`, () => closed === COUNT, 20_000).catch(
      (e: Error) => {
        throw new Error(`${e.message}: ${closed} closed`);
      },
    );
    // the shim's own count, not just the clients' view: every descriptor it took is given back
    await waitFor(
      `the shim's descriptors back to ${baseline}`,
      async () => (await descriptors()) <= baseline,
      10_000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message} (now ${await descriptors()})`);
    });
  } finally {
    for (const s of sockets) s.destroy();
  }
}

test(`${COUNT} connections that never start TLS are destroyed after the handshake timeout`, async () => {
  await heldAndDropped(() => net.connect(port, '127.0.0.1'), 'connect');
});

test(`${COUNT} connections that finish TLS but send no request head are destroyed too`, async () => {
  await heldAndDropped(
    () => tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }),
    'secureConnect',
  );
});

test('the shim still serves after both rounds', async () => {
  const status = await new Promise<number>((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () =>
      s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'),
    );
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString();
    });
    s.on('close', () => resolve(Number(text.slice(9, 12))));
    s.on('error', reject);
  });
  assert.equal(status, 200);
});
