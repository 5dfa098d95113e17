/**
 * What the README and the examples tell a newcomer agrees with the repository: the container tag
 * the README builds is the one the manifests run (the package's version), the kubectl versions it
 * says are tested are the ones the tests run, and the nginx examples, which pass the client's Host
 * on, come with the --accept-hosts warning.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { KUBECTL_VERSIONS } from '../support/kubectl.js';
import { REPO } from '../support/processes.js';

const read = (file: string) => readFileSync(join(REPO, file), 'utf8');

test('the Container section and the manifests name the same image tag, the package version', () => {
  const version = (JSON.parse(read('package.json')) as { version: string }).version;
  const readme = read('README.md');
  const container = readme.slice(readme.indexOf('## Container'), readme.indexOf('## Examples'));
  const tags = [...container.matchAll(/\bkubeshim:(\d+\.\d+\.\d+)\b/g)].map((m) => m[1]);
  assert.ok(tags.length >= 2, 'docker build and docker run name a tag');
  const manifest = [
    ...read('examples/kubernetes/bastion-sidecar.yaml').matchAll(/image: kubeshim:(\S+)/g),
  ].map((m) => m[1]);
  assert.ok(manifest.length >= 1, 'the manifest runs kubeshim');
  assert.deepEqual([...new Set([...tags, ...manifest])], [version]);
});

test('the README names every kubectl version the tests run', () => {
  const readme = read('README.md');
  const line = /Tested with real kubectl ([\d., and]+)/.exec(readme.replace(/\s+/g, ' '));
  assert.ok(line, 'a "Tested with real kubectl" sentence');
  assert.deepEqual(line[1]!.match(/\d+\.\d+/g), [...KUBECTL_VERSIONS]);
});

test('the nginx examples pass Host on, and their README warns about --accept-hosts', () => {
  for (const conf of ['kubeshim.conf', 'websocket-only.conf'])
    assert.match(read(`examples/nginx/${conf}`), /proxy_set_header Host \$host;/);
  const warning = read('examples/nginx/README.md');
  assert.match(warning, /\*\*Warning: `--accept-hosts`\.\*\*/);
  assert.match(warning, /kubeshim serve .*--accept-hosts/);
  assert.match(read('README.md'), /examples\/nginx\/README\.md/);
});
