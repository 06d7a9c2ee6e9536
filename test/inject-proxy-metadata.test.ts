// Proxy metadata at injection, as Istio's template writes it: the mesh config's
// defaultConfig.proxyMetadata, with the pod's proxy.istio.io/config setting keys over it, becomes
// the environment of both injected containers: how DNS capture reaches `meshgate iptables` and the
// sidecar. Offline through `meshgate inject --mesh-config` (the real command, as a process) and
// through the webhook's review.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { pino } from 'pino';
import { review } from '../src/control/injection-webhook.js';
import { InjectionError, podProxyConfig } from '../src/core/inject/proxy-config.js';

const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));
type Container = { name: string; env?: Array<{ name: string; value?: string }> };
const envOf = (c: Container | undefined): Record<string, string> => Object.fromEntries((c?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));

describe('proxy metadata at injection', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-inject-metadata-'));
    await writeFile(join(dir, 'app.yaml'), `apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: default}
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata:
      labels: {app: app}
      annotations:
        proxy.istio.io/config: |
          proxyMetadata:
            ISTIO_META_DNS_AUTO_ALLOCATE: "true"
    spec: {containers: [{name: app, image: app:1}]}
`);
    await writeFile(join(dir, 'istio.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    defaultConfig:\n      proxyMetadata:\n        ISTIO_META_DNS_CAPTURE: "true"\n');
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('meshgate inject --mesh-config gives the init container and the sidecar the mesh\'s and the pod\'s metadata', () => {
    const r = spawnSync(process.execPath, [BIN, 'inject', '-f', join(dir, 'app.yaml'), '--mesh-config', join(dir, 'istio.yaml')], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const spec = (parseAllDocuments(r.stdout)[0]!.toJS() as { spec: { template: { spec: { containers: Container[]; initContainers: Container[] } } } }).spec.template.spec;
    for (const c of [spec.initContainers.find((x) => x.name === 'istio-init'), spec.containers.find((x) => x.name === 'istio-proxy')]) {
      const env = envOf(c);
      assert.equal(env.ISTIO_META_DNS_CAPTURE, 'true', c?.name);
      assert.equal(env.ISTIO_META_DNS_AUTO_ALLOCATE, 'true', c?.name);
    }
  });

  it('the annotation sets keys over the mesh\'s; one that is no ProxyConfig fails injection', () => {
    const mesh = { proxyMetadata: { ISTIO_META_DNS_CAPTURE: 'true', OTHER: 'x' } };
    assert.deepEqual(podProxyConfig({ 'proxy.istio.io/config': '{"proxyMetadata": {"ISTIO_META_DNS_CAPTURE": false}}' }, mesh).proxyMetadata, { ISTIO_META_DNS_CAPTURE: 'false', OTHER: 'x' });
    assert.throws(() => podProxyConfig({ 'proxy.istio.io/config': '[not, a, mapping' }, mesh), (e: unknown) => e instanceof InjectionError && /proxy\.istio\.io\/config/.test(e.message));
  });

  it('the webhook takes the served mesh config\'s metadata', () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec: { containers: [{ name: 'app', image: 'app:1' }] } };
    const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1', kind: { kind: 'Pod' }, namespace: 'default', object: pod } });
    const answer = review(body, { inject: { image: 'meshgate:test', controlAddress: 'https://cp:15012' }, namespaceLabels: () => ({ 'istio-injection': 'enabled' }), log: pino({ level: 'silent' }), meshDefaultConfig: () => ({ proxyMetadata: { ISTIO_META_DNS_CAPTURE: 'true' } }) });
    const patch = JSON.parse(Buffer.from((answer.response as { patch: string }).patch, 'base64').toString()) as Array<{ path: string; value: unknown }>;
    const text = JSON.stringify(patch);
    // Both containers carry it: the init container's env and the sidecar's.
    assert.equal(text.match(/"name":"ISTIO_META_DNS_CAPTURE","value":"true"/g)?.length, 2, text.slice(0, 400));
  });
});
