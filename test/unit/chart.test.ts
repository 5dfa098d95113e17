/**
 * charts/kubeshim with the real helm: lint, then the rendered objects of the default install and of
 * a non-default one (pass-through credentials, client certificates, autoscaling, monitoring).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import yaml from 'js-yaml';
import { helmPath } from '../support/kubectl.js';
import { REPO } from '../support/processes.js';

const CHART = join(REPO, 'charts/kubeshim');

interface K8sObject {
  kind: string;
  apiVersion: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are navigated by the assertions
  [key: string]: any;
}

function helm(args: string[]): string {
  return execFileSync(helmPath(), args, {
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, HELM_CACHE_HOME: join(REPO, '.tmp/helm') },
  });
}

/** `helm template` with `--set` for each of `sets` (`--set-json` for those starting with `json:`). */
function render(...sets: string[]): K8sObject[] {
  const flags = sets.flatMap((s) => (s.startsWith('json:') ? ['--set-json', s.slice(5)] : ['--set', s]));
  const out = helm(['template', 'team', CHART, '--namespace', 'shim', ...flags]);
  return yaml.loadAll(out).filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

function one(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `one ${kind} ${name ?? ''}: ${found.map((o) => o.metadata.name)}`);
  return found[0]!;
}

function renderError(...sets: string[]): string {
  try {
    render(...sets);
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? err);
  }
  assert.fail(`helm template with ${sets.join(' ')} succeeded`);
}

test('helm lint passes, with default and non-default values', () => {
  assert.match(helm(['lint', CHART]), /1 chart\(s\) linted, 0 chart\(s\) failed/);
  assert.match(
    helm(['lint', CHART, '--set', 'autoscaling.enabled=true,metrics.serviceMonitor.enabled=true']),
    /0 chart\(s\) failed/,
  );
});

test('default: a locked-down Deployment serving TLS with a token, as its ServiceAccount', () => {
  const objs = render();
  const kinds = objs.map((o) => o.kind).sort();
  assert.deepEqual(kinds, [
    'ClusterRole',
    'ClusterRoleBinding',
    'ConfigMap',
    'Deployment',
    'PodDisruptionBudget',
    'Secret',
    'Secret',
    'Service',
    'ServiceAccount',
  ]);
  const deploy = one(objs, 'Deployment', 'team-kubeshim');
  assert.equal(deploy.spec.replicas, 2);
  const pod = deploy.spec.template.spec;
  assert.equal(pod.serviceAccountName, 'team-kubeshim');
  assert.equal(pod.automountServiceAccountToken, false);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
  const c = pod.containers[0];
  assert.equal(c.image, 'kubeshim:0.1.0');
  assert.deepEqual(c.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    privileged: false,
    capabilities: { drop: ['ALL'] },
  });
  assert.deepEqual(c.args.slice(0, 6), [
    'serve',
    '--listen=0.0.0.0:8443',
    '--tls-cert=/etc/kubeshim/tls/tls.crt',
    '--tls-key=/etc/kubeshim/tls/tls.key',
    '--token-file=/etc/kubeshim/auth/token',
    '--kubeconfig=/etc/kubeshim/upstream/kubeconfig',
  ]);
  assert.ok(c.args.includes('--upstream-protocol=auto'));
  assert.ok(c.args.includes('--max-sessions=1000'));
  const hosts = c.args.find((a: string) => a.startsWith('--accept-hosts='));
  for (const h of ['^localhost$', '^team-kubeshim$', '^team-kubeshim\\.shim\\.svc$'])
    assert.ok(hosts.split('=')[1].split(',').includes(h), `${h} in ${hosts}`);
  assert.equal(c.livenessProbe.httpGet.path, '/healthz');
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  assert.equal(c.readinessProbe.httpGet.scheme, 'HTTPS');
  assert.equal(c.resources.limits.memory, '256Mi');
  const mounts = Object.fromEntries(
    c.volumeMounts.map((m: { name: string; mountPath: string }) => [m.name, m.mountPath]),
  );
  assert.equal(mounts.tls, '/etc/kubeshim/tls');
  assert.equal(mounts.token, '/etc/kubeshim/auth');
  assert.equal(mounts.serviceaccount, '/var/run/secrets/kubernetes.io/serviceaccount');
  const sa = pod.volumes.find((v: { name: string }) => v.name === 'serviceaccount');
  assert.equal(sa.projected.sources[0].serviceAccountToken.expirationSeconds, 3600);

  const tls = one(objs, 'Secret', 'team-kubeshim-tls');
  assert.equal(tls.type, 'kubernetes.io/tls');
  const cert = new X509Certificate(Buffer.from(tls.data['tls.crt'], 'base64'));
  const ca = new X509Certificate(Buffer.from(tls.data['ca.crt'], 'base64'));
  assert.ok(cert.verify(ca.publicKey), 'the certificate is signed by the CA in ca.crt');
  assert.ok(cert.checkHost('team-kubeshim.shim.svc'));
  assert.ok(cert.checkIP('127.0.0.1'), 'the probes and a port-forward reach it as 127.0.0.1');
  const token = Buffer.from(one(objs, 'Secret', 'team-kubeshim-token').data.token, 'base64').toString();
  assert.match(token, /^[A-Za-z0-9]{48}$/);
  assert.notEqual(
    token,
    Buffer.from(one(render(), 'Secret', 'team-kubeshim-token').data.token, 'base64').toString(),
  );

  const svc = one(objs, 'Service');
  assert.deepEqual(svc.spec.ports[0], {
    name: 'kubeshim',
    port: 8443,
    targetPort: 'kubeshim',
    protocol: 'TCP',
  });
  assert.deepEqual(svc.spec.selector, deploy.spec.selector.matchLabels);
  const role = one(objs, 'ClusterRole');
  assert.deepEqual(role.rules[1].resources, ['pods/exec', 'pods/attach', 'pods/portforward']);
  assert.deepEqual(role.rules[1].verbs, ['get', 'create']);
  assert.equal(one(objs, 'ClusterRoleBinding').subjects[0].name, 'team-kubeshim');
  assert.equal(one(objs, 'PodDisruptionBudget').spec.minAvailable, 1);
  assert.match(one(objs, 'ConfigMap').data.kubeconfig, /server: https:\/\/kubernetes\.default\.svc/);
});

test('non-default: pass-through with client certificates, limits, autoscaling, namespaced RBAC off, monitoring', () => {
  const objs = render(
    'upstream.credentials=passThrough',
    'upstream.protocol=spdy',
    'auth.token.enabled=false',
    'auth.clientCA.enabled=true',
    'auth.clientCA.existingSecret=team-ca',
    'tls.existingSecret=my-tls',
    'limits.maxSessions=200',
    'limits.idleTimeout=30m',
    'portForwardStats=true',
    'json:acceptHosts=["^shim\\\\.example\\\\.com$"]',
    'autoscaling.enabled=true',
    'podDisruptionBudget.enabled=false',
    'metrics.prometheusRule.enabled=true',
    'metrics.dashboard.enabled=true',
    'image.tag=9.9.9',
  );
  const kinds = new Set(objs.map((o) => o.kind));
  for (const k of ['Secret', 'ClusterRole', 'ClusterRoleBinding', 'PodDisruptionBudget'])
    assert.ok(!kinds.has(k), `${k} is rendered`);
  const deploy = one(objs, 'Deployment');
  assert.equal(deploy.spec.replicas, undefined, 'the HPA owns replicas');
  const c = deploy.spec.template.spec.containers[0];
  assert.equal(c.image, 'kubeshim:9.9.9');
  for (const a of [
    '--client-ca=/etc/kubeshim/client-ca/ca.crt',
    '--upstream=https://kubernetes.default.svc',
    '--upstream-protocol=spdy',
    '--max-sessions=200',
    '--idle-timeout=30m',
    '--port-forward-stats',
    '--accept-hosts=^shim\\.example\\.com$',
  ])
    assert.ok(c.args.includes(a), `${a} in ${c.args}`);
  assert.ok(!c.args.some((a: string) => a.startsWith('--token-file') || a.startsWith('--kubeconfig')));
  assert.ok(c.env.some((e: { name: string }) => e.name === 'NODE_EXTRA_CA_CERTS'));
  const vols = deploy.spec.template.spec.volumes;
  assert.equal(vols.find((v: { name: string }) => v.name === 'tls').secret.secretName, 'my-tls');
  const sa = vols.find((v: { name: string }) => v.name === 'serviceaccount');
  assert.ok(!sa.projected.sources.some((s: object) => 'serviceAccountToken' in s), 'no token of its own');
  const hpa = one(objs, 'HorizontalPodAutoscaler');
  assert.equal(hpa.spec.scaleTargetRef.name, deploy.metadata.name);
  const rule = one(objs, 'PrometheusRule');
  const limit = rule.spec.groups[0].rules.find(
    (r: { alert: string }) => r.alert === 'KubeshimSessionsAtLimit',
  );
  assert.match(limit.expr, />= 180$/);
  const dash = one(objs, 'ConfigMap', 'team-kubeshim-dashboard');
  assert.equal(dash.metadata.labels!.grafana_dashboard, '1');
  assert.equal(JSON.parse(dash.data['kubeshim.json']).uid, 'kubeshim');
});

test('ServiceMonitor scrapes /metrics over TLS with the listener token; RoleBindings per namespace', () => {
  const objs = render('metrics.serviceMonitor.enabled=true', 'rbac.namespaces={apps,jobs}');
  const ep = one(objs, 'ServiceMonitor').spec.endpoints[0];
  assert.equal(ep.path, '/metrics');
  assert.equal(ep.scheme, 'https');
  assert.deepEqual(ep.authorization.credentials, { name: 'team-kubeshim-token', key: 'token' });
  assert.deepEqual(ep.tlsConfig.ca.secret, { name: 'team-kubeshim-tls', key: 'ca.crt' });
  const bindings = objs.filter((o) => o.kind === 'RoleBinding');
  assert.deepEqual(bindings.map((b) => b.metadata.namespace).sort(), ['apps', 'jobs']);
  assert.ok(!objs.some((o) => o.kind === 'ClusterRoleBinding'));
});

test('contradictory values are refused with a message naming the fix', () => {
  assert.match(renderError('upstream.credentials=passThrough'), /set auth\.token\.enabled=false/);
  assert.match(renderError('auth.token.enabled=false'), /enable auth\.token or auth\.clientCA/);
  assert.match(renderError('upstream.protocol=quic'), /upstream\.protocol must be auto, spdy or websocket/);
  assert.match(
    renderError(
      'auth.token.enabled=false',
      'auth.clientCA.enabled=true',
      'auth.clientCA.existingSecret=ca',
      'metrics.serviceMonitor.enabled=true',
    ),
    /needs auth\.token\.enabled/,
  );
});
