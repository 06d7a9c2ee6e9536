// The demo: gateway-config/services.yaml must describe exactly the backends that src/demo/topology.ts
// starts, the embedded config must load without problems, and the demo's rules must route as the
// README says when run through a real gateway.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { parseConfigText } from '../src/core/config/load.js';
import type { Resource } from '../src/core/model/resource.js';
import { startBackend, type BackendReply, type RunningBackend } from '../src/demo/backend.js';
import { DEMO_ADDRESS, DEMO_HOSTS, DEMO_NAMESPACE, DEMO_WORKLOADS } from '../src/demo/topology.js';
import type { TestGateway } from './helpers/gateway.js';

// dist/test/ → the package root.
const CONFIG_DIR = fileURLToPath(new URL('../../gateway-config/', import.meta.url));

async function loadFile(name: string): Promise<{ resources: Resource[]; text: string }> {
  const text = await readFile(join(CONFIG_DIR, name), 'utf8');
  const { resources, problems } = parseConfigText(text, name);
  assert.deepEqual(problems, [], `${name} parses without problems`);
  return { resources, text };
}

const raw = (r: Resource) => r.raw as Record<string, any>;
const ofKind = (rs: Resource[], kind: string) => rs.filter((r) => r.kind === kind);

describe('demo config agrees with the demo topology', () => {
  it('services.yaml has one Service per demo service, port 80 named http', async () => {
    const { resources } = await loadFile('services.yaml');
    const services = ofKind(resources, 'Service');
    const names = [...new Set(DEMO_WORKLOADS.map((w) => w.service))].sort();
    assert.deepEqual(services.map((s) => s.metadata.name).sort(), names);
    for (const s of services) {
      assert.equal(s.metadata.namespace, DEMO_NAMESPACE);
      const spec = raw(s).spec;
      assert.deepEqual(spec.selector, { app: s.metadata.name });
      assert.deepEqual(spec.ports, [{ name: 'http', port: 80, targetPort: 'http' }]);
    }
  });

  it('services.yaml has a Pod and an EndpointSlice for each workload, at its port, and nothing else', async () => {
    const { resources } = await loadFile('services.yaml');
    const pods = ofKind(resources, 'Pod');
    const slices = ofKind(resources, 'EndpointSlice');
    assert.equal(pods.length, DEMO_WORKLOADS.length);
    assert.equal(slices.length, DEMO_WORKLOADS.length);
    assert.equal(resources.length, pods.length + slices.length + ofKind(resources, 'Service').length);
    for (const w of DEMO_WORKLOADS) {
      const pod = pods.find((p) => p.metadata.name === w.instance);
      assert.ok(pod, `Pod ${w.instance}`);
      assert.equal(pod.metadata.namespace, DEMO_NAMESPACE);
      assert.deepEqual(pod.metadata.labels, { app: w.service, version: w.version, 'security.istio.io/tlsMode': 'istio' });
      assert.equal(raw(pod).spec.serviceAccountName, w.serviceAccount);
      assert.equal(raw(pod).status.podIP, DEMO_ADDRESS);

      const slice = slices.find((s) => raw(s).endpoints?.[0]?.targetRef?.name === w.instance);
      assert.ok(slice, `EndpointSlice for ${w.instance}`);
      assert.equal(slice.metadata.namespace, DEMO_NAMESPACE);
      assert.equal(slice.metadata.labels['kubernetes.io/service-name'], w.service);
      const body = raw(slice);
      assert.deepEqual(body.ports.map((p: { name: string; port: number }) => [p.name, p.port]), [['http', w.port]]);
      assert.equal(body.endpoints.length, 1);
      assert.deepEqual(body.endpoints[0].addresses, [DEMO_ADDRESS]);
      assert.equal(body.endpoints[0].targetRef.kind, 'Pod');
    }
    const ports = DEMO_WORKLOADS.flatMap((w) => [w.port, w.appPort, w.outboundPort]);
    assert.equal(new Set(ports).size, ports.length, 'ports are distinct');
  });

  it('every config file loads without problems, and the Gateway serves the demo hosts', async () => {
    const files = (await readdir(CONFIG_DIR)).filter((f) => f.endsWith('.yaml')).sort();
    assert.deepEqual(files, ['destination-rules.yaml', 'gateway-api.yaml', 'gateway.yaml', 'security.yaml', 'services.yaml', 'virtual-services.yaml']);
    for (const f of files) await loadFile(f);
    const { resources } = await loadFile('gateway.yaml');
    const [gw] = resources;
    assert.equal(gw?.metadata.name, 'demo-gateway');
    const servers = raw(gw!).spec.servers as Array<{ port: { number: number }; hosts: string[] }>;
    const onPort = (n: number) => servers.filter((s) => s.port.number === n).flatMap((s) => s.hosts).sort();
    assert.deepEqual(onPort(80), [...DEMO_HOSTS].sort());
    assert.deepEqual(onPort(443), [...DEMO_HOSTS].sort());
  });

  it('DestinationRule subsets select versions that demo pods carry', async () => {
    const { resources } = await loadFile('destination-rules.yaml');
    for (const dr of resources) {
      const spec = raw(dr).spec;
      for (const subset of spec.subsets) {
        const hit = DEMO_WORKLOADS.some((w) => w.service === spec.host && w.version === subset.labels.version);
        assert.ok(hit, `${spec.host} subset ${subset.name} selects a demo pod`);
      }
    }
  });

  it('the Kubernetes ConfigMap (gateway-config/Kustomization) packs every file but services.yaml', async () => {
    const k = parseYaml(await readFile(join(CONFIG_DIR, 'Kustomization'), 'utf8')) as { configMapGenerator: { name: string; files: string[] }[] };
    const yamls = (await readdir(CONFIG_DIR)).filter((f) => f.endsWith('.yaml') && f !== 'services.yaml').sort();
    assert.equal(k.configMapGenerator[0]?.name, 'meshgate-config');
    assert.deepEqual([...(k.configMapGenerator[0]?.files ?? [])].sort(), yamls);
  });
});

describe('demo backend', () => {
  let b: RunningBackend;
  before(async () => {
    b = await startBackend({ service: 'svc', version: 'v9', instance: 'svc-v9-0', port: 0 });
  });
  after(() => b.close());

  it('says who answered and echoes what it received, counting the body', async () => {
    const r = await request(`http://127.0.0.1:${b.port}/a/b?q=1`, { method: 'POST', headers: { 'x-test': 'yes', host: 'svc.example' }, body: Buffer.alloc(100_000, 1) });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /application\/json/);
    const j = (await r.body.json()) as BackendReply;
    assert.equal(j.service, 'svc');
    assert.equal(j.version, 'v9');
    assert.equal(j.instance, 'svc-v9-0');
    assert.equal(j.method, 'POST');
    assert.equal(j.path, '/a/b?q=1');
    assert.equal(j.host, 'svc.example');
    assert.equal(j.headers['x-test'], 'yes');
    assert.equal(j.bodyBytes, 100_000);
  });

  it('answers /healthz', async () => {
    const r = await request(`http://127.0.0.1:${b.port}/healthz`);
    assert.equal(r.statusCode, 200);
    assert.equal(((await r.body.json()) as { status: string }).status, 'ok');
  });

  it('close() is safe to call twice', async () => {
    const extra = await startBackend({ service: 's', version: 'v1', instance: 's-0', port: 0 });
    await Promise.all([extra.close(), extra.close()]);
  });
});

describe('demo rules through a real gateway', () => {
  let gw: TestGateway;
  const backends: RunningBackend[] = [];

  before(async () => {
    // The same YAML with each fixed demo port swapped for an ephemeral one, so this test never
    // collides with a demo someone is running.
    let services = await readFile(join(CONFIG_DIR, 'services.yaml'), 'utf8');
    for (const w of DEMO_WORKLOADS) {
      const b = await startBackend({ service: w.service, version: w.version, instance: w.instance, port: 0 });
      backends.push(b);
      services = services.replace(new RegExp(`\\b${w.port}\\b`, 'g'), String(b.port));
    }
    const files: Record<string, string> = { 'services.yaml': services };
    for (const f of ['gateway.yaml', 'virtual-services.yaml', 'destination-rules.yaml']) files[f] = await readFile(join(CONFIG_DIR, f), 'utf8');
    // Imported here so that the config checks above still run when the gateway cannot load.
    const { startTestGateway } = await import('./helpers/gateway.js');
    gw = await startTestGateway(files, { seed: 7 });
  });
  after(async () => {
    await gw?.close();
    await Promise.all(backends.map((b) => b.close()));
  });

  const who = async (host: string, path = '/') => {
    const r = await gw.get(host, path);
    return r.status === 200 ? `${r.json<BackendReply>().service} ${r.json<BackendReply>().version}` : String(r.status);
  };

  it('user.example.com over plain HTTP is redirected to HTTPS', async () => {
    const r = await gw.get('user.example.com:8080', '/anything?x=1');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'https://user.example.com/anything?x=1');
  });

  it('product.example.com → product-service, mostly v1 with some v2', async () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 200; i++) {
      const w = await who('product.example.com');
      counts[w] = (counts[w] ?? 0) + 1;
    }
    assert.deepEqual(Object.keys(counts).sort(), ['product-service v1', 'product-service v2']);
    assert.ok(counts['product-service v1']! > counts['product-service v2']! * 4, JSON.stringify(counts));
  });

  it('api.example.com routes by path prefix, and anything else is 404', async () => {
    assert.equal(await who('api.example.com', '/user/42'), 'user-service v1');
    assert.match(await who('product.example.com:8080', '/anything'), /^product-service v[12]$/);
    assert.match(await who('api.example.com', '/product/7'), /^product-service v[12]$/);
    assert.equal(await who('api.example.com', '/orders'), '404');
    assert.equal(await who('unknown.example.com'), '404');
  });
});
