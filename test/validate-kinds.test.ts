// Each kind's validator is found where the dispatch table of core/config/validate.ts says it is (the
// module is loaded with the first resource of its kind, by name): a document of every kind, empty
// or not, is judged by its validator, never left out as "could not be validated"; a kind it does
// not read is named with what was probably meant.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import { validateResource } from '../src/core/config/validate.js';

const KINDS: ReadonlyArray<readonly [apiVersion: string, kind: string]> = [
  ['networking.istio.io/v1', 'Gateway'],
  ['networking.istio.io/v1', 'VirtualService'],
  ['networking.istio.io/v1', 'DestinationRule'],
  ['networking.istio.io/v1', 'ServiceEntry'],
  ['networking.istio.io/v1', 'WorkloadEntry'],
  ['networking.istio.io/v1', 'Sidecar'],
  ['security.istio.io/v1', 'PeerAuthentication'],
  ['security.istio.io/v1', 'AuthorizationPolicy'],
  ['security.istio.io/v1', 'RequestAuthentication'],
  ['telemetry.istio.io/v1', 'Telemetry'],
  ['meshgate.io/v1', 'RateLimitPolicy'],
  ['cert-manager.io/v1', 'Issuer'],
  ['cert-manager.io/v1', 'ClusterIssuer'],
  ['cert-manager.io/v1', 'Certificate'],
  ['gateway.networking.k8s.io/v1', 'GatewayClass'],
  ['gateway.networking.k8s.io/v1', 'Gateway'],
  ['gateway.networking.k8s.io/v1', 'HTTPRoute'],
  ['gateway.networking.k8s.io/v1', 'GRPCRoute'],
  ['gateway.networking.k8s.io/v1alpha2', 'TLSRoute'],
  ['gateway.networking.k8s.io/v1alpha2', 'TCPRoute'],
  ['gateway.networking.k8s.io/v1beta1', 'ReferenceGrant'],
  // The standard channel serves these at v1 too, with the same schema.
  ['gateway.networking.k8s.io/v1', 'TLSRoute'],
  ['gateway.networking.k8s.io/v1', 'TCPRoute'],
  ['gateway.networking.k8s.io/v1', 'ReferenceGrant'],
  ['v1', 'Service'],
  ['v1', 'Endpoints'],
  ['v1', 'ConfigMap'],
  ['discovery.k8s.io/v1', 'EndpointSlice'],
];

describe('validator dispatch', () => {
  for (const [apiVersion, kind] of KINDS) {
    it(`${apiVersion} ${kind} is judged by its own validator`, () => {
      const loaded = parseConfigText(`apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: one, namespace: default}\nspec: {}\n`, 'kinds.yaml');
      assert.equal(loaded.resources.length, 1, loaded.problems.map((p) => p.message).join('; '));
      const problems = validateResource(loaded.resources[0]!);
      assert.deepEqual(problems.filter((p) => p.message.startsWith('could not be validated')), []);
    });
  }
});

// A misspelt kind or group would leave the resource out with only "not a kind meshgate reads": the
// warning names what was meant, and a kind meshgate does not read (ProxyConfig) gets no guess.
describe('a kind meshgate does not read', () => {
  const warning = (apiVersion: string, kind: string): string => {
    const loaded = parseConfigText(`apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: one}\nspec: {}\n`, 'kinds.yaml');
    assert.equal(loaded.resources.length, 0);
    return loaded.problems.map((p) => `${p.severity}: ${p.message}`).join('; ');
  };
  for (const [apiVersion, kind, meant] of [
    ['networking.istio.io/v1beta1', 'VirtualServce', '; did you mean `VirtualService`?'],
    ['gateway.networking.k8s.io/v1', 'HTTPRoutes', '; did you mean `HTTPRoute`?'],
    ['gateway.networking.k8s.io/v1', 'Gatway', '; did you mean `Gateway`?'],
    ['v1', 'Servce', '; did you mean `Service`?'],
    ['networking.isito.io/v1', 'VirtualService', '; VirtualService is networking.istio.io/v1'],
    ['networking.istio.io/v1beta1', 'ProxyConfig', ''],
    ['serving.knative.dev/v1', 'Service', ''],
  ] as const) {
    it(`${apiVersion} ${kind}: a warning${meant ? ' naming what was meant' : ', no guess'}`, () => {
      assert.equal(warning(apiVersion, kind), `warning: ${apiVersion} ${kind} is not a kind meshgate reads; ignored${meant}`);
    });
  }
});

// istioctl installs an IstioOperator that has no metadata.name; meshgate does not read the kind, so
// the only word on it is that it is ignored, and the file's other resources still load.
describe('a kind meshgate does not read, with no name', () => {
  it('is a warning naming the kind, not "metadata.name is required"', () => {
    const text = 'apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec: {profile: demo}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n';
    const loaded = parseConfigText(text, 'iop.yaml');
    assert.deepEqual(loaded.problems.map((p) => `${p.severity} ${p.resource} ${p.field}: ${p.message}`), [
      "warning IstioOperator kind: install.istio.io/v1alpha1 IstioOperator is not a kind meshgate reads; ignored; meshgate reads the mesh config from the istio ConfigMap of istio-system (data.mesh); copy this IstioOperator's spec.meshConfig there",
    ]);
    assert.deepEqual(loaded.resources.map((r) => `${r.kind} ${r.metadata.name}`), ['Service web']);
  });
  it('a kind meshgate reads still needs its name', () => {
    const loaded = parseConfigText('apiVersion: networking.istio.io/v1\nkind: Gateway\nspec: {}\n', 'gw.yaml');
    assert.deepEqual(loaded.problems.map((p) => `${p.severity} ${p.field}: ${p.message}`), ['error metadata.name: metadata.name is required']);
  });
});
