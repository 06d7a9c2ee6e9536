// Shapes the Gateway API's CRDs accept and meshgate once refused as errors: each case is a minimal
// resource of the kind the upstream conformance manifests hold. Valid but unserved settings must be
// status conditions (or warnings), never an error that drops the file.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblem } from '../src/core/config/problem.js';
import type { Condition } from '../src/core/gateway-api/conditions.js';
import { compileYaml } from './helpers/route-table.js';

const cond = (list: readonly Condition[] | undefined, type: string): string => {
  const c = list?.find((x) => x.type === type);
  return c ? `${c.status}/${c.reason}` : 'absent';
};

function gatewayWith(specExtra: string): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: meshgate
${specExtra}  listeners:
  - {name: http, port: 80, protocol: HTTP}
`;
}

describe('Gateway API shapes the CRDs accept', () => {
  it('an address without a value asks for one to be assigned: no error, the Gateway is Accepted', () => {
    const { errors, snapshot } = compileYaml(gatewayWith('  addresses:\n  - type: IPAddress\n'));
    assert.deepEqual(errors.map(formatProblem), []);
    assert.equal(cond(snapshot.gatewayApi.gateways[0]?.conditions, 'Accepted'), 'True/Accepted');
  });

  it('a domain-prefixed address type is valid; one meshgate cannot serve is Accepted False (UnsupportedAddress)', () => {
    const { errors, snapshot } = compileYaml(gatewayWith('  addresses:\n  - {type: example.com/custom, value: anything}\n'));
    assert.deepEqual(errors.map(formatProblem), []);
    assert.equal(cond(snapshot.gatewayApi.gateways[0]?.conditions, 'Accepted'), 'False/UnsupportedAddress');
  });

  it('an address type that is neither core nor domain-prefixed is still an error', () => {
    const { errors } = compileYaml(gatewayWith('  addresses:\n  - {type: custom, value: anything}\n'));
    assert.ok(errors.map(formatProblem).some((t) => t.includes('spec.addresses[0].type: "custom" is not allowed')));
  });

  it("spec.tls.backend's client certificate is warned about and ignored: a backend that needs one refuses, so nothing fails open", () => {
    const { errors, problems, snapshot } = compileYaml(gatewayWith('  tls:\n    backend:\n      clientCertificateRef: {group: "", kind: Secret, name: client}\n'));
    assert.deepEqual(errors.map(formatProblem), []);
    assert.ok(problems.map(formatProblem).some((t) => t.includes('spec.tls.backend.clientCertificateRef: warning: a client certificate for backends is not implemented')));
    assert.equal(cond(snapshot.gatewayApi.gateways[0]?.conditions, 'Accepted'), 'True/Accepted');
  });

  it('client certificate validation (spec.tls.frontend, or a listener\'s tls.frontendValidation) refuses the Gateway rather than serve it without', () => {
    const frontend = compileYaml(gatewayWith('  tls:\n    frontend:\n      default:\n        validation:\n          caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}]\n'));
    assert.ok(frontend.errors.map(formatProblem).some((t) => t.includes('spec.tls.frontend: client certificate validation is not implemented')));
    assert.deepEqual(frontend.snapshot.gatewayApi.gateways, []);
    const listener = compileYaml(gatewayWith('').replace('{name: http, port: 80, protocol: HTTP}', '{name: https, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: cert}], frontendValidation: {caCertificateRefs: [{kind: ConfigMap, name: ca}]}}}'));
    assert.ok(listener.errors.map(formatProblem).some((t) => t.includes('spec.listeners[0].tls.frontendValidation: client certificate validation is not implemented')));
    assert.deepEqual(listener.snapshot.gatewayApi.gateways, []);
  });

  it('infrastructure.parametersRef to anything but a ConfigMap rejects the Gateway (InvalidParameters), not served', () => {
    const { errors, snapshot } = compileYaml(gatewayWith('  infrastructure:\n    parametersRef: {group: example.io, kind: Params, name: p}\n'));
    assert.deepEqual(errors.map(formatProblem), []);
    assert.equal(cond(snapshot.gatewayApi.gateways[0]?.conditions, 'Accepted'), 'False/InvalidParameters');
    assert.equal(cond(snapshot.gatewayApi.gateways[0]?.conditions, 'Programmed'), 'False/Invalid');
    const configMap = compileYaml(gatewayWith('  infrastructure:\n    parametersRef: {group: "", kind: ConfigMap, name: p}\n'));
    assert.equal(cond(configMap.snapshot.gatewayApi.gateways[0]?.conditions, 'Accepted'), 'True/Accepted');
  });

  it('a TLS listener in Terminate mode carries TCPRoutes: one that asks only for TLSRoutes is Accepted False (UnsupportedValue), not served empty', () => {
    const listener = (kinds: string): string => gatewayWith('').replace('{name: http, port: 80, protocol: HTTP}', `{name: tls, port: 8443, protocol: TLS, tls: {mode: Terminate, certificateRefs: [{name: cert}]}${kinds}}`);
    const tlsOnly = compileYaml(listener(', allowedRoutes: {kinds: [{kind: TLSRoute}]}')).snapshot.gatewayApi.gateways[0]!.listeners[0]!;
    assert.equal(cond(tlsOnly.conditions, 'Accepted'), 'False/UnsupportedValue');
    const open = compileYaml(listener('')).snapshot.gatewayApi.gateways[0]!.listeners[0]!;
    assert.equal(cond(open.conditions, 'Accepted'), 'True/Accepted');
    assert.deepEqual(open.supportedKinds.map((k) => k.kind), ['TCPRoute']);
  });
});
