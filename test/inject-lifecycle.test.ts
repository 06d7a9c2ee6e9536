// The injected pod's start-up order and shutdown, as Istio's injector writes them: the pod's
// ProxyConfig (proxy.istio.io/config over the mesh's defaultConfig) holding the app until the proxy
// starts (proxy first, postStart `meshgate wait`), its terminationDrainDuration in PROXY_CONFIG and
// its proxyMetadata as env vars; native sidecars (the proxy an init container with restartPolicy
// Always after istio-init) from the pod's annotation or the injector's ENABLE_NATIVE_SIDECARS; and
// the same from the webhook's AdmissionReview and from `meshgate inject` run as a process.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parseAllDocuments } from 'yaml';
import { injectPod as injectPodJson, type InjectOptions } from '../src/core/inject/inject-pod.js';
import { InjectionError } from '../src/core/inject/proxy-config.js';
import { applyPatch } from '../src/core/inject/json-patch.js';
import { autoNativeSidecars, kubeletSupportsNativeSidecars, nativeSidecarMode } from '../src/core/inject/native-sidecars.js';
import { STARTUP_PROBE } from '../src/core/inject/lifecycle.js';
import { review } from '../src/control/injection-webhook.js';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';
import { formatProblem } from '../src/core/config/problem.js';

type Json = Record<string, any>;
const OPTS: InjectOptions = { image: 'meshgate:test', controlAddress: 'https://meshgate-control.istio-system.svc:15012' };
const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));

function jobPod(annotations: Record<string, string> = {}): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'report-x1', namespace: 'batch', labels: { app: 'report' }, annotations },
    spec: {
      restartPolicy: 'Never',
      initContainers: [{ name: 'fetch-input', image: 'curl:1' }],
      containers: [{ name: 'report', image: 'report:1', ports: [{ containerPort: 8080 }] }],
    },
  };
}

const names = (list: Json[] | undefined): string[] => (list ?? []).map((c) => c.name);
const proxyOf = (pod: Json): Json => [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].find((c: Json) => c.name === 'istio-proxy');
const envOf = (pod: Json): Record<string, string> => Object.fromEntries((proxyOf(pod).env as Json[]).filter((e) => 'value' in e).map((e) => [e.name, e.value]));
const WAIT = ['node', '/app/bin/meshgate.js', 'wait'];
const injectPod = (pod: Json, opts: InjectOptions): Json => injectPodJson(pod, opts) as Json;

describe('injection: holdApplicationUntilProxyStarts, drain settings and proxyMetadata', () => {
  it('a regular sidecar is the last container, istio-init the last init container, with Istio\'s startup probe', () => {
    const pod = injectPod(jobPod(), OPTS);
    assert.deepEqual(names(pod.spec.containers), ['report', 'istio-proxy']);
    assert.deepEqual(names(pod.spec.initContainers), ['fetch-input', 'istio-init']);
    assert.deepEqual(proxyOf(pod).startupProbe, { httpGet: { path: '/healthz/ready', port: 15021 }, initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 3, failureThreshold: 600 });
    assert.equal(proxyOf(pod).lifecycle, undefined);
    assert.equal(envOf(pod).PROXY_CONFIG, undefined, 'nothing set: no PROXY_CONFIG');
  });

  it('the pod\'s proxy.istio.io/config holds the app: the proxy first, with postStart meshgate wait', () => {
    for (const text of ['holdApplicationUntilProxyStarts: true', '{"holdApplicationUntilProxyStarts": true}']) {
      const pod = injectPod(jobPod({ 'proxy.istio.io/config': text }), OPTS);
      assert.deepEqual(names(pod.spec.containers), ['istio-proxy', 'report']);
      assert.deepEqual(proxyOf(pod).lifecycle, { postStart: { exec: { command: WAIT } } });
      assert.deepEqual(JSON.parse(envOf(pod).PROXY_CONFIG!), { holdApplicationUntilProxyStarts: true });
      // kubectl exec and logs still default to the app.
      assert.equal(pod.metadata.annotations['kubectl.kubernetes.io/default-container'], 'report');
    }
  });

  it('the mesh\'s defaultConfig holds every pod, a pod\'s own false releases it, the injector\'s option does not', () => {
    const held = (annotations: Record<string, string>, opts: Partial<InjectOptions>): boolean =>
      names(injectPod(jobPod(annotations), { ...OPTS, ...opts }).spec.containers)[0] === 'istio-proxy';
    assert.equal(held({}, { meshDefaultConfig: { holdApplicationUntilProxyStarts: true } }), true);
    assert.equal(held({ 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: false' }, { meshDefaultConfig: { holdApplicationUntilProxyStarts: true } }), false);
    assert.equal(held({}, { holdApplicationUntilProxyStarts: true }), true);
    assert.equal(held({ 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: false' }, { holdApplicationUntilProxyStarts: true }), true);
  });

  it('terminationDrainDuration reaches the sidecar in PROXY_CONFIG; proxyMetadata merges key by key into env vars', () => {
    const pod = injectPod(jobPod({ 'proxy.istio.io/config': 'terminationDrainDuration: 30s\nproxyMetadata:\n  EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"\n  MINIMUM_DRAIN_DURATION: 2s\n' }), {
      ...OPTS,
      meshDefaultConfig: { terminationDrainDuration: '10s', proxyMetadata: { MINIMUM_DRAIN_DURATION: '5s', ISTIO_META_DNS_CAPTURE: 'true' } },
    });
    const env = envOf(pod);
    assert.deepEqual(JSON.parse(env.PROXY_CONFIG!), {
      terminationDrainDuration: '30s',
      proxyMetadata: { MINIMUM_DRAIN_DURATION: '2s', ISTIO_META_DNS_CAPTURE: 'true', EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true' },
    });
    assert.equal(env.EXIT_ON_ZERO_ACTIVE_CONNECTIONS, 'true');
    assert.equal(env.MINIMUM_DRAIN_DURATION, '2s');
    assert.equal(env.ISTIO_META_DNS_CAPTURE, 'true');
  });

  it('an annotation that is no ProxyConfig fails injection; the webhook refuses the pod', () => {
    for (const text of ['[1, 2]', 'holdApplicationUntilProxyStarts: sometimes', 'a: [', 'proxyMetadata: 3']) {
      assert.throws(() => injectPod(jobPod({ 'proxy.istio.io/config': text }), OPTS), InjectionError, text);
    }
    const admission = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1', kind: { kind: 'Pod' }, namespace: 'batch', object: jobPod({ 'proxy.istio.io/config': '[1]' }) } });
    const answer = review(admission, { inject: OPTS, log: pino({ level: 'silent' }), namespaceLabels: () => ({ 'istio-injection': 'enabled' }) }).response as Json;
    assert.equal(answer.allowed, false);
    assert.match(answer.status.message, /proxy\.istio\.io\/config is not a ProxyConfig/);
  });
});

describe('the mesh config\'s defaultConfig, validated', () => {
  it('holdApplicationUntilProxyStarts must be a boolean and terminationDrainDuration a duration', () => {
    const mesh = ['apiVersion: v1', 'kind: ConfigMap', 'metadata: {name: istio, namespace: istio-system}', 'data:', '  mesh: |', '    defaultConfig:', '      holdApplicationUntilProxyStarts: maybe', '      terminationDrainDuration: soon', ''].join('\n');
    assert.deepEqual(validateAll(parseConfigText(mesh, 'mesh.yaml').resources).problems.map(formatProblem), [
      'mesh.yaml:7 ConfigMap istio-system/istio data.mesh.defaultConfig.holdApplicationUntilProxyStarts: must be true or false, not the string "maybe"',
      'mesh.yaml:8 ConfigMap istio-system/istio data.mesh.defaultConfig.terminationDrainDuration: "soon" is not a duration; write it like 1.5s, 300ms, 1m or 1h',
    ]);
    const good = mesh.replace('maybe', 'true').replace('soon', '20s');
    assert.deepEqual(validateAll(parseConfigText(good, 'mesh.yaml').resources).problems, []);
  });
});

describe('injection: native sidecars', () => {
  it('the pod\'s annotation makes the proxy an init container after istio-init, restartPolicy Always, with the startup probe', () => {
    const pod = injectPod(jobPod({ 'sidecar.istio.io/nativeSidecar': 'true' }), OPTS);
    assert.deepEqual(names(pod.spec.initContainers), ['istio-init', 'istio-proxy', 'fetch-input']);
    assert.deepEqual(names(pod.spec.containers), ['report']);
    const proxy = proxyOf(pod);
    assert.equal(proxy.restartPolicy, 'Always');
    assert.deepEqual(proxy.startupProbe, STARTUP_PROBE);
    assert.equal(proxy.readinessProbe.httpGet.port, 15021);
    const status = JSON.parse(pod.metadata.annotations['sidecar.istio.io/status']);
    assert.deepEqual(status.initContainers, ['istio-init', 'istio-proxy']);
    assert.equal(status.containers, null);
  });

  it('the injector\'s setting applies to pods that do not say; "false" on a pod wins', () => {
    assert.equal(names(injectPod(jobPod(), { ...OPTS, nativeSidecars: true }).spec.initContainers)[1], 'istio-proxy');
    assert.deepEqual(names(injectPod(jobPod({ 'sidecar.istio.io/nativeSidecar': 'false' }), { ...OPTS, nativeSidecars: true }).spec.containers), ['report', 'istio-proxy']);
  });

  it('a native sidecar needs no postStart hold (the kubelet waits for its startup probe) but drains in preStop; injecting twice leaves one proxy', () => {
    const once = injectPod(jobPod({ 'sidecar.istio.io/nativeSidecar': 'true', 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: true' }), OPTS);
    assert.deepEqual(proxyOf(once).lifecycle, { preStop: { exec: { command: ['node', '/app/bin/meshgate.js', 'request', '--debug-port', '15020', 'POST', 'drain'] } } });
    assert.deepEqual(names(once.spec.containers), ['report']);
    const twice = injectPod(once, OPTS);
    assert.deepEqual(names(twice.spec.initContainers), ['istio-init', 'istio-proxy', 'fetch-input']);
    assert.deepEqual(names(twice.spec.containers), ['report']);
  });

  it('ENABLE_NATIVE_SIDECARS: true, false, auto (default); auto asks the pod\'s node, else every node, for a 1.33+ kubelet', () => {
    assert.deepEqual(nativeSidecarMode(undefined), { mode: 'auto' });
    assert.deepEqual(nativeSidecarMode('true'), { mode: 'true' });
    assert.equal(nativeSidecarMode('yes').mode, 'false');
    assert.ok(nativeSidecarMode('yes').problem);
    assert.equal(kubeletSupportsNativeSidecars('v1.33.0'), true);
    assert.equal(kubeletSupportsNativeSidecars('v1.34.2-eks-1234'), true);
    assert.equal(kubeletSupportsNativeSidecars('v1.32.9'), false);
    assert.equal(kubeletSupportsNativeSidecars(''), false);
    const nodes = [{ name: 'new', kubeletVersion: 'v1.33.1' }, { name: 'old', kubeletVersion: 'v1.31.4' }];
    assert.equal(autoNativeSidecars(nodes, 'new'), true);
    assert.equal(autoNativeSidecars(nodes, 'old'), false);
    assert.equal(autoNativeSidecars(nodes), false, 'unscheduled: one old node turns it off');
    assert.equal(autoNativeSidecars(nodes.slice(0, 1)), true);
    assert.equal(autoNativeSidecars([]), false, 'no node known yet');
  });

  it('the webhook\'s patch places the native sidecar as the template does, by the node the pod is on', () => {
    const pod = jobPod();
    pod.spec.nodeName = 'new';
    const admission = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u2', kind: { kind: 'Pod' }, namespace: 'batch', object: pod } });
    const asked: Array<string | undefined> = [];
    const answer = review(admission, {
      inject: OPTS,
      log: pino({ level: 'silent' }),
      namespaceLabels: () => ({ 'istio-injection': 'enabled' }),
      nativeSidecars: (node) => (asked.push(node), node === 'new'),
    }).response as Json;
    assert.deepEqual(asked, ['new']);
    const patched: Json = applyPatch(pod, JSON.parse(Buffer.from(answer.patch, 'base64').toString('utf8')));
    assert.deepEqual(patched, injectPod(pod, { ...OPTS, nativeSidecars: true, workloadName: 'report-x1' }));
    assert.deepEqual(names(patched.spec.initContainers), ['istio-init', 'istio-proxy', 'fetch-input']);
  });
});

describe('meshgate inject: a Job with the mesh config\'s defaultConfig and ENABLE_NATIVE_SIDECARS', () => {
  const JOB = `apiVersion: batch/v1
kind: Job
metadata: {name: report, namespace: batch}
spec:
  template:
    metadata:
      annotations:
        proxy.istio.io/config: |
          proxyMetadata:
            EXIT_ON_ZERO_ACTIVE_CONNECTIONS: "true"
    spec:
      restartPolicy: Never
      containers: [{name: report, image: report:1}]
`;
  const run = (env: Record<string, string>, ...args: string[]): { status: number | null; pod?: Json; stderr: string } => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-inject-lifecycle-'));
    try {
      writeFileSync(join(dir, 'job.yaml'), JOB);
      writeFileSync(join(dir, 'mesh.yaml'), 'defaultConfig:\n  holdApplicationUntilProxyStarts: true\n  terminationDrainDuration: 20s\n');
      const r = spawnSync(process.execPath, [BIN, 'inject', '-f', join(dir, 'job.yaml'), '--mesh-config', join(dir, 'mesh.yaml'), ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
      return { status: r.status, stderr: r.stderr, ...(r.status === 0 ? { pod: (parseAllDocuments(r.stdout)[0]!.toJS() as Json).spec.template } : {}) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('holds the app (mesh defaultConfig), carries the drain and the pod\'s metadata; native with ENABLE_NATIVE_SIDECARS=true', () => {
    const held = run({ ENABLE_NATIVE_SIDECARS: 'auto' });
    assert.equal(held.status, 0, held.stderr);
    assert.deepEqual(names(held.pod!.spec.containers), ['istio-proxy', 'report'], 'offline, auto is off');
    assert.deepEqual(proxyOf(held.pod!).lifecycle.postStart.exec.command, WAIT);
    assert.equal(JSON.parse(envOf(held.pod!).PROXY_CONFIG!).terminationDrainDuration, '20s');
    assert.equal(envOf(held.pod!).EXIT_ON_ZERO_ACTIVE_CONNECTIONS, 'true');
    const native = run({ ENABLE_NATIVE_SIDECARS: 'true' });
    assert.equal(native.status, 0, native.stderr);
    assert.deepEqual(names(native.pod!.spec.initContainers), ['istio-init', 'istio-proxy']);
    assert.deepEqual(names(native.pod!.spec.containers), ['report']);
    assert.equal(proxyOf(native.pod!).restartPolicy, 'Always');
  });
});
