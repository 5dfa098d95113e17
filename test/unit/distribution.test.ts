/**
 * The forms kubeshim is installed in, checked without installing them: the systemd unit with the
 * real systemd-analyze, the krew manifest against the package, the Dockerfile against the tree it
 * is built from. (The npm package itself: test/e2e/package-install.test.ts.)
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import yaml from 'js-yaml';
import { runProcess } from '../support/kubectl.js';
import { REPO, requireProgram, runCli } from '../support/processes.js';

const read = (file: string) => readFileSync(join(REPO, file), 'utf8');
const PKG = JSON.parse(read('package.json')) as { bin: Record<string, string> };

/** `kubeshim serve --help`: the flags a unit or a manifest may give. */
async function serveFlags(): Promise<Set<string>> {
  const r = await runCli(['serve', '--help'], { PATH: process.env.PATH, HOME: '/nonexistent' });
  return new Set(r.stdout.toString().match(/--[a-z][a-z-]+/g));
}

test('systemd unit: systemd-analyze verify is clean, the hardening is there, the flags exist', async () => {
  const unit = read('examples/systemd/kubeshim.service');
  const dir = await mkdtemp(join(tmpdir(), 'kubeshim-systemd-'));
  try {
    // verify checks that ExecStart's program exists: point it at a stand-in
    const program = join(dir, 'kubeshim');
    await writeFile(program, '#!/bin/sh\n');
    await chmod(program, 0o755);
    const file = join(dir, 'kubeshim.service');
    await writeFile(file, unit.replaceAll('/usr/local/bin/kubeshim', program));
    const analyze = requireProgram('systemd-analyze');
    const r = await runProcess(analyze, ['verify', file], {
      env: { PATH: process.env.PATH },
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', 'no warnings');
    const sec = await runProcess(analyze, ['security', '--offline=true', file], {
      env: { PATH: process.env.PATH },
      timeoutMs: 30_000,
    });
    const level = /Overall exposure level for kubeshim\.service: ([\d.]+) (\w+)/.exec(sec.stdout.toString());
    assert.ok(level, sec.stdout.toString() + sec.stderr);
    assert.ok(Number(level[1]) <= 2, `exposure ${level[1]} ${level[2]}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  for (const line of [
    'DynamicUser=yes',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'CapabilityBoundingSet=',
    'Environment=MALLOC_TRIM_THRESHOLD_=67108864',
  ])
    assert.match(unit, new RegExp(`^${line.replace(/[.]/g, '\\.')}$`, 'm'), line);
  // the same malloc setting as the image
  assert.match(read('Dockerfile'), /^ENV MALLOC_TRIM_THRESHOLD_=67108864$/m);
  const exec = /^ExecStart=((?:.*\\\n)*.*)$/m.exec(unit)![1]!;
  const flags = await serveFlags();
  for (const f of exec.match(/--[a-z][a-z-]+/g)!) assert.ok(flags.has(f), `${f} is not a serve flag`);
});

test('krew manifest: the plugin is `shim`, its bin is the package’s kubectl-shim', () => {
  const values: Record<string, string> = {
    VERSION: '0.1.0',
    URL: 'https://example.com/kubeshim-linux-x64.tar.gz',
    SHA256: 'ab'.repeat(32),
  };
  const text = read('examples/krew/shim.yaml').replace(/\$\{(\w+)\}/g, (_, name: string) => {
    assert.ok(name in values, `unknown placeholder ${name}`);
    return values[name]!;
  });
  // biome-ignore lint/suspicious/noExplicitAny: a manifest navigated by the assertions
  const m = yaml.load(text) as any;
  assert.equal(m.kind, 'Plugin');
  assert.equal(m.apiVersion, 'krew.googlecontainertools.github.com/v1alpha2');
  assert.equal(m.metadata.name, 'shim');
  const p = m.spec.platforms[0];
  assert.equal(p.bin, 'kubectl-shim');
  assert.ok('kubectl-shim' in PKG.bin);
  assert.deepEqual(p.selector.matchLabels, { os: 'linux', arch: 'amd64' });
  assert.match(p.sha256, /^[0-9a-f]{64}$/);
  assert.ok(m.spec.shortDescription.length <= 60);
});

test('Dockerfile: everything it COPYs is in the tree and in the build context; no compiler, no node-pty', () => {
  const docker = read('Dockerfile');
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const sources = [...docker.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
  assert.ok(sources.includes('src') && sources.includes('package-lock.json'), sources.join(' '));
  for (const s of sources) {
    assert.ok(existsSync(join(REPO, s)), `${s} is missing`);
    assert.ok(!ignored.includes(s), `${s} is in .dockerignore`);
  }
  // the package's contents (npm pack in the build) are all in the context
  for (const f of ['README.md', 'LICENSE', 'certs', 'examples']) assert.ok(sources.includes(f), f);
  // nothing installed beside the node image: no compiler, no python, no make
  assert.doesNotMatch(docker, /apt-get|apk add|\bg\+\+|build-essential/);
  assert.match(docker, /npm ci --omit=optional/);
  assert.match(docker, /npm ci --omit=dev --omit=optional/);
  assert.match(docker, /^FROM node:26-slim$/m);
  assert.match(docker, /^USER node$/m);
});

test('git tracks what the package and the image are built from', () => {
  const tracked = execFileSync('git', ['ls-files'], { cwd: REPO, encoding: 'utf8' }).split('\n');
  for (const f of ['LICENSE', 'README.md', 'Dockerfile', '.dockerignore', 'charts/kubeshim/Chart.yaml'])
    assert.ok(tracked.includes(f), `${f} is not tracked`);
});
