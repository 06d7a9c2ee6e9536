// Sidecar injection: Istio's selection rules as a table, the admission webhook over real TLS (its
// certificate from the mesh CA, its caBundle set on a stand-in API server), the injected pod read
// field by field against what Istio's injector writes, idempotence, and `meshgate inject` on a
// multi-document manifest through the real command line.

import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request as httpsRequest } from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { parseAllDocuments } from 'yaml';
import { loadOrCreateAuthority } from '../src/core/pki/authority.js';
import { injectionDecision } from '../src/core/inject/selection.js';
import { injectPod } from '../src/core/inject/inject-pod.js';
import { applyPatch } from '../src/core/inject/json-patch.js';
import { parseAppProbers } from '../src/core/inject/app-probes.js';
import { startControlPlane, type RunningControlPlane } from '../src/control/main.js';
import { FileTokenAuthenticator } from '../src/control/token-authenticator.js';
import { caBundleUpdater } from '../src/control/webhook-ca-bundle.js';
import { main } from '../src/cli/main.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';

type Json = Record<string, any>;
const silent = pino({ level: 'silent' });
const OPTS = { image: 'registry.example/meshgate:1.2.3', controlAddress: 'https://meshgate-control.istio-system.svc:15012' };

function pod(labels: Record<string, string> = {}, extra: Json = {}): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'product-7f9c4-', namespace: 'shop', labels: { app: 'product', version: 'v2', ...labels }, ...(extra.metadata ?? {}) },
    spec: {
      serviceAccountName: 'product',
      containers: [
        {
          name: 'app',
          image: 'product:2',
          ports: [{ containerPort: 8080, name: 'http' }],
          readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 5, timeoutSeconds: 2 },
          livenessProbe: { httpGet: { path: '/live', port: 8080, httpHeaders: [{ name: 'x-probe', value: '1' }] } },
          startupProbe: { tcpSocket: { port: 8080 } },
        },
      ],
      ...(extra.spec ?? {}),
    },
  };
}

describe('injection selection (Istio: either side disabled wins, then either side enabled)', () => {
  const cases: Array<[string, Record<string, string> | undefined, Record<string, string>, boolean]> = [
    ['namespace enabled', { 'istio-injection': 'enabled' }, {}, true],
    ['namespace enabled, pod label false', { 'istio-injection': 'enabled' }, { 'sidecar.istio.io/inject': 'false' }, false],
    ['namespace disabled, pod label true', { 'istio-injection': 'disabled' }, { 'sidecar.istio.io/inject': 'true' }, false],
    ['unlabelled namespace, pod label true', {}, { 'sidecar.istio.io/inject': 'true' }, true],
    ['unlabelled namespace, no pod label', {}, {}, false],
    ['namespace istio.io/rev=default', { 'istio.io/rev': 'default' }, {}, true],
    ['namespace istio.io/rev=canary', { 'istio.io/rev': 'canary' }, {}, false],
    ['istio-injection wins over istio.io/rev', { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' }, {}, true],
    ['unlabelled namespace, pod istio.io/rev=default', {}, { 'istio.io/rev': 'default' }, true],
  ];
  for (const [name, ns, podLabels, want] of cases) {
    it(name, () => assert.equal(injectionDecision(pod(podLabels), { namespace: 'shop', ...(ns ? { namespaceLabels: ns } : {}) }).inject, want));
  }
  it('skips hostNetwork pods, kube-system and pods already injected', () => {
    assert.equal(injectionDecision(pod({}, { spec: { hostNetwork: true } })).inject, false);
    assert.equal(injectionDecision(pod(), { namespace: 'kube-system' }).inject, false);
    assert.equal(injectionDecision(injectPod(pod(), OPTS)).inject, false);
  });
});

describe('user volumes (sidecar.istio.io/userVolume, userVolumeMount)', () => {
  // The annotations of Istio's "Ingress Sidecar TLS Termination" task, in the object form, and the list form.
  const TASK = {
    'sidecar.istio.io/userVolume': '{"tls-secret":{"secret":{"secretName":"httpbin-mtls-termination","optional":true}},"tls-ca-secret":{"secret":{"secretName":"httpbin-mtls-termination-cacert"}}}',
    'sidecar.istio.io/userVolumeMount': '{"tls-secret":{"mountPath":"/etc/istio/tls-certs/","readOnly":true},"tls-ca-secret":{"mountPath":"/etc/istio/tls-ca-certs/","readOnly":true}}',
  };

  it('adds the volumes to the pod and mounts them in the proxy, once however often the pod is injected', () => {
    const once = injectPod(pod({}, { metadata: { annotations: TASK } }), OPTS) as Json;
    const twice = injectPod(once, OPTS) as Json;
    for (const out of [once, twice]) {
      const volumes = (out.spec.volumes as Json[]).filter((v) => v.name.startsWith('tls-'));
      assert.deepEqual(volumes, [
        { name: 'tls-secret', secret: { secretName: 'httpbin-mtls-termination', optional: true } },
        { name: 'tls-ca-secret', secret: { secretName: 'httpbin-mtls-termination-cacert' } },
      ]);
      const proxy = (out.spec.containers as Json[]).find((c) => c.name === 'istio-proxy')!;
      assert.deepEqual((proxy.volumeMounts as Json[]).filter((m) => m.name.startsWith('tls-')), [
        { name: 'tls-secret', mountPath: '/etc/istio/tls-certs/', readOnly: true },
        { name: 'tls-ca-secret', mountPath: '/etc/istio/tls-ca-certs/', readOnly: true },
      ]);
      const app = (out.spec.containers as Json[]).find((c) => c.name === 'app')!;
      assert.equal(app.volumeMounts, undefined);
    }
  });

  it('reads the list form too, and ignores an annotation that is not JSON', () => {
    const out = injectPod(pod({}, { metadata: { annotations: { 'sidecar.istio.io/userVolume': '[{"name":"wasm","configMap":{"name":"wasm"}}]', 'sidecar.istio.io/userVolumeMount': 'not json' } } }), OPTS) as Json;
    assert.deepEqual((out.spec.volumes as Json[]).at(-1), { name: 'wasm', configMap: { name: 'wasm' } });
    const proxy = (out.spec.containers as Json[]).find((c) => c.name === 'istio-proxy')!;
    assert.equal((proxy.volumeMounts as Json[]).some((m) => m.name === 'wasm'), false);
  });
});

/** The API stand-in holding one MutatingWebhookConfiguration, as deploy/ makes it (two webhooks, no bundle). */
async function webhookConfigApi(): Promise<{ kube: KubeApiStandIn; kc: KubeConfig; readonly config: Json; readonly patches: number }> {
  const kube = await startKubeApi();
  kube.apply({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'meshgate-sidecar-injector' }, webhooks: [{ name: 'a', clientConfig: {} }, { name: 'b', clientConfig: {} }] });
  return {
    kube,
    kc: kube.kubeconfig(),
    get config() {
      return kube.get('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', '', 'meshgate-sidecar-injector') as Json;
    },
    get patches() {
      return kube.requests.filter((r) => r.method === 'PATCH').length;
    },
  };
}

describe('the admission webhook', () => {
  let dir: string;
  let cp: RunningControlPlane;
  let api: Awaited<ReturnType<typeof webhookConfigApi>>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-inject-'));
    await writeFile(join(dir, 'tokens.yaml'), '- {token: tok-0123456789abcdef, namespace: shop, serviceAccount: product}\n');
    const authority = loadOrCreateAuthority(join(dir, 'ca'));
    assert.ok(authority.ok);
    const tokens = await FileTokenAuthenticator.load(join(dir, 'tokens.yaml'), silent);
    assert.ok(tokens.ok);
    api = await webhookConfigApi();
    cp = await startControlPlane({
      configDir: dir,
      ca: authority.ca,
      authenticator: tokens.authenticator,
      port: 0,
      statusPort: 0,
      listenHost: '127.0.0.1',
      logger: silent,
      injection: { port: 0, serviceName: 'meshgate-sidecar-injector', namespace: 'istio-system', inject: OPTS, caBundle: caBundleUpdater(api.kc, 'meshgate-sidecar-injector', silent) },
    });
  });
  after(async () => {
    await cp?.destroy();
    await api?.kube.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** POST an AdmissionReview the way the API server does: TLS verified against the caBundle, by the Service's name. */
  function admit(object: Json, uid = 'uid-1'): Promise<{ status: number; body: Json }> {
    const caBundle = Buffer.from(api.config.webhooks[0].clientConfig.caBundle, 'base64').toString();
    const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', operation: 'CREATE', object } });
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port: cp.injectionPort, path: '/inject', method: 'POST', ca: caBundle, servername: 'meshgate-sidecar-injector.istio-system.svc', headers: { 'content-type': 'application/json' } },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it('sets every webhook caBundle to the mesh root at start', () => {
    const want = Buffer.from(cp.rootCertPem).toString('base64');
    assert.deepEqual(api.config.webhooks.map((w: Json) => w.clientConfig.caBundle), [want, want]);
  });

  it('answers a pod in a selected namespace with a JSONPatch that injects Istio’s fields', async () => {
    const original = pod({}, { metadata: { annotations: { 'sidecar.istio.io/proxyCPU': '50m', 'sidecar.istio.io/proxyMemory': '64Mi', 'sidecar.istio.io/proxyCPULimit': '1', 'sidecar.istio.io/proxyMemoryLimit': '256Mi', 'traffic.sidecar.istio.io/excludeOutboundPorts': '5432', 'traffic.sidecar.istio.io/excludeInboundPorts': '9000', 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.9.0.0/16' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'product-7f9c4d8b6', controller: true }] } });
    const { status, body } = await admit(original);
    assert.equal(status, 200);
    assert.equal(body.apiVersion, 'admission.k8s.io/v1');
    assert.equal(body.response.uid, 'uid-1');
    assert.equal(body.response.allowed, true);
    assert.equal(body.response.patchType, 'JSONPatch');
    const p: Json = applyPatch(original, JSON.parse(Buffer.from(body.response.patch, 'base64').toString()));

    assert.deepEqual(p.spec.containers.map((c: Json) => c.name), ['app', 'istio-proxy']);
    assert.deepEqual(p.spec.initContainers.map((c: Json) => c.name), ['istio-init']);
    const proxy = p.spec.containers[1];
    assert.equal(proxy.image, OPTS.image);
    assert.equal(proxy.args[0], 'sidecar');
    assert.deepEqual(proxy.ports, [{ containerPort: 15090, protocol: 'TCP', name: 'http-envoy-prom' }]);
    assert.deepEqual(proxy.readinessProbe.httpGet, { path: '/healthz/ready', port: 15021 });
    assert.equal(proxy.securityContext.runAsUser, 1337);
    assert.equal(proxy.securityContext.runAsGroup, 1337);
    assert.equal(proxy.securityContext.runAsNonRoot, true);
    assert.equal(proxy.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(proxy.securityContext.capabilities, { drop: ['ALL'] });
    assert.deepEqual(proxy.resources, { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } });
    const env = Object.fromEntries(proxy.env.map((e: Json) => [e.name, e.value ?? e.valueFrom.fieldRef.fieldPath]));
    assert.equal(env.POD_NAME, 'metadata.name');
    assert.equal(env.POD_NAMESPACE, 'metadata.namespace');
    assert.equal(env.INSTANCE_IP, 'status.podIP');
    assert.equal(env.SERVICE_ACCOUNT, 'spec.serviceAccountName');
    assert.equal(env.ISTIO_META_APP_CONTAINERS, 'app');
    assert.equal(env.ISTIO_META_INTERCEPTION_MODE, 'REDIRECT');
    assert.equal(env.NODE_OPTIONS, '--max-semi-space-size=4', 'V8 heap sized for a proxy');
    assert.equal(env.MALLOC_ARENA_MAX, '1', 'glibc arenas bounded');
    assert.equal(env.ISTIO_META_WORKLOAD_NAME, 'product-7f9c4d8b6'.replace(/-[a-z0-9]+$/, ''));
    assert.equal(env.ISTIO_META_OWNER, 'kubernetes://apis/apps/v1/namespaces/shop/deployments/product-7f9c4d8b6'.replace('product-7f9c4d8b6', 'product'));
    assert.equal(env.TRUST_DOMAIN, 'cluster.local');
    assert.deepEqual(JSON.parse(env.ISTIO_META_POD_PORTS), [{ containerPort: 8080, name: 'http' }]);
    assert.deepEqual(Object.fromEntries(proxy.volumeMounts.map((m: Json) => [m.name, m.mountPath])), {
      'istiod-ca-cert': '/var/run/secrets/istio',
      'istio-data': '/var/lib/istio/data',
      'istio-envoy': '/etc/istio/proxy',
      'istio-token': '/var/run/secrets/tokens',
      'istio-podinfo': '/etc/istio/pod',
    });

    const init = p.spec.initContainers[0];
    assert.deepEqual(init.args, ['iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-i', '*', '-x', '10.9.0.0/16', '-b', '*', '-d', '15090,15021,15020,9000', '-o', '5432']);
    assert.deepEqual(init.securityContext.capabilities, { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] });
    assert.equal(init.securityContext.runAsUser, 0);

    const volumes = Object.fromEntries(p.spec.volumes.map((v: Json) => [v.name, v]));
    assert.deepEqual(volumes['istio-token'].projected.sources[0].serviceAccountToken, { path: 'istio-token', expirationSeconds: 43200, audience: 'istio-ca' });
    assert.deepEqual(volumes['istiod-ca-cert'].configMap, { name: 'istio-ca-root-cert' });
    assert.deepEqual(volumes['istio-envoy'].emptyDir, { medium: 'Memory' });

    assert.equal(p.metadata.labels['security.istio.io/tlsMode'], 'istio');
    assert.equal(p.metadata.labels['service.istio.io/canonical-name'], 'product');
    assert.equal(p.metadata.labels['service.istio.io/canonical-revision'], 'v2');
    assert.equal(p.metadata.annotations['kubectl.kubernetes.io/default-container'], 'app');
    const statusAnnotation = JSON.parse(p.metadata.annotations['sidecar.istio.io/status']);
    assert.deepEqual(statusAnnotation.initContainers, ['istio-init']);
    assert.deepEqual(statusAnnotation.containers, ['istio-proxy']);
    assert.ok(statusAnnotation.volumes.includes('istio-token') && statusAnnotation.volumes.includes('istiod-ca-cert'));

    // Application probes go through the sidecar's 15020; the originals ride in ISTIO_KUBE_APP_PROBERS.
    const app = p.spec.containers[0];
    assert.deepEqual(app.readinessProbe, { httpGet: { path: '/app-health/app/readyz', port: 15020, scheme: 'HTTP' }, periodSeconds: 5, timeoutSeconds: 2 });
    assert.deepEqual(app.livenessProbe.httpGet, { path: '/app-health/app/livez', port: 15020, scheme: 'HTTP' });
    assert.deepEqual(app.startupProbe, { tcpSocket: { port: 8080 } }, 'TCP probes are left alone');
    const probers = parseAppProbers(env.ISTIO_KUBE_APP_PROBERS);
    assert.equal(probers.problem, undefined);
    assert.deepEqual(probers.probers, {
      '/app-health/app/readyz': { httpGet: { path: '/ready', port: 8080, scheme: 'HTTP' }, timeoutSeconds: 2 },
      '/app-health/app/livez': { httpGet: { path: '/live', port: 8080, scheme: 'HTTP', httpHeaders: [{ name: 'x-probe', value: '1' }] } },
    });
  });

  it('leaves alone a pod already injected, a pod that opts out and a hostNetwork pod', async () => {
    for (const object of [injectPod(pod(), OPTS), pod({ 'sidecar.istio.io/inject': 'false' }), pod({}, { spec: { hostNetwork: true } })]) {
      const { body } = await admit(object, 'uid-2');
      assert.deepEqual(body.response, { uid: 'uid-2', allowed: true });
    }
  });

  it('refuses what is not an AdmissionReview (the API server then fails the pod, as failurePolicy says)', async () => {
    const { body } = await admit(null as never, 'uid-3');
    assert.equal(body.response.allowed, true, 'a review without an object has nothing to inject');
    const res = await new Promise<Json>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: cp.injectionPort, path: '/inject', method: 'POST', rejectUnauthorized: false }, (r) => {
        let t = '';
        r.on('data', (c) => (t += c));
        r.on('end', () => resolve(JSON.parse(t)));
      });
      req.on('error', reject);
      req.end('not json');
    });
    assert.equal(res.response.allowed, false);
  });

  it('puts the bundle back when the root changes', async () => {
    // A configuration of its own, so that the control plane's updater (which keeps its own) stays out of it.
    const name = 'meshgate-sidecar-injector-canary';
    api.kube.apply({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name }, webhooks: [{ name: 'a', clientConfig: {} }, { name: 'b', clientConfig: {} }] });
    const config = () => api.kube.get('admissionregistration.k8s.io/v1', 'MutatingWebhookConfiguration', '', name) as Json;
    const patches = () => api.kube.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith(`/${name}`)).length;
    const updater = caBundleUpdater(api.kc, name, silent);
    try {
      await updater.update(cp.rootCertPem);
      assert.equal(patches(), 1);
      await updater.update(cp.rootCertPem);
      assert.equal(patches(), 1, 'nothing to change: no PATCH');
      await updater.update('-----BEGIN CERTIFICATE-----\nnew root\n-----END CERTIFICATE-----\n');
      assert.equal(patches(), 2);
      assert.match(Buffer.from(config().webhooks[1].clientConfig.caBundle, 'base64').toString(), /new root/);
    } finally {
      await updater.close();
    }
  });

  it('sets the bundle again when the configuration is applied again without it, with no restart', async () => {
    const want = Buffer.from(cp.rootCertPem).toString('base64');
    await api.kube.until(() => api.config.webhooks.every((w: Json) => w.clientConfig.caBundle === want), 'the mesh root set by the control plane');
    // `kubectl apply -k deploy/` again, or the configuration deleted and made again: no bundle.
    const { webhooks, metadata } = api.config;
    api.kube.apply({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: metadata.name }, webhooks: webhooks.map((w: Json) => ({ ...w, clientConfig: {} })) });
    await api.kube.until(() => api.config.webhooks.every((w: Json) => w.clientConfig.caBundle === want), 'the mesh root set again');
  });
});

const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));

/** The real command line in a child process, as a user runs it. */
function spawnCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { maxBuffer: 16 * 1024 * 1024 }, (error, out, err) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out, err });
    });
  });
}

/** The same entry point in this process (quicker on a loaded machine), its output captured. */
async function run(t: TestContext, args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  t.mock.method(console, 'log', (...a: unknown[]) => void (out += a.join(' ') + '\n'));
  t.mock.method(console, 'error', (...a: unknown[]) => void (err += a.join(' ') + '\n'));
  try {
    return { code: await main(args), out, err };
  } finally {
    t.mock.restoreAll();
  }
}

describe('meshgate inject', () => {
  it('injects every pod template of a multi-document file and passes the rest through', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-kube-inject-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'app.yaml');
    await writeFile(
      file,
      `apiVersion: v1
kind: Service
metadata: {name: product}
spec: {ports: [{port: 8080, name: http}], selector: {app: product}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: product, namespace: shop}
spec:
  selector: {matchLabels: {app: product}}
  template:
    metadata: {labels: {app: product}}
    spec: {containers: [{name: app, image: product:1, ports: [{containerPort: 8080}]}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec: {containers: [{name: report, image: report:1}], restartPolicy: Never}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-agent}
spec:
  selector: {matchLabels: {app: node-agent}}
  template:
    metadata: {labels: {app: node-agent}}
    spec: {hostNetwork: true, containers: [{name: agent, image: agent:1}]}
`,
    );
    const { code, out, err } = await spawnCli(['inject', '-f', file, '--image', 'meshgate:test']);
    assert.equal(code, 0, err);
    const docs = parseAllDocuments(out).map((d) => d.toJS() as Json);
    assert.deepEqual(docs.map((d) => d.kind), ['Service', 'Deployment', 'CronJob', 'DaemonSet']);
    assert.equal(docs[0]!.spec.ports[0].port, 8080);
    const tmpl = docs[1]!.spec.template;
    assert.deepEqual(tmpl.spec.containers.map((c: Json) => c.name), ['app', 'istio-proxy']);
    assert.equal(tmpl.spec.containers[1].image, 'meshgate:test');
    const owner = tmpl.spec.containers[1].env.find((e: Json) => e.name === 'ISTIO_META_OWNER');
    assert.equal(owner.value, 'kubernetes://apis/apps/v1/namespaces/shop/deployments/product');
    assert.deepEqual(docs[2]!.spec.jobTemplate.spec.template.spec.initContainers.map((c: Json) => c.name), ['istio-init']);
    assert.deepEqual(docs[3]!.spec.template.spec.containers.map((c: Json) => c.name), ['agent'], 'hostNetwork is never injected');

    // Idempotent: injecting the output again changes nothing.
    const again = join(dir, 'again.yaml');
    await writeFile(again, out);
    const second = await run(t, ['inject', '-f', again, '--image', 'meshgate:test']);
    assert.deepEqual(parseAllDocuments(second.out).map((d) => d.toJS()), docs);
  });
});

describe('meshgate iptables --dry-run', () => {
  it("prints Istio's capture rules with the annotations' exclusions", async (t) => {
    const { code, out } = await run(t, ['iptables', '--dry-run', '-p', '15001', '-z', '15006', '-u', '1337', '-i', '*', '-x', '10.9.0.0/16', '-b', '*', '-d', '15090,15021,15020,9000', '-o', '5432,6379']);
    assert.equal(code, 0);
    const lines = out.trim().split('\n');
    assert.equal(lines[0], '* nat');
    assert.equal(lines.at(-1), 'COMMIT');
    for (const chain of ['ISTIO_INBOUND', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT', 'ISTIO_REDIRECT']) assert.ok(lines.includes(`-N ${chain}`), chain);
    const expectInOrder = [
      '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
      '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      '-A PREROUTING -p tcp -j ISTIO_INBOUND',
      '-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 9000 -j RETURN',
      '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
      '-A OUTPUT -j ISTIO_OUTPUT',
      '-A ISTIO_OUTPUT -p tcp -m multiport --dports 5432,6379 -j RETURN',
      '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -d 10.9.0.0/16 -j RETURN',
      '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
    ];
    let at = -1;
    for (const rule of expectInOrder) {
      const i = lines.indexOf(rule);
      assert.ok(i > at, `${rule} present and in order`);
      at = i;
    }
  });

  it('captures only the included ranges, and refuses what is not a CIDR or a port', async (t) => {
    const { out } = await run(t, ['iptables', '--dry-run', '-i', '10.96.0.0/12,10.0.0.1']);
    assert.ok(out.includes('-A ISTIO_OUTPUT -d 10.96.0.0/12 -j ISTIO_REDIRECT\n-A ISTIO_OUTPUT -d 10.0.0.1/32 -j ISTIO_REDIRECT\n-A ISTIO_OUTPUT -j RETURN\n'));
    assert.ok(!out.includes('-A ISTIO_OUTPUT -j ISTIO_REDIRECT'));
    const bad = await run(t, ['iptables', '--dry-run', '-x', '10.0.0.0/40']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /not an IPv4 CIDR/);
    const badPort = await run(t, ['iptables', '--dry-run', '-d', '70000']);
    assert.equal(badPort.code, 2);
  });
});
