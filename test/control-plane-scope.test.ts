// Integration: what the control plane sends each proxy, over real TLS on 127.0.0.1. Each proxy gets
// only what concerns it (Sidecar egress.hosts, exportTo, its own namespace's policies by selector, a
// gateway's bound routes, never a Secret); after the whole set, only deltas; a delta that does not
// apply is refused and the proxy resyncs keeping its config; and 200 stream clients (the real client
// code) all converge on a one-resource change. Nothing waits on a clock: waits are on conditions.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { loadOrCreateAuthority, type CertificateAuthority } from '../src/core/pki/authority.js';
import { ControlPlaneClient } from '../src/core/sources/control-plane-client.js';
import { ControlPlaneSource } from '../src/core/sources/control-plane-source.js';
import { decodeResources, resourceKey, type ProxyDescription, type StreamMessage } from '../src/core/sources/control-plane-wire.js';
import type { ConfigUpdate } from '../src/core/sources/source.js';
import { startControlPlane, type RunningControlPlane } from '../src/control/main.js';
import { ScopeIndex } from '../src/control/proxy-scope.js';
import { parseConfigText } from '../src/core/config/load.js';
import { FileTokenAuthenticator } from '../src/control/token-authenticator.js';
import { eventually } from './helpers/gateway.js';
import { INGRESS_CLASSES, ingressYaml } from './helpers/ingress-yaml.js';

const SHOP_TOKEN = 'shop-token-0123456789';
const GATEWAY_TOKEN = 'gateway-token-0123456789';
const TOKENS = `- {token: ${SHOP_TOKEN}, namespace: shop, serviceAccount: reviews}
- {token: ${GATEWAY_TOKEN}, namespace: istio-system, serviceAccount: ingress}
`;
const silent = pino({ level: 'silent' });

const service = (name: string, ns: string, port = 80): string => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: ${port}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-1, namespace: ${ns}, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.0.0.1], conditions: {ready: true}}]
`;

const policy = (name: string, ns: string, app: string): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: ${app}}}
  action: DENY
  rules: [{to: [{operation: {paths: [/admin]}}]}]
`;

const secret = (name: string, ns: string): string => `apiVersion: v1
kind: Secret
metadata: {name: ${name}, namespace: ${ns}}
type: kubernetes.io/tls
data: {tls.crt: Y2VydA==, tls.key: a2V5}
`;

const FILES: Record<string, string> = {
  'shop.yaml': [service('reviews', 'shop'), service('ratings', 'shop'), service('isolated', 'shop'), policy('reviews-deny', 'shop', 'reviews'), policy('ratings-deny', 'shop', 'ratings'), secret('shop-tls', 'shop')].join('---\n'),
  'other.yaml': [
    service('payments', 'other'),
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: payments-private, namespace: other}
spec:
  hosts: [payments]
  exportTo: [.]
  http: [{route: [{destination: {host: payments}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: payments-private, namespace: other}
spec:
  host: payments
  exportTo: [.]
`,
    policy('payments-deny', 'other', 'payments'),
    secret('other-keys', 'other'),
  ].join('---\n'),
  'team.yaml': service('billing', 'team'),
  'sidecars.yaml': `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: reviews, namespace: shop}
spec:
  workloadSelector: {labels: {app: reviews}}
  egress: [{hosts: [./*, team/*]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: isolated, namespace: shop}
spec:
  workloadSelector: {labels: {app: isolated}}
  egress: [{hosts: [~/*]}]
`,
  'gateways.yaml': `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: elsewhere, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bound, namespace: shop}
spec:
  hosts: [shop.example.com]
  gateways: [istio-system/gw]
  http: [{route: [{destination: {host: reviews}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: unbound, namespace: shop}
spec:
  hosts: [other.example.com]
  gateways: [istio-system/elsewhere]
  http: [{route: [{destination: {host: ratings}}]}]
`,
};

class Fixture {
  cp!: RunningControlPlane;
  ca!: CertificateAuthority;
  readonly clients: ControlPlaneClient[] = [];
  private constructor(readonly dir: string) {}

  static async create(files: Record<string, string>): Promise<Fixture> {
    const f = new Fixture(await mkdtemp(join(tmpdir(), 'meshgate-scope-')));
    await mkdir(join(f.dir, 'config'));
    for (const [name, text] of Object.entries(files)) await f.write(name, text);
    await writeFile(join(f.dir, 'tokens.yaml'), TOKENS);
    const authority = loadOrCreateAuthority(join(f.dir, 'ca'));
    assert.ok(authority.ok);
    f.ca = authority.ca;
    const tokens = await FileTokenAuthenticator.load(join(f.dir, 'tokens.yaml'));
    assert.ok(tokens.ok);
    f.cp = await startControlPlane({ configDir: join(f.dir, 'config'), ca: f.ca, authenticator: tokens.authenticator, port: 0, statusPort: 0, debugPort: 0, listenHost: '127.0.0.1', debounceMs: 10, logger: silent });
    return f;
  }

  write(name: string, text: string): Promise<void> {
    return writeFile(join(this.dir, 'config', name), text);
  }

  client(token: string): ControlPlaneClient {
    const c = new ControlPlaneClient({ url: `https://127.0.0.1:${this.cp.port}`, rootCertPem: this.ca.rootCertPem, token });
    this.clients.push(c);
    return c;
  }

  /** The keys of the whole set a proxy described so is sent on subscribing. */
  async keysFor(token: string, proxyId: string, description: ProxyDescription): Promise<string[]> {
    const client = this.client(token);
    const config = await new Promise<StreamMessage>((resolve, reject) => {
      const s = client.openStream(proxyId, {
        onMessage: (m) => {
          if (m.type !== 'config') return;
          s.close();
          resolve(m);
        },
        onEnd: reject,
      }, description);
    });
    assert.ok(config.type === 'config');
    const { resources, problems } = decodeResources(config.resources);
    assert.deepEqual(problems, []);
    return resources.map(resourceKey).sort();
  }

  async metrics(): Promise<string> {
    const r = await request(`http://127.0.0.1:${this.cp.debugPort}/metrics`);
    return r.body.text();
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.close();
    await this.cp.destroy();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A proxy's source with every update kept, acknowledging each as applied. */
async function subscribe(f: Fixture, token: string, proxyId: string, description: ProxyDescription): Promise<{ source: ControlPlaneSource; updates: ConfigUpdate[] }> {
  const updates: ConfigUpdate[] = [];
  const source = new ControlPlaneSource({ client: f.client(token), proxyId, description, backoff: { initialMs: 20, maxMs: 200 } });
  await source.start((u) => {
    updates.push(u);
    u.acknowledge?.({ accepted: true });
  });
  return { source, updates };
}

describe('control plane: each proxy receives what concerns it', () => {
  let f: Fixture;
  before(async () => {
    f = await Fixture.create(FILES);
  });
  after(async () => f?.close());

  it('a sidecar narrowed by its Sidecar egress.hosts gets its namespace and team/*, its own policies and Sidecar, no Secret', async () => {
    const keys = await f.keysFor(SHOP_TOKEN, 'reviews-1', { role: 'sidecar', labels: { app: 'reviews' } });
    for (const k of ['Service/shop/reviews', 'Service/shop/ratings', 'EndpointSlice/shop/ratings-1', 'Service/team/billing', 'EndpointSlice/team/billing-1', 'AuthorizationPolicy/shop/reviews-deny', 'Sidecar/shop/reviews']) {
      assert.ok(keys.includes(k), `${k} missing from ${keys.join(' ')}`);
    }
    // Another namespace (not imported), a policy selecting another workload, routes of gateways, Secrets, other workloads' Sidecars.
    for (const k of keys) assert.doesNotMatch(k, /\/other\/|^Secret\/|^Sidecar\/shop\/isolated|^Gateway\/|ratings-deny|VirtualService\/shop\/(bound|unbound)/, k);
  });

  it('without a Sidecar a workload sees every exported service, but not what exportTo keeps in its namespace', async () => {
    const keys = await f.keysFor(SHOP_TOKEN, 'ratings-1', { role: 'sidecar', labels: { app: 'ratings' } });
    assert.ok(keys.includes('Service/other/payments') && keys.includes('Service/team/billing') && keys.includes('AuthorizationPolicy/shop/ratings-deny'), keys.join(' '));
    for (const k of ['VirtualService/other/payments-private', 'DestinationRule/other/payments-private', 'AuthorizationPolicy/other/payments-deny', 'AuthorizationPolicy/shop/reviews-deny', 'Secret/shop/shop-tls', 'Secret/other/other-keys']) {
      assert.ok(!keys.includes(k), `${k} must not be sent`);
    }
  });

  it('~/* imports nothing: the workload keeps only the service that selects it (its inbound)', async () => {
    const keys = await f.keysFor(SHOP_TOKEN, 'isolated-1', { role: 'sidecar', labels: { app: 'isolated' } });
    assert.deepEqual(keys.filter((k) => k.startsWith('Service/')), ['Service/shop/isolated']);
  });

  it('a gateway gets the Gateways selecting it and the VirtualServices bound to them, never a Secret', async () => {
    const keys = await f.keysFor(GATEWAY_TOKEN, 'gw-1', { role: 'gateway', labels: { istio: 'ingressgateway' } });
    assert.ok(keys.includes('Gateway/istio-system/gw') && keys.includes('VirtualService/shop/bound'), keys.join(' '));
    for (const k of ['Gateway/istio-system/elsewhere', 'VirtualService/shop/unbound', 'Secret/shop/shop-tls', 'Secret/other/other-keys', 'AuthorizationPolicy/shop/reviews-deny']) {
      assert.ok(!keys.includes(k), `${k} must not be sent`);
    }
  });

  it("the namespace is the token's: a shop token describing itself as a gateway still gets no other namespace's policy and no Secret", async () => {
    const keys = await f.keysFor(SHOP_TOKEN, 'liar-1', { role: 'gateway', labels: { istio: 'ingressgateway' } });
    assert.ok(!keys.some((k) => k.startsWith('Secret/')));
    assert.ok(!keys.includes('AuthorizationPolicy/other/payments-deny'));
  });

  it('after the whole set only deltas: a change is sent to those it concerns, as what changed', async () => {
    const reviews = await subscribe(f, SHOP_TOKEN, 'reviews-delta', { role: 'sidecar', labels: { app: 'reviews' } });
    try {
      const first = reviews.updates[0]!;
      assert.equal(first.changed, undefined);
      // A change in namespace other (not imported by reviews) is not sent to it at all …
      await f.write('other.yaml', FILES['other.yaml']!.replace('port: 80', 'port: 81'));
      // … so the next update it gets is the change in its own namespace, alone.
      await f.write('shop.yaml', FILES['shop.yaml']!.replace(service('ratings', 'shop'), service('ratings', 'shop', 9090)));
      await eventually(async () => reviews.updates.length >= 2);
      assert.equal(reviews.updates.length, 2);
      const delta = reviews.updates[1]!;
      assert.deepEqual(delta.changed?.updated.map(resourceKey), ['Service/shop/ratings']);
      assert.deepEqual(delta.changed?.removed, []);
      // Unchanged resources are the very objects of the previous set: nothing else was decoded.
      const before = new Map(first.resources.map((r) => [resourceKey(r), r]));
      for (const r of delta.resources) if (resourceKey(r) !== 'Service/shop/ratings') assert.equal(r, before.get(resourceKey(r)));
      assert.equal(delta.resources.length, first.resources.length);

      // A removal travels as its key.
      await f.write('team.yaml', '');
      await eventually(async () => reviews.updates.length >= 3);
      assert.deepEqual([...(reviews.updates[2]!.changed?.removed ?? [])].sort(), ['EndpointSlice/team/billing-1', 'Service/team/billing']);
      assert.ok(!reviews.updates[2]!.resources.some((r) => r.metadata.namespace === 'team'));

      await eventually(async () => {
        const p = f.cp.registry.list().find((x) => x.id === 'reviews-delta');
        return p?.acknowledgedVersion === p?.sentVersion;
      });
      const metrics = await f.metrics();
      assert.match(metrics, /pilot_xds_pushes\{type="delta"\} [1-9]/);
      assert.match(metrics, /pilot_xds_pushes\{type="sotw"\} [1-9]/);
      assert.match(metrics, /pilot_proxy_convergence_time_count [1-9]/);
      // Why the pushes happened (a Service changed; a Service and its EndpointSlice went), how long
      // each took and how big it was, by istiod's names.
      assert.match(metrics, /pilot_push_triggers\{type="service"\} [1-9]/);
      assert.match(metrics, /pilot_push_triggers\{type="endpoint"\} [1-9]/);
      assert.match(metrics, /pilot_xds_push_time_count\{type="delta"\} [1-9]/);
      assert.match(metrics, /pilot_xds_push_time_bucket\{le="30",type="sotw"\} [1-9]/);
      const size = (type: string): number => Number(new RegExp(`^pilot_xds_config_size_bytes_sum\\{type="${type}"\\} (\\S+)$`, 'm').exec(metrics)?.[1]);
      assert.ok(size('sotw') > 0 && size('delta') > 0);
    } finally {
      await reviews.source.close();
    }
  });
});

describe('which Sidecar applies', () => {
  const sidecar = (ns: string, hosts: string[], selector?: string) => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: s-${ns}-${selector ?? 'all'}, namespace: ${ns}}
spec:
${selector ? `  workloadSelector: {labels: {app: ${selector}}}\n` : ''}  egress: [{hosts: ${JSON.stringify(hosts)}}]
`;
  const services = (keys: Set<unknown>) => [...keys].map((r) => resourceKey(r as never)).filter((k) => k.startsWith('Service/')).sort();
  const index = new ScopeIndex(
    parseConfigText(
      [service('a', 'team'), service('b', 'team'), service('c', 'shop'), service('d', 'istio-system'), sidecar('istio-system', ['./*', 'istio-system/*']), sidecar('shop', ['*/*']), sidecar('team', ['shop/*'], 'b')].join('---\n'),
      'sidecars.yaml',
    ).resources,
  );

  it("the root namespace's default applies where a namespace has none, with `.` the workload's namespace", () => {
    assert.deepEqual(services(index.scope({ role: 'sidecar', namespace: 'team', labels: { app: 'a' } })), ['Service/istio-system/d', 'Service/team/a', 'Service/team/b']);
  });

  it("a namespace's own Sidecar wins over the root's, and one selecting the workload over both", () => {
    assert.deepEqual(services(index.scope({ role: 'sidecar', namespace: 'shop', labels: {} })), ['Service/istio-system/d', 'Service/shop/c', 'Service/team/a', 'Service/team/b']);
    // b's own Sidecar imports shop/* only; its own Service is its inbound.
    assert.deepEqual(services(index.scope({ role: 'sidecar', namespace: 'team', labels: { app: 'b' } })), ['Service/shop/c', 'Service/team/b']);
  });

  it('gateways ignore Sidecars', () => {
    assert.equal(services(index.scope({ role: 'gateway', namespace: 'istio-system', labels: {} })).length, 4);
  });

  it('Ingresses and IngressClasses go to gateways (which serve them), never to sidecars', () => {
    const ingressIndex = new ScopeIndex(parseConfigText(INGRESS_CLASSES + ingressYaml('shop', 'shop.example.com', { namespace: 'shop', className: 'istio' }), 'ingress.yaml').resources);
    const kinds = (role: 'gateway' | 'sidecar') => [...ingressIndex.scope({ role, namespace: role === 'gateway' ? 'istio-system' : 'shop', labels: {} })].map((r) => resourceKey(r as never).split('/')[0]).sort();
    assert.deepEqual(kinds('gateway'), ['Ingress', 'IngressClass', 'IngressClass']);
    assert.deepEqual(kinds('sidecar'), []);
  });
});

describe('control plane client: a delta that does not apply', () => {
  it('keeps the last good set, asks for the whole set again, and applies that', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-delta-'));
    const auth = loadOrCreateAuthority(dir);
    assert.ok(auth.ok);
    const tls = auth.ca.issueServerCertificate(['127.0.0.1']);
    const wire = (name: string, order: number) => ({ origin: { file: 'a.yaml', line: 1 + order, order, lines: {} }, object: { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ports: [{ port: 80 }] } } });
    // Subscription 1: v1, then a delta whose resource has no origin. 2: v2, then a delta from a base it
    // never sent. 3: v3, then a line cut in half. 4: v4, then a good delta to v5.
    const scripts: string[][] = [
      [{ type: 'config', version: 'v1', resources: [wire('a', 0)] }, { type: 'delta', version: 'v1b', base: 'v1', updated: [{ object: {} }], removed: [] }].map((m) => JSON.stringify(m)),
      [{ type: 'config', version: 'v2', resources: [wire('a', 0), wire('b', 1)] }, { type: 'delta', version: 'v2b', base: 'elsewhere', updated: [], removed: ['Service/default/a'] }].map((m) => JSON.stringify(m)),
      [JSON.stringify({ type: 'config', version: 'v3', resources: [wire('a', 0), wire('b', 1), wire('c', 2)] }), '{"type":"delta","version":"v3b","ba'],
      [{ type: 'config', version: 'v4', resources: [wire('a', 0)] }, { type: 'delta', version: 'v5', base: 'v4', updated: [wire('d', 3)], removed: ['Service/default/a'] }].map((m) => JSON.stringify(m)),
    ];
    let subscriptions = 0;
    const server = createHttpsServer({ cert: tls.certChainPem, key: tls.keyPem }, (req, res) => {
      if (req.method === 'POST') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      const script = scripts[Math.min(subscriptions++, scripts.length - 1)]!;
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(`${JSON.stringify({ type: 'hello', proxy: 'p', identity: 'spiffe://cluster.local/ns/default/sa/p', heartbeatMs: 60_000 })}\n`);
      for (const line of script) res.write(`${line}\n`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = new ControlPlaneClient({ url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, rootCertPem: auth.ca.rootCertPem, token: 't' });
    const source = new ControlPlaneSource({ client, proxyId: 'p', backoff: { initialMs: 10, maxMs: 50 } });
    const seen: string[] = [];
    try {
      await source.start((u) => seen.push(u.resources.map((r) => r.metadata.name).join(',')));
      await eventually(async () => seen.length >= 5);
      // Every bad delta left the set as it was (nothing emitted for it) and was followed by the whole set.
      assert.deepEqual(seen.slice(0, 5), ['a', 'a,b', 'a,b,c', 'a', 'd']);
      assert.equal(source.resyncs, 3);
    } finally {
      await source.close();
      client.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('control plane: 200 connected proxies', () => {
  const PROXIES = 200;
  let f: Fixture;
  const proxies: Array<{ source: ControlPlaneSource; updates: ConfigUpdate[] }> = [];

  before(async () => {
    const services = Array.from({ length: 20 }, (_, i) => service(`svc-${i}`, 'shop')).join('---\n');
    f = await Fixture.create({ 'services.yaml': services, 'route.yaml': route('v1') });
  });
  after(async () => {
    await Promise.all(proxies.map((p) => p.source.close()));
    await f?.close();
  });

  function route(prefix: string): string {
    return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-0, namespace: shop}
spec:
  hosts: [svc-0]
  http: [{match: [{uri: {prefix: /${prefix}}}], route: [{destination: {host: svc-0}}]}]
`;
  }

  it('a one-resource change reaches all 200, each as a delta of that resource', async () => {
    // Two kinds of workload: the control plane computes each subset once, not once per proxy.
    for (let i = 0; i < PROXIES; i++) {
      proxies.push(await subscribe(f, SHOP_TOKEN, `app-${i}.shop`, { role: 'sidecar', labels: { app: i % 2 === 0 ? 'svc-0' : 'svc-1' } }));
    }
    assert.equal(f.cp.registry.list().filter((p) => p.connected).length, PROXIES);
    await f.write('route.yaml', route('v2'));
    await eventually(async () => proxies.every((p) => p.updates.length >= 2), 30_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${proxies.filter((p) => p.updates.length < 2).length} of ${PROXIES} without the change; versions sent ${JSON.stringify([...new Set(f.cp.registry.list().map((p) => p.sentVersion))])} global ${f.cp.version()}`);
    });
    for (const p of proxies) {
      assert.equal(p.updates.length, 2);
      assert.deepEqual(p.updates[1]!.changed?.updated.map(resourceKey), ['VirtualService/shop/svc-0']);
    }
    await eventually(async () => f.cp.registry.list().every((p) => p.acknowledgedVersion !== null && p.acknowledgedVersion === p.sentVersion), 30_000).catch((err: Error) => {
      const behind = f.cp.registry.list().filter((p) => p.acknowledgedVersion !== p.sentVersion);
      throw new Error(`${err.message}: ${behind.length} not acknowledged, e.g. ${JSON.stringify(behind[0])}`);
    });
    assert.match(await f.metrics(), new RegExp(`pilot_xds ${PROXIES}\\b`));
  });
});
