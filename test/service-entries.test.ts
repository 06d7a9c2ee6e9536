// ServiceEntries in the registry: STATIC endpoints, DNS hosts as their own endpoints, defaults, and
// workloadSelector over WorkloadEntries and Pods.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import { buildRegistry } from '../src/core/registry/build.js';
import type { Service } from '../src/core/registry/types.js';
import { endpointPort } from '../src/core/registry/types.js';

function registryOf(yaml: string) {
  const { resources, problems } = parseConfigText(yaml, 'test.yaml');
  assert.deepEqual(problems, []);
  return buildRegistry(resources);
}

function service(yaml: string, host: string): Service {
  const s = registryOf(yaml).registry.lookup(host);
  assert.ok(s, `no service ${host}`);
  return s;
}

describe('ServiceEntry', () => {
  it('STATIC with endpoints: ports by name, weights, labels, defaults', () => {
    const s = service(
      `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: legacy, namespace: vm}
spec:
  hosts: [Legacy.Example.COM]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 8443, name: tls, protocol: tls, targetPort: 9443}
  endpoints:
  - {address: 192.168.0.1, ports: {http: 8080}, labels: {version: v1, security.istio.io/tlsMode: istio}, locality: r/z, weight: 3, serviceAccount: legacy}
  - {address: 192.168.0.2}
`,
      'legacy.example.com',
    );
    assert.equal(s.hostname, 'legacy.example.com');
    assert.equal(s.kind, 'ServiceEntry');
    assert.equal(s.resolution, 'STATIC');
    assert.equal(s.location, 'MESH_INTERNAL');
    assert.deepEqual(
      s.ports.map((p) => [p.number, p.name, p.protocol, p.targetPort]),
      [
        [80, 'http', 'HTTP', undefined],
        [8443, 'tls', 'TLS', 9443],
      ],
    );
    const [a, b] = s.endpoints;
    assert.deepEqual(
      [a!.address, a!.weight, a!.locality, a!.serviceAccount, a!.meshTls, a!.labels.version, s.ports.map((p) => endpointPort(a!, p))],
      ['192.168.0.1', 3, 'r/z', 'legacy', true, 'v1', [8080, 9443]],
    );
    assert.deepEqual([b!.address, b!.weight, b!.meshTls, b!.namespace, s.ports.map((p) => endpointPort(b!, p))], ['192.168.0.2', 1, false, 'vm', [80, 9443]]);
  });

  it('defaults: resolution NONE (no endpoints), location MESH_EXTERNAL, exportTo *', () => {
    const s = service(
      `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec: {hosts: [x.example.com], ports: [{number: 443, name: https, protocol: HTTPS}], subjectAltNames: [spiffe://x]}\n`,
      'x.example.com',
    );
    assert.equal(s.resolution, 'NONE');
    assert.equal(s.location, 'MESH_EXTERNAL');
    assert.deepEqual(s.exportTo, ['*']);
    assert.deepEqual(s.endpoints, []);
    assert.deepEqual(s.subjectAltNames, ['spiffe://x']);
  });

  it('DNS without endpoints: each host is its own endpoint; MESH_EXTERNAL never gets auto mTLS', () => {
    const { registry } = registryOf(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: [api.example.com, www.example.com]
  resolution: DNS
  ports: [{number: 443, name: https, protocol: HTTPS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext-with-endpoints}
spec:
  hosts: [db.example.com]
  resolution: DNS
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  endpoints: [{address: db1.internal, labels: {security.istio.io/tlsMode: istio}}, {address: db2.internal}]
`);
    for (const host of ['api.example.com', 'www.example.com']) {
      const s = registry.lookup(host)!;
      assert.deepEqual(
        s.endpoints.map((e) => [e.address, endpointPort(e, s.ports[0]!), e.meshTls]),
        [[host, 443, false]],
      );
    }
    const db = registry.lookup('db.example.com')!;
    assert.deepEqual(
      db.endpoints.map((e) => [e.address, e.meshTls]),
      [
        ['db1.internal', false],
        ['db2.internal', false],
      ],
    );
  });

  it('workloadSelector picks WorkloadEntries and Pods in its own namespace', () => {
    const s = service(
      `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vms, namespace: vm}
spec:
  hosts: [vms.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  workloadSelector: {labels: {app: vms}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: vm}
spec: {address: 172.16.0.1, labels: {app: vms, version: v1, security.istio.io/tlsMode: istio}, ports: {http: 9000}, serviceAccount: vm-sa, weight: 2}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-2, namespace: vm, labels: {app: vms, version: v2}}
spec: {address: 172.16.0.2, labels: {version: spec-v2}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-other-app, namespace: vm}
spec: {address: 172.16.0.3, labels: {app: other}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-other-ns, namespace: elsewhere}
spec: {address: 172.16.0.4, labels: {app: vms}}
---
apiVersion: v1
kind: Pod
metadata: {name: vms-pod, namespace: vm, labels: {app: vms, version: pod, security.istio.io/tlsMode: istio}}
spec: {serviceAccountName: pod-sa}
status: {podIP: 10.3.0.1}
`,
      'vms.internal',
    );
    assert.deepEqual(
      s.endpoints.map((e) => [e.address, e.labels.version, endpointPort(e, s.ports[0]!), e.weight, e.serviceAccount, e.meshTls]),
      [
        ['172.16.0.1', 'v1', 9000, 2, 'vm-sa', true],
        // Metadata labels win over spec labels.
        ['172.16.0.2', 'v2', 8080, 1, undefined, false],
        ['10.3.0.1', 'pod', 8080, 1, 'pod-sa', true],
      ],
    );
  });
});

