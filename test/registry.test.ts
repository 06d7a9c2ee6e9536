// The service registry: Kubernetes Services with EndpointSlices, Endpoints or selected Pods; port
// protocols; precedence between sources and host lookup (ServiceEntries: service-entries.test.ts).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import { buildRegistry } from '../src/core/registry/build.js';
import { kubePortProtocol, parseProtocol } from '../src/core/registry/protocol.js';
import type { Endpoint, Service } from '../src/core/registry/types.js';
import { endpointPort } from '../src/core/registry/types.js';

function registryOf(yaml: string, domain?: string) {
  const { resources, problems } = parseConfigText(yaml, 'test.yaml');
  assert.deepEqual(problems, []);
  return buildRegistry(resources, domain ? { domain } : {});
}

function service(yaml: string, host: string): Service {
  const s = registryOf(yaml).registry.lookup(host);
  assert.ok(s, `no service ${host}`);
  return s;
}

function byAddress(s: Service): Map<string, Endpoint> {
  return new Map(s.endpoints.map((e) => [e.address, e]));
}

describe('port protocols', () => {
  const cases: Array<[string | undefined, string | undefined, string | undefined, string]> = [
    ['http', undefined, undefined, 'HTTP'],
    ['http-web', undefined, undefined, 'HTTP'],
    ['HTTP2', undefined, undefined, 'HTTP2'],
    ['https-admin', undefined, undefined, 'HTTPS'],
    ['grpc', undefined, undefined, 'GRPC'],
    ['grpc-web', undefined, undefined, 'GRPC-WEB'],
    ['grpc-web-x', undefined, undefined, 'GRPC-WEB'],
    ['grpc-x', undefined, undefined, 'GRPC'],
    ['tcp-db', undefined, undefined, 'TCP'],
    ['tls', undefined, undefined, 'TLS'],
    ['mongo', undefined, undefined, 'MONGO'],
    ['mysql', undefined, undefined, 'MYSQL'],
    ['redis', undefined, undefined, 'REDIS'],
    ['web', undefined, undefined, 'UNKNOWN'],
    [undefined, undefined, undefined, 'UNKNOWN'],
    ['web', 'http', undefined, 'HTTP'],
    ['http', 'grpc', undefined, 'GRPC'],
    ['web', 'kubernetes.io/h2c', undefined, 'HTTP2'],
    ['web', 'kubernetes.io/ws', undefined, 'HTTP'],
    ['web', 'kubernetes.io/wss', undefined, 'HTTPS'],
    ['http', undefined, 'UDP', 'UDP'],
  ];
  for (const [name, app, l4, want] of cases) {
    it(`name=${name} appProtocol=${app} protocol=${l4} → ${want}`, () => assert.equal(kubePortProtocol(name, app, l4), want));
  }
  it('ServiceEntry protocols are case-insensitive', () => {
    assert.equal(parseProtocol('http'), 'HTTP');
    assert.equal(parseProtocol('Grpc-Web'), 'GRPC-WEB');
    assert.equal(parseProtocol(undefined), 'UNKNOWN');
    assert.equal(parseProtocol('quic'), 'UNKNOWN');
  });
});

const SLICE_CLUSTER = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080, targetPort: web}
  - {name: grpc-api, port: 9090, targetPort: 19090}
  - {name: metrics, port: 15000}
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v1
  namespace: shop
  labels:
    app: reviews
    version: v1
    security.istio.io/tlsMode: istio
    topology.kubernetes.io/region: eu-west
    topology.kubernetes.io/zone: eu-west-1a
    topology.istio.io/subzone: rack7
spec: {serviceAccountName: bookinfo-reviews}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v2
  namespace: shop
  labels: {app: reviews, version: v2}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v3
  namespace: shop
  labels: {app: reviews, version: v3, istio-locality: us-east.us-east-1b}
status: {podIP: 10.0.0.3}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: reviews-abc
  namespace: shop
  labels: {kubernetes.io/service-name: reviews}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: grpc-api, port: 19090}]
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true}
  zone: ignored-zone
  targetRef: {kind: Pod, name: reviews-v1, namespace: shop}
- addresses: [10.0.0.2]
  conditions: {ready: false}
  zone: eu-west-1c
- addresses: [10.0.0.3]
  targetRef: {kind: Pod, name: reviews-v3}
- addresses: [10.0.0.9]
  zone: eu-west-1b
`;

describe('Kubernetes Service with EndpointSlices', () => {
  const s = service(SLICE_CLUSTER, 'reviews.shop.svc.cluster.local');

  it('hostname, ports, resolution and location', () => {
    assert.equal(s.hostname, 'reviews.shop.svc.cluster.local');
    assert.equal(s.namespace, 'shop');
    assert.equal(s.kind, 'Service');
    assert.equal(s.resolution, 'STATIC');
    assert.equal(s.location, 'MESH_INTERNAL');
    assert.deepEqual(s.exportTo, ['*']);
    assert.deepEqual(s.sources, ['Service shop/reviews']);
    assert.deepEqual(
      s.ports.map((p) => [p.number, p.name, p.protocol, p.targetPort, p.targetPortName]),
      [
        [9080, 'http', 'HTTP', undefined, 'web'],
        [9090, 'grpc-api', 'GRPC', 19090, undefined],
        [15000, 'metrics', 'UNKNOWN', 15000, undefined],
      ],
    );
  });

  it('endpoint ports come from the slice, by port name', () => {
    const e = byAddress(s).get('10.0.0.1')!;
    assert.deepEqual(s.ports.map((p) => endpointPort(e, p)), [8080, 19090, 15000]);
  });

  const cases: Array<[string, Partial<Endpoint>]> = [
    [
      '10.0.0.1',
      {
        ready: true,
        serviceAccount: 'bookinfo-reviews',
        meshTls: true,
        locality: 'eu-west/eu-west-1a/rack7',
        namespace: 'shop',
        weight: 1,
      },
    ],
    // No targetRef: the pod is found by IP; its labels have no topology, so the slice zone is used.
    ['10.0.0.2', { ready: false, serviceAccount: 'default', meshTls: false, locality: '/eu-west-1c' }],
    // targetRef without a namespace means the slice's; istio-locality uses dots for slashes.
    ['10.0.0.3', { ready: true, meshTls: false, locality: 'us-east/us-east-1b' }],
    // No pod at all: no labels, no service account, the slice's zone.
    ['10.0.0.9', { ready: true, meshTls: false, locality: '/eu-west-1b', serviceAccount: undefined }],
  ];
  for (const [address, want] of cases) {
    it(`endpoint ${address}`, () => {
      const e = byAddress(s).get(address);
      assert.ok(e);
      for (const [k, v] of Object.entries(want)) assert.deepEqual(e[k as keyof Endpoint], v, k);
    });
  }

  it('endpoint labels are the pod labels', () => {
    const eps = byAddress(s);
    assert.equal(eps.get('10.0.0.1')!.labels.version, 'v1');
    assert.equal(eps.get('10.0.0.2')!.labels.version, 'v2');
    assert.deepEqual(eps.get('10.0.0.9')!.labels, {});
  });

  it('honours the cluster domain', () => {
    const { registry } = registryOf(SLICE_CLUSTER, 'corp.internal');
    assert.ok(registry.lookup('reviews.shop.svc.corp.internal'));
    assert.equal(registry.lookup('reviews.shop.svc.cluster.local'), undefined);
  });

  it('several slices for one service are merged; one address with different ports is several endpoints', () => {
    const extra = `${SLICE_CLUSTER}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-def, namespace: shop, labels: {kubernetes.io/service-name: reviews}}
ports: [{name: http, port: 8081}]
endpoints:
- addresses: [10.0.0.1]
- addresses: [10.0.0.7]
`;
    const all = service(extra, 'reviews.shop.svc.cluster.local').endpoints;
    const eps = byAddress(service(extra, 'reviews.shop.svc.cluster.local'));
    assert.deepEqual([...eps.keys()].sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.7', '10.0.0.9']);
    const ports1 = all.filter((e) => e.address === '10.0.0.1').map((e) => e.ports.get(9080)).sort();
    assert.deepEqual(ports1, [8080, 8081], 'host-network style: same address, two ports, two endpoints');
    assert.equal(eps.get('10.0.0.7')!.ports.get(9080), 8081);
  });
});

describe('Kubernetes Service with v1 Endpoints', () => {
  const yaml = `
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 80, targetPort: 9080}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: ratings, namespace: default}
subsets:
- addresses: [{ip: 10.1.0.1, targetRef: {kind: Pod, name: ratings-a}}]
  notReadyAddresses: [{ip: 10.1.0.2}]
  ports: [{name: http, port: 9081}]
---
apiVersion: v1
kind: Pod
metadata: {name: ratings-a, namespace: default, labels: {app: ratings, version: v1}}
status: {podIP: 10.1.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: not-used, namespace: default, labels: {app: ratings}}
status: {podIP: 10.1.0.3}
`;
  it('uses the subsets, not the selector', () => {
    const s = service(yaml, 'ratings.default.svc.cluster.local');
    assert.deepEqual(
      s.endpoints.map((e) => [e.address, e.ready, e.labels.version, endpointPort(e, s.ports[0]!)]),
      [
        ['10.1.0.1', true, 'v1', 9081],
        ['10.1.0.2', false, undefined, 9081],
      ],
    );
  });
});

describe('Kubernetes Service with only Pods', () => {
  const yaml = `
apiVersion: v1
kind: Service
metadata: {name: details, namespace: default}
spec:
  selector: {app: details}
  ports:
  - {name: http, port: 80, targetPort: http-web}
  - {name: tcp, port: 5000, targetPort: 5001}
---
apiVersion: v1
kind: Pod
metadata: {name: details-1, namespace: default, labels: {app: details, version: v1}}
spec:
  containers: [{name: app, ports: [{name: http-web, containerPort: 8000}]}]
status:
  podIP: 10.2.0.1
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: v1
kind: Pod
metadata: {name: details-2, namespace: default, labels: {app: details, version: v2}}
spec:
  containers: [{name: app, ports: [{name: http-web, containerPort: 8001}]}]
status:
  podIP: 10.2.0.2
  conditions: [{type: Ready, status: "False"}]
---
apiVersion: v1
kind: Pod
metadata: {name: details-done, namespace: default, labels: {app: details}}
status: {podIP: 10.2.0.3, phase: Succeeded}
---
apiVersion: v1
kind: Pod
metadata: {name: details-pending, namespace: default, labels: {app: details}}
status: {}
---
apiVersion: v1
kind: Pod
metadata: {name: details-elsewhere, namespace: other, labels: {app: details}}
status: {podIP: 10.9.0.1}
`;
  it('selects running pods with an IP in the namespace; named target ports resolve per pod', () => {
    const { registry, problems } = registryOf(yaml);
    assert.deepEqual(problems, []);
    const s = registry.lookup('details.default.svc.cluster.local')!;
    assert.deepEqual(
      s.endpoints.map((e) => [e.address, e.ready, e.labels.version, s.ports.map((p) => endpointPort(e, p))]),
      [
        ['10.2.0.1', true, 'v1', [8000, 5001]],
        ['10.2.0.2', false, 'v2', [8001, 5001]],
      ],
    );
  });

  it('warns when a named target port is missing on a selected pod', () => {
    const { registry, problems } = registryOf(yaml.replace('name: http-web, containerPort: 8001', 'name: other, containerPort: 8001'));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.severity, 'warning');
    assert.equal(problems[0]!.field, 'spec.ports[0].targetPort');
    const e = registry.lookup('details.default.svc.cluster.local')!.endpoints[1]!;
    assert.equal(e.ports.get(80), undefined);
  });

  it('a Service without selector and without endpoints has none', () => {
    const s = service(`apiVersion: v1\nkind: Service\nmetadata: {name: bare}\nspec: {ports: [{port: 80}]}\n`, 'bare.default.svc.cluster.local');
    assert.deepEqual(s.endpoints, []);
    assert.equal(s.ports[0]!.name, '');
  });

  it('an ExternalName Service resolves to its external name', () => {
    const s = service(
      `apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: default, annotations: {networking.istio.io/exportTo: ".,prod"}}\nspec: {type: ExternalName, externalName: api.example.com, ports: [{name: https, port: 443}]}\n`,
      'ext.default.svc.cluster.local',
    );
    assert.equal(s.resolution, 'DNS');
    assert.equal(s.location, 'MESH_EXTERNAL');
    assert.deepEqual(s.exportTo, ['.', 'prod']);
    assert.deepEqual(
      s.endpoints.map((e) => [e.address, endpointPort(e, s.ports[0]!)]),
      [['api.example.com', 443]],
    );
  });
});

describe('precedence and lookup', () => {
  const yaml = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: squat, namespace: default}
spec:
  hosts: [web.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  endpoints: [{address: 1.2.3.4}]
  subjectAltNames: [spiffe://cluster.local/ns/default/sa/web]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wide, namespace: default}
spec: {hosts: ["*.example.org"], resolution: NONE, ports: [{number: 80, name: http, protocol: HTTP}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: narrow, namespace: default}
spec: {hosts: ["*.api.example.org"], resolution: NONE, ports: [{number: 80, name: http, protocol: HTTP}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: one, namespace: default}
spec: {hosts: [shared.example.net], resolution: STATIC, ports: [{number: 80, name: http}], endpoints: [{address: 10.0.0.1}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: two, namespace: default}
spec: {hosts: [shared.example.net], resolution: STATIC, ports: [{number: 81, name: http}], endpoints: [{address: 10.0.0.1}, {address: 10.0.0.2}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: three, namespace: other}
spec: {hosts: [shared.example.net], resolution: STATIC, ports: [{number: 80, name: http}], endpoints: [{address: 10.0.0.3}]}
`;
  const { registry, problems } = registryOf(yaml);

  it('a Kubernetes Service keeps its host; the ServiceEntry only adds subjectAltNames', () => {
    const s = registry.lookup('web.default.svc.cluster.local')!;
    assert.equal(s.kind, 'Service');
    assert.deepEqual(
      s.ports.map((p) => p.number),
      [80],
    );
    assert.deepEqual(s.endpoints, []);
    assert.deepEqual(s.subjectAltNames, ['spiffe://cluster.local/ns/default/sa/web']);
    assert.deepEqual(s.sources, ['Service default/web', 'ServiceEntry default/squat']);
  });

  it('one host in one namespace: the oldest entry defines it, later ones add endpoints', () => {
    const s = registry.lookup('shared.example.net')!;
    assert.deepEqual(
      s.ports.map((p) => p.number),
      [80],
    );
    assert.deepEqual(
      s.endpoints.map((e) => e.address),
      ['10.0.0.1', '10.0.0.2'],
    );
    assert.deepEqual(s.sources, ['ServiceEntry default/one', 'ServiceEntry default/two']);
  });

  it('the same host from another namespace is reported and ignored', () => {
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.resource, 'ServiceEntry other/three');
    assert.equal(problems[0]!.field, 'spec.hosts[0]');
    assert.equal(problems[0]!.severity, 'warning');
  });

  const lookups: Array<[string, string | undefined]> = [
    ['web.default.svc.cluster.local', 'web.default.svc.cluster.local'],
    ['WEB.default.svc.cluster.local', 'web.default.svc.cluster.local'],
    ['a.example.org', '*.example.org'],
    ['x.api.example.org', '*.api.example.org'],
    ['api.example.org', '*.example.org'],
    ['example.org', undefined],
    ['*.example.org', '*.example.org'],
    ['*.v1.api.example.org', '*.api.example.org'],
    ['nothing.example.com', undefined],
  ];
  for (const [host, want] of lookups) {
    it(`lookup(${host}) → ${want}`, () => assert.equal(registry.lookup(host)?.hostname, want));
  }
});
