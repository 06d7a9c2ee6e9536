// Kubernetes Ingress as tables: which Ingresses are served under each ingressControllerMode and
// class (Istio's rules), which gateway pods serve them (ingressSelector / ingressService), how each
// pathType becomes URI matches, and what validation says about the fields the API server checks.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ingressPathMatch } from '../src/core/ingress/paths.js';
import { gatewayLabels } from '../src/cli/options.js';
import { compileYaml, outcome } from './helpers/route-table.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { INGRESS_CLASSES, ingressYaml } from './helpers/ingress-yaml.js';

const SERVICE = serviceYaml('web', [{ pod: 'web-1', port: 9000 }]);

function meshConfig(mesh: string): string {
  return `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
${mesh.split('\n').map((l) => `    ${l}`).join('\n')}
---
`;
}

const ingress = (name: string, host: string, opts: { annotation?: string; className?: string } = {}): string => ingressYaml(name, host, opts);

const SET =
  INGRESS_CLASSES +
  ingress('none', 'none.example.com') +
  ingress('annotated', 'annotated.example.com', { annotation: 'istio' }) +
  ingress('other-annotation', 'other.example.com', { annotation: 'nginx' }) +
  ingress('classed', 'classed.example.com', { className: 'istio' }) +
  ingress('nginx-classed', 'nginx.example.com', { className: 'nginx' }) +
  ingress('missing-class', 'missing.example.com', { className: 'gone' }) +
  SERVICE;

function served(yaml: string, labels?: Record<string, string>): string[] {
  const c = compileYaml(yaml, labels ? { role: { labels } } : {});
  assert.deepEqual(c.errors, []);
  return ['none', 'annotated', 'other', 'classed', 'nginx', 'missing'].filter((h) => outcome(c.snapshot, { host: `${h}.example.com` }) !== 404);
}

describe('Ingress selection (MeshConfig ingressControllerMode, ingressClass, IngressClass)', () => {
  it("STRICT (Istio's default): the class annotation or an istio.io/ingress-controller IngressClass", () => {
    assert.deepEqual(served(SET), ['annotated', 'classed']);
  });

  it('DEFAULT: also Ingresses that name no class at all', () => {
    assert.deepEqual(served(meshConfig('ingressControllerMode: DEFAULT') + SET), ['none', 'annotated', 'classed']);
  });

  it('OFF: none, whatever their class', () => {
    assert.deepEqual(served(meshConfig('ingressControllerMode: "OFF"') + SET), []);
  });

  it('ingressClass renames the class the annotation must carry', () => {
    assert.deepEqual(served(meshConfig('ingressClass: nginx') + SET), ['other', 'classed']);
  });

  it('ingressSelector (else a non-default ingressService) picks the gateway pods that serve them', () => {
    const mine = meshConfig('ingressSelector: edge') + SET;
    assert.deepEqual(served(mine), []);
    assert.deepEqual(served(mine, { istio: 'edge' }), ['annotated', 'classed']);
    assert.deepEqual(served(meshConfig('ingressService: my-gw') + SET, { istio: 'my-gw' }), ['annotated', 'classed']);
    assert.deepEqual(served(meshConfig('ingressService: istio-ingressgateway') + SET), ['annotated', 'classed']);
  });

  it('a gateway given --gateway-name carries the labels Istio gives a Gateway API Gateway\'s own pods: no Ingress is its, unless --labels says so', () => {
    const edge = gatewayLabels(undefined, new Set(['shop/edge']));
    assert.deepEqual(edge, { 'gateway.networking.k8s.io/gateway-name': 'edge' });
    assert.deepEqual(served(SET, edge), []);
    assert.deepEqual(served(SET, gatewayLabels(undefined, new Set(['shop/edge', 'shop/internal']))), []);
    assert.deepEqual(served(SET, gatewayLabels('istio=ingressgateway', new Set(['shop/edge']))), ['annotated', 'classed']);
    assert.deepEqual(gatewayLabels(undefined), { app: 'istio-ingressgateway', istio: 'ingressgateway' });
  });
});

describe('Ingress paths as URI matches', () => {
  const table: Array<[string | undefined, 'Exact' | 'Prefix' | 'ImplementationSpecific', unknown]> = [
    ['/a/b', 'Exact', [{ uri: { exact: '/a/b' } }]],
    ['/a/b', 'Prefix', [{ uri: { exact: '/a/b' } }, { uri: { prefix: '/a/b/' } }]],
    ['/a/b/', 'Prefix', [{ uri: { exact: '/a/b' } }, { uri: { prefix: '/a/b/' } }]],
    ['/', 'Prefix', [{ uri: { prefix: '/' } }]],
    ['/a/*', 'ImplementationSpecific', [{ uri: { exact: '/a' } }, { uri: { prefix: '/a/' } }]],
    ['/a.*', 'ImplementationSpecific', [{ uri: { exact: '/a' } }, { uri: { prefix: '/a/' } }]],
    ['/a', 'ImplementationSpecific', [{ uri: { exact: '/a' } }]],
    ['/', 'ImplementationSpecific', [{ uri: { exact: '/' } }]],
    ['/*', 'ImplementationSpecific', undefined],
    [undefined, 'ImplementationSpecific', undefined],
  ];
  for (const [path, type, want] of table) {
    it(`${type} ${JSON.stringify(path)}`, () => assert.deepEqual(ingressPathMatch(path, type).match, want));
  }

  it('routes of one host: longer first, at one length Exact before Prefix, match-all last', () => {
    const yaml = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: order, namespace: default, annotations: {kubernetes.io/ingress.class: istio}}
spec:
  rules:
  - host: order.example.com
    http:
      paths:
      - {path: /*, pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /ab, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /ab, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /abc, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
${SERVICE}`;
    const vs = compileYaml(yaml).snapshot.routeConfigs.get('http.80')!.virtualHosts.find((v) => v.domain === 'order.example.com')!;
    assert.deepEqual(
      vs.routes.map((r) => `${r.source.line}:${r.conditions.map((c) => c.what).join(',') || 'any'}`),
      ['12:uri exact "/abc"', '12:uri prefix "/abc/"', '11:uri exact "/ab"', '10:uri exact "/ab"', '10:uri prefix "/ab/"', '9:any'],
    );
  });
});

describe('Ingress hosts and backends', () => {
  it('a rule without a host serves every Host; a path whose port name the Service lacks is left out', () => {
    const yaml = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: any, namespace: default, annotations: {kubernetes.io/ingress.class: istio}}
spec:
  rules:
  - http:
      paths:
      - {path: /web, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
      - {path: /admin, pathType: Prefix, backend: {service: {name: web, port: {name: admin}}}}
---
${SERVICE}`;
    const snapshot = compileYaml(yaml).snapshot;
    assert.notEqual(outcome(snapshot, { host: 'whatever.example.org', path: '/web/x' }), 404);
    assert.notEqual(outcome(snapshot, { host: 'other.example.net', path: '/web' }), 404);
    assert.equal(outcome(snapshot, { host: 'whatever.example.org', path: '/admin' }), 404);
  });
});

describe('Ingress validation', () => {
  const messages = (spec: string): string[] =>
    compileYaml(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: v, namespace: default}
spec:
${spec}
`).problems.map((p) => `${p.severity} ${p.field}: ${p.message}`);

  it('what the API server refuses is an error at the field', () => {
    const found = messages(`  rules:
  - host: 10.0.0.1
    http:
      paths:
      - {path: status, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /a//b, pathType: Exact, backend: {service: {name: web, port: {number: 80, name: http}}}}
      - {path: /x, backend: {service: {name: web}}}`);
    assert.ok(found.some((m) => m.startsWith('error spec.rules[0].host')), found.join('\n'));
    assert.ok(found.some((m) => m.startsWith('error spec.rules[0].http.paths[0].path') && m.includes('absolute')), found.join('\n'));
    assert.ok(found.some((m) => m.startsWith('error spec.rules[0].http.paths[1].path') && m.includes('"//"')), found.join('\n'));
    assert.ok(found.some((m) => m.startsWith('error spec.rules[0].http.paths[1].backend.service.port')), found.join('\n'));
    assert.ok(found.some((m) => m.startsWith('error spec.rules[0].http.paths[2].pathType')), found.join('\n'));
    assert.ok(found.some((m) => m.startsWith('error spec.rules[0].http.paths[2].backend.service.port')), found.join('\n'));
  });

  it('what Istio accepts but does not serve is a warning that says so', () => {
    const found = messages(`  defaultBackend: {service: {name: web, port: {number: 80}}}
  tls: [{hosts: [a.example.com]}]`);
    assert.ok(found.some((m) => m.startsWith('warning spec.defaultBackend') && m.includes('ignored')), found.join('\n'));
    assert.ok(found.some((m) => m.startsWith('warning spec.tls[0].secretName')), found.join('\n'));
  });

  it('neither rules nor defaultBackend is an error', () => {
    assert.ok(messages('  ingressClassName: istio').some((m) => m.startsWith('error spec:')));
  });
});
