/**
 * @kubernetes/client-node is loaded only when a kubeconfig is used (src/upstream/client-node.ts):
 * `serve --upstream URL` without one never pays its 27 MiB of heap. A child process loads serve's
 * modules and the upstream target, then lists every script V8 has compiled (the inspector reports
 * them all, whichever loader read them: import, require of an ES module, tsx).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { runProcess } from '../support/kubectl.js';
import { REPO } from '../support/processes.js';

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kubeshim-lazy-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The child: load serve and the target for `opts`, then print the URL of every compiled script. */
const CHILD = `
import { Session } from 'node:inspector';
await import(${JSON.stringify(pathToFileURL(join(REPO, 'src/commands/serve.ts')).href)});
const { loadUpstreamTarget } = await import(${JSON.stringify(pathToFileURL(join(REPO, 'src/upstream/target.ts')).href)});
const target = await loadUpstreamTarget(JSON.parse(process.argv[1]));
target.agent.destroy();
const session = new Session();
session.connect();
const urls = [];
session.on('Debugger.scriptParsed', (m) => urls.push(m.params.url));
session.post('Debugger.enable', () => {
  session.disconnect();
  process.stdout.write(JSON.stringify({ describe: target.describe(), urls }));
});
`;

async function scriptsLoaded(
  opts: Record<string, string>,
  env: NodeJS.ProcessEnv,
): Promise<{ describe: string; urls: string[] }> {
  const r = await runProcess(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', CHILD, JSON.stringify(opts)],
    { env: { PATH: process.env.PATH, ...env }, cwd: REPO, timeoutMs: 30_000 },
  );
  assert.equal(r.code, 0, r.stderr.toString());
  return JSON.parse(r.stdout.toString());
}

const fromClientNode = (urls: string[]) => urls.filter((u) => u.includes('@kubernetes/client-node'));

test('the bastion form (--upstream, no kubeconfig) does not load @kubernetes/client-node', async () => {
  const home = join(dir, 'empty-home');
  const { describe, urls } = await scriptsLoaded({ upstream: 'http://127.0.0.1:1' }, { HOME: home });
  assert.match(describe, /no kubeconfig: clients' credentials pass through/);
  assert.ok(
    urls.some((u) => u.endsWith('/src/upstream/target.ts')),
    'the probe sees the modules loaded',
  );
  assert.deepEqual(fromClientNode(urls), []);
});

test('a kubeconfig loads it, and is read with it', async () => {
  const file = join(dir, 'config');
  await writeFile(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{ name: c, cluster: { server: "http://127.0.0.1:1" } }]',
      'users: [{ name: u, user: { token: t } }]',
      'contexts: [{ name: ctx, context: { cluster: c, user: u } }]',
      'current-context: ctx',
    ].join('\n'),
  );
  const { describe, urls } = await scriptsLoaded({ kubeconfig: file }, { HOME: join(dir, 'empty-home') });
  assert.match(describe, /context "ctx", auth: token/);
  assert.notDeepEqual(fromClientNode(urls), []);
});
