// Unit tables for BackendTLSPolicy: the status of policies that cannot be applied (a target that
// does not exist, a port name the Service lacks, a second policy for one target, a CA of another
// kind or without ca.crt), the warnings at file:line they give, what `explain` prints, and the TLS a
// sidecar's cluster to the target gets (Istio applies the policy to mesh traffic too), as explain shows it,
// and which proxies the control plane sends a policy and its CA ConfigMap to.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import { formatProblem } from '../src/core/config/problem.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import type { SidecarRole } from '../src/core/snapshot/snapshot.js';
import { statusLines } from '../src/core/gateway-api/conditions.js';
import { explainDestination } from '../src/core/routing/explain-destination.js';
import { compileYaml } from './helpers/route-table.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { KUBE_KINDS, toLoadResult, type KubeObject } from '../src/core/sources/kube-objects.js';
import { ScopeIndex, type ProxyMeta } from '../src/control/proxy-scope.js';
import { resourceKey } from '../src/core/sources/control-plane-wire.js';

const svc = serviceYaml('api', [{ pod: 'api-1', port: 9443 }], { port: 443, portName: 'https' });

function policy(name: string, spec: string, created?: string): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: ${name}, namespace: default${created ? `, creationTimestamp: "${created}"` : ''}}
spec:
${spec}
`;
}

const target = (name: string, section?: string): string => `  targetRefs: [{group: "", kind: Service, name: ${name}${section ? `, sectionName: ${section}` : ''}}]`;
const system = '  validation: {hostname: api.test, wellKnownCACertificates: System}';

describe('BackendTLSPolicy units', () => {
  it('reports targets that cannot be used, conflicts and CA references at file:line, and in explain', () => {
    const yaml = [
      svc,
      policy('older', `${target('api')}\n${system}`, '2025-01-01T00:00:00Z'),
      policy('newer', `${target('api')}\n${system}`, '2025-02-01T00:00:00Z'),
      policy('missing', `${target('nope')}\n${system}`),
      policy('no-port', `${target('api', 'grpc')}\n${system}`),
      policy('secret-ca', `${target('api', 'https')}\n  validation: {hostname: api.test, caCertificateRefs: [{group: "", kind: Secret, name: ca}]}`),
      policy('empty-ca', `${target('api', 'https')}\n  validation: {hostname: api.test, caCertificateRefs: [{group: "", kind: ConfigMap, name: empty}]}`),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: empty, namespace: default}\ndata: {other: x}\n',
    ].join('---\n');
    const { snapshot, problems: warnings } = compileYaml(yaml, { file: 'tls.yaml' });
    const text = warnings.map(formatProblem).filter((w) => w.includes('BackendTLSPolicy'));
    const lines = statusLines(snapshot.gatewayApi).filter((l) => l.startsWith('BackendTLSPolicy'));
    assert.deepEqual(lines, [
      'BackendTLSPolicy default/older → Service api: Accepted True, ResolvedRefs True',
      'BackendTLSPolicy default/newer → Service api: Accepted False (Conflicted): BackendTLSPolicy default/older is older and applies to api, ResolvedRefs True',
      'BackendTLSPolicy default/missing → Service nope: Accepted False (TargetNotFound): targetRef: Service default/nope does not exist, ResolvedRefs True',
      'BackendTLSPolicy default/no-port → Service api/grpc: Accepted False (TargetNotFound): targetRef: Service default/api has no port named grpc, ResolvedRefs True',
      'BackendTLSPolicy default/secret-ca → Service api/https: Accepted False (NoValidCACertificate): caCertificateRef Secret ca is not a ConfigMap, the only kind supported, ResolvedRefs False (InvalidKind): caCertificateRef Secret ca is not a ConfigMap, the only kind supported',
      'BackendTLSPolicy default/empty-ca → Service api/https: Accepted False (Conflicted): BackendTLSPolicy default/secret-ca is older and applies to api port https, ResolvedRefs False (InvalidCACertificateRef): caCertificateRef ConfigMap default/empty has no key ca.crt',
    ]);
    assert.ok(text.some((t) => /^tls\.yaml:\d+ BackendTLSPolicy default\/missing spec\.targetRefs\[0\]: warning: ancestor Service nope: Accepted False \(TargetNotFound\)/.test(t)), text.join('\n'));
    assert.ok(text.some((t) => /^tls\.yaml:\d+ BackendTLSPolicy default\/secret-ca spec\.validation\.caCertificateRefs\[0\]: warning: ResolvedRefs False \(InvalidKind\)/.test(t)), text.join('\n'));
  });

  it('validation: a hostname, a CA, SAN type and value, distinct targets', () => {
    const yaml = [
      svc,
      policy('bad', `  targetRefs: [{group: "", kind: Service, name: api}, {group: "", kind: Service, name: api}]
  validation:
    caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}]
    wellKnownCACertificates: System
    subjectAltNames: [{type: URI, hostname: api.test}]
  options: {example.com/x: "1"}`),
    ].join('---\n');
    const { problems } = compileYaml(yaml, { file: 'bad.yaml' });
    const text = problems.map(formatProblem);
    for (const want of [
      /spec\.targetRefs\[1\]\.sectionName: Service api is already a target/,
      /spec\.validation\.hostname: is required/,
      /spec\.validation\.wellKnownCACertificates: must not be set together with caCertificateRefs/,
      /spec\.validation\.subjectAltNames\[0\]\.uri: is required with type URI/,
      /spec\.validation\.subjectAltNames\[0\]\.hostname: goes with type Hostname, not URI/,
      /spec\.options\["example\.com\/x"\]: warning: option example\.com\/x is not read by meshgate/,
    ]) {
      assert.ok(text.some((t) => t.startsWith('bad.yaml:') && want.test(t)), `${want}\n${text.join('\n')}`);
    }
  });

  it("a sidecar's cluster to the target originates TLS by the policy", () => {
    const role: SidecarRole = { kind: 'sidecar', namespace: 'default', labels: { app: 'client' }, serviceAccount: 'client', outboundTrafficPolicy: 'ALLOW_ANY' };
    const yaml = [svc, policy('api', `${target('api')}\n  validation: {hostname: api.test, wellKnownCACertificates: System, subjectAltNames: [{type: Hostname, hostname: api.internal}]}`)].join('---\n');
    const { snapshot } = buildSnapshot(parseConfigText(yaml, 'mesh.yaml'), role, { random: () => 0.5, load: { active: () => 0 } });
    const cluster = snapshot.clusters.get('outbound|443||api.default.svc.cluster.local');
    assert.ok(cluster, [...snapshot.clusters.keys()].join(', '));
    assert.deepEqual(cluster.policy.tls, { mode: 'SIMPLE', sni: 'api.test', subjectAltNames: ['api.internal'] });
    const explained = explainDestination(cluster, snapshot.resources, { host: 'api', method: 'GET', path: '/', headers: {}, principal: 'cluster.local/ns/default/sa/client' }).lines;
    assert.ok(explained.includes('    TLS SIMPLE, SNI api.test, server certificate checked for api.internal'), explained.join('\n'));
  });

  it('in a cluster, a policy listed at v1 and v1alpha3 is read once, one served at v1alpha3 only is read, and only the ConfigMaps they name', () => {
    const obj = (apiVersion: string, name: string, ca: string): KubeObject => ({
      apiVersion,
      kind: 'BackendTLSPolicy',
      metadata: { name, namespace: 'shop' },
      spec: { targetRefs: [{ group: '', kind: 'Service', name: 'api' }], validation: { hostname: 'api.test', caCertificateRefs: [{ group: '', kind: 'ConfigMap', name: ca }] } },
    });
    const kinds = KUBE_KINDS.filter((k) => k.kind === 'BackendTLSPolicy' || (k.kind === 'ConfigMap' && k.onlyCaOfPolicies));
    const items = (k: (typeof kinds)[number]): KubeObject[] =>
      k.kind === 'ConfigMap'
        ? ['both-ca', 'old-ca', 'unrelated'].map((name) => ({ metadata: { name, namespace: 'shop' }, data: { 'ca.crt': 'x' } }))
        : k.apiVersion.endsWith('/v1')
          ? [obj(k.apiVersion, 'both', 'both-ca')]
          : [obj(k.apiVersion, 'both', 'both-ca'), obj(k.apiVersion, 'old', 'old-ca')];
    const { resources } = toLoadResult(kinds.map((kind) => ({ kind, items: items(kind) })));
    assert.deepEqual(resources.map((r) => `${r.kind} ${r.apiVersion} ${r.metadata.name}`).sort(), [
      'BackendTLSPolicy gateway.networking.k8s.io/v1 both',
      'BackendTLSPolicy gateway.networking.k8s.io/v1alpha3 old',
      'ConfigMap v1 both-ca',
      'ConfigMap v1 old-ca',
    ]);
  });
});

describe('BackendTLSPolicy from the control plane', () => {
  const text = [
    serviceYaml('api', [{ pod: 'api-1', port: 8080 }], { namespace: 'shop' }),
    serviceYaml('other', [{ pod: 'other-1', port: 8080 }], { namespace: 'team' }),
    `apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: api-tls, namespace: shop}
spec:
  targetRefs: [{group: "", kind: Service, name: api}]
  validation: {hostname: api.shop.test, caCertificateRefs: [{group: "", kind: ConfigMap, name: api-ca}]}
`,
    ...['api-ca', 'unrelated'].map((name) => `apiVersion: v1
kind: ConfigMap
metadata: {name: ${name}, namespace: shop}
data: {ca.crt: x}
`),
    `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: team-only, namespace: team}
spec: {egress: [{hosts: [./*]}]}
`,
  ].join('---\n');
  const index = new ScopeIndex(parseConfigText(text, 'backend-tls.yaml').resources);
  const keys = (p: ProxyMeta) => [...index.scope(p)].map((r) => resourceKey(r as never)).filter((k) => /^(BackendTLSPolicy|ConfigMap)\//.test(k)).sort();

  it('goes, with the ConfigMap of its CA and no other, to the proxies that send to its Service (sidecars too: Istio applies it to the mesh)', () => {
    assert.deepEqual(keys({ role: 'sidecar', namespace: 'shop', labels: {} }), ['BackendTLSPolicy/shop/api-tls', 'ConfigMap/shop/api-ca']);
    assert.deepEqual(keys({ role: 'gateway', namespace: 'istio-system', labels: {} }), ['BackendTLSPolicy/shop/api-tls', 'ConfigMap/shop/api-ca']);
    // A sidecar whose Sidecar imports only its own namespace never sends to shop/api.
    assert.deepEqual(keys({ role: 'sidecar', namespace: 'team', labels: {} }), []);
  });
});
