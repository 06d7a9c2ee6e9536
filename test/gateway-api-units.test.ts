// Unit tables for the Gateway API translation: YAML in, problems (file:line), status conditions and
// routes out. Validation, listener conflicts and protocols, allowedRoutes kinds and namespace
// selectors, --gateway-name narrowing, Istio's Hostname backends, and what `explain` prints.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import { formatProblem } from '../src/core/config/problem.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import { statusLines, type Condition } from '../src/core/gateway-api/conditions.js';
import { FIXED_DEPS, compileYaml, outcome } from './helpers/route-table.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { k8sGatewayYaml } from './helpers/gateway-api-yaml.js';

const svc = serviceYaml('app', [{ pod: 'app-1', port: 9999 }], { port: 8080 });

const gateway = k8sGatewayYaml;

const cond = (list: readonly Condition[] | undefined, type: string): string => {
  const c = list?.find((x) => x.type === type);
  return c ? `${c.status}/${c.reason}` : 'absent';
};

describe('Gateway API translation units', () => {
  it('validation reports file:line, resource and field, and leaves the route out', () => {
    const yaml = `${gateway('gw', '  - {name: http, port: 80, protocol: HTTP}')}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches:
    - path: {type: Prefix, value: /x}
    backendRefs: [{name: app}]
    filters:
    - type: RequestRedirect
      requestRedirect: {statusCode: 307, scheme: ftp}
`;
    const { errors } = compileYaml(yaml, { file: 'routes.yaml' });
    const text = errors.map(formatProblem);
    assert.ok(text.some((t) => t.startsWith('routes.yaml:16 HTTPRoute default/bad spec.rules[0].matches[0].path.type: "Prefix" is not allowed')), text.join('\n'));
    assert.ok(text.some((t) => t.includes('spec.rules[0].backendRefs[0].port: is required for a Service backend')), text.join('\n'));
    assert.ok(text.some((t) => t.includes('requestRedirect.scheme: "ftp" is not allowed')), text.join('\n'));
    assert.ok(text.some((t) => t.includes('spec.rules[0].filters: a rule with RequestRedirect must not have backendRefs')), text.join('\n'));
  });

  it('a Gateway API Gateway is never taken for an Istio Gateway, and names itself in kubectl terms', () => {
    const { problems, snapshot } = compileYaml(gateway('gw', '  - {name: udp, port: 53, protocol: UDP}'));
    assert.deepEqual(snapshot.resources.map((r) => r.kind), ['KubernetesGateway']);
    assert.ok(problems.some((p) => p.resource === 'Gateway.gateway.networking.k8s.io default/gw' && p.message.includes('UnsupportedProtocol')));
  });

  it('listeners: conflicts on one port, InvalidRouteKinds, certificate kinds', () => {
    const { snapshot } = compileYaml(
      gateway(
        'gw',
        `  - {name: a, port: 80, protocol: HTTP, hostname: a.example}
  - {name: a-again, port: 80, protocol: HTTP, hostname: a.example}
  - {name: tcp-on-80, port: 80, protocol: TCP}
  - {name: kinds, port: 81, protocol: HTTP, allowedRoutes: {kinds: [{kind: HTTPRoute}, {kind: TCPRoute}]}}
  - {name: cert, port: 443, protocol: HTTPS, tls: {certificateRefs: [{kind: ConfigMap, name: x}]}}`,
      ),
    );
    const l = snapshot.gatewayApi.gateways[0]!.listeners;
    assert.equal(cond(l[0]!.conditions, 'Programmed'), 'True/Programmed');
    assert.equal(cond(l[1]!.conditions, 'Conflicted'), 'True/HostnameConflict');
    assert.equal(cond(l[2]!.conditions, 'Conflicted'), 'True/ProtocolConflict');
    assert.equal(cond(l[3]!.conditions, 'ResolvedRefs'), 'False/InvalidRouteKinds');
    assert.deepEqual(l[3]!.supportedKinds.map((k) => k.kind), ['HTTPRoute']);
    assert.equal(cond(l[4]!.conditions, 'ResolvedRefs'), 'False/InvalidCertificateRef');
    assert.equal(cond(snapshot.gatewayApi.gateways[0]!.conditions, 'Accepted'), 'True/ListenersNotValid');
  });

  it('allowedRoutes from: Selector reads Namespace labels', () => {
    const yaml = `${gateway('gw', '  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {shared: "yes"}}}}}')}---
apiVersion: v1
kind: Namespace
metadata: {name: team-a, labels: {shared: "yes"}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a, namespace: team-a}
spec:
  parentRefs: [{name: gw, namespace: default}]
  rules: [{backendRefs: [{name: app, namespace: default, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b, namespace: team-b}
spec:
  parentRefs: [{name: gw, namespace: default}]
  rules: [{backendRefs: [{name: app, namespace: default, port: 8080}]}]
---
${svc}`;
    const { snapshot } = compileYaml(yaml);
    const parent = (ns: string) => snapshot.gatewayApi.routes.find((r) => r.resource.metadata.namespace === ns)!.parents[0]!.conditions;
    assert.equal(cond(parent('team-a'), 'Accepted'), 'True/Accepted');
    // Admitted, but the backend in default needs a grant from there.
    assert.equal(cond(parent('team-a'), 'ResolvedRefs'), 'False/RefNotPermitted');
    assert.equal(cond(parent('team-b'), 'Accepted'), 'False/NotAllowedByListeners');
  });

  it('--gateway-name narrows the Gateways a gateway serves', () => {
    const yaml = `${gateway('one', '  - {name: http, port: 80, protocol: HTTP, hostname: one.example}')}---
${gateway('two', '  - {name: http, port: 80, protocol: HTTP, hostname: two.example}')}`;
    const loaded = parseConfigText(yaml, 'gw.yaml');
    const role = { kind: 'gateway' as const, labels: { istio: 'ingressgateway' }, namespace: 'istio-system' };
    const all = buildSnapshot(loaded, role, FIXED_DEPS).snapshot;
    assert.deepEqual(all.gatewayApi.gateways.map((g) => g.resource.metadata.name), ['one', 'two']);
    const narrowed = buildSnapshot(loaded, { ...role, gatewayNames: new Set(['default/two']) }, FIXED_DEPS).snapshot;
    assert.deepEqual(narrowed.gatewayApi.gateways.map((g) => g.resource.metadata.name), ['two']);
    assert.deepEqual([...narrowed.listeners.get(80)!.servers.map((s) => s.hosts.join())], ['two.example']);
  });

  it('a Gateway of another controller\'s class is left alone', () => {
    const yaml = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.com/gateway}
---
${gateway('gw', '  - {name: http, port: 80, protocol: HTTP}').replace('gatewayClassName: meshgate', 'gatewayClassName: other')}`;
    const { snapshot } = compileYaml(yaml);
    assert.equal(snapshot.gatewayApi.gateways.length, 0);
    assert.equal(snapshot.listeners.size, 0);
  });

  it("Istio's Hostname backend (egress gateway task): a ServiceEntry host by name, refused when no ServiceEntry has it", () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cnn}
spec:
  hosts: [edition.cnn.com]
  ports: [{number: 80, name: http-port, protocol: HTTP}]
  resolution: DNS
---
${gateway('cnn-egress-gateway', '  - {name: http, hostname: edition.cnn.com, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Same}}}')}---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: forward-cnn-from-egress-gateway}
spec:
  parentRefs: [{name: cnn-egress-gateway}]
  hostnames: [edition.cnn.com]
  rules:
  - backendRefs: [{kind: Hostname, group: networking.istio.io, name: edition.cnn.com, port: 80}]
`;
    const ok = compileYaml(yaml);
    assert.deepEqual(ok.problems.map(formatProblem), []);
    assert.equal(outcome(ok.snapshot, { port: 80, host: 'edition.cnn.com', path: '/politics' }), 'outbound|80||edition.cnn.com');
    const lines = statusLines(compileYaml(yaml.replace('name: edition.cnn.com, port: 80}', 'name: www.cnn.com, port: 80}')).snapshot.gatewayApi);
    assert.ok(lines.includes('HTTPRoute default/forward-cnn-from-egress-gateway → default/cnn-egress-gateway: Accepted True, ResolvedRefs False (BackendNotFound): Hostname www.cnn.com is no host of a ServiceEntry or Service'), lines.join('\n'));
  });

  it('statusLines: what explain prints', () => {
    const yaml = `${gateway('gw', '  - {name: http, port: 80, protocol: HTTP}')}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: missing, port: 8080}]}]
`;
    const lines = statusLines(compileYaml(yaml).snapshot.gatewayApi);
    assert.deepEqual(lines, [
      'Gateway default/gw: Accepted True, Programmed True',
      '  listener http: attachedRoutes 1, Accepted True, Programmed True, ResolvedRefs True',
      'HTTPRoute default/r → default/gw: Accepted True, ResolvedRefs False (BackendNotFound): Service default/missing does not exist',
    ]);
  });
});
