// Units of external authorization: the mesh config's providers as meshgate reads them (header
// lists, statusOnError, ports written as strings, broken providers kept with their reason), the
// warnings `meshgate validate` gives for them, and the analyzer's finding for a CUSTOM policy whose
// provider does not exist or cannot be reached.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';
import type { Resource } from '../src/core/model/resource.js';
import { extAuthzProviderSpecs, headerNames, portOf, statusOf } from '../src/core/policy/ext-authz-providers.js';
import { analysisContext } from '../src/core/analyze/context.js';
import { extAuthzProviders } from '../src/core/analyze/ext-authz-providers.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { meshConfigMap } from './helpers/ext-authz.js';

function load(text: string): { valid: Resource[]; problems: ReturnType<typeof validateAll>['problems'] } {
  const { resources, problems } = parseConfigText(text, 'mesh.yaml');
  assert.deepEqual(problems, []);
  return validateAll(resources);
}

const PROVIDERS = meshConfigMap(`    extensionProviders:
    - name: http
      envoyExtAuthzHttp:
        service: ext-authz.foo.svc.cluster.local
        port: "8000"
        timeout: 2s
        statusOnError: "503"
        failOpen: true
        pathPrefix: /check
        includeHeadersInCheck: [old-style]
        includeAdditionalHeadersInCheck: {X-Added: v}
        headersToUpstreamOnAllow: ["x-user-*"]
    - name: grpc
      envoyExtAuthzGrpc: {service: foo/ext-authz.foo.svc.cluster.local, port: 9000}
    - name: no-port
      envoyExtAuthzHttp: {service: ext-authz.foo.svc.cluster.local}
    - name: bad-status
      envoyExtAuthzHttp: {service: ext-authz.foo.svc.cluster.local, port: 8000, statusOnError: forbidden}
    - name: lone-star
      envoyExtAuthzHttp: {service: ext-authz.foo.svc.cluster.local, port: 8000, headersToDownstreamOnDeny: ["*"]}
    - name: relative
      envoyExtAuthzHttp: {service: ext-authz.foo.svc.cluster.local, port: 8000, pathPrefix: check}
    - name: tracing
      zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}`);

describe('ext_authz providers of the mesh config', () => {
  it('reads each field as Istio does: string ports, statusOnError, the deprecated header list, fixed headers', () => {
    const specs = extAuthzProviderSpecs(load(PROVIDERS).valid);
    assert.deepEqual([...specs.keys()], ['http', 'grpc', 'no-port', 'bad-status', 'lone-star', 'relative'], 'tracing providers are not authorizers');
    const http = specs.get('http');
    assert.ok(http && http.kind === 'http');
    assert.equal(http.port, 8000);
    assert.equal(http.host, 'ext-authz.foo.svc.cluster.local');
    assert.equal(http.timeoutMs, 2000);
    assert.equal(http.statusOnError, 503);
    assert.equal(http.failOpen, true);
    assert.equal(http.pathPrefix, '/check');
    assert.equal(http.requestHeaders?.('old-style'), true, 'includeHeadersInCheck counts while the new field is unset');
    assert.deepEqual(http.additionalHeaders, [['x-added', 'v']]);
    assert.equal(http.upstreamOnAllow?.('x-user-id'), true);
    assert.equal(http.downstreamOnDeny, undefined, 'unset: every header of a denial');
    const grpc = specs.get('grpc');
    assert.ok(grpc && grpc.kind === 'grpc');
    assert.equal(grpc.host, 'ext-authz.foo.svc.cluster.local', 'the namespace/ prefix only disambiguates');
    assert.equal(grpc.timeoutMs, 600_000, "Istio's default: 10 minutes");
    assert.equal(grpc.statusOnError, 403);
    for (const [name, reason] of [['no-port', /port must be/], ['bad-status', /statusOnError/], ['lone-star', /single wildcard/], ['relative', /pathPrefix must begin/]] as const) {
      const p = specs.get(name);
      assert.ok(p && p.kind === 'broken', name);
      assert.match(p.reason, reason);
    }
  });

  it('header lists: exact, prefix* and *suffix, without case', () => {
    const names = headerNames(['X-Exact', 'x-pre-*', '*-SUF']);
    assert.deepEqual(['x-exact', 'x-pre-a', 'a-suf', 'x-exactly', 'x-other'].map(names), [true, true, true, false, false]);
  });

  it('ports and statuses', () => {
    assert.deepEqual([8000, '8000', 0, 70000, 'x', undefined].map(portOf), [8000, 8000, undefined, undefined, undefined, undefined]);
    assert.deepEqual([undefined, '', '503', 401, '99', 'abc'].map(statusOf), [403, 403, 503, 401, undefined, undefined]);
  });

  it('validation warns about what makes a provider unusable, and still takes the mesh config', () => {
    const { valid, problems } = load(PROVIDERS);
    assert.equal(valid.length, 1);
    const at = 'data.mesh.extensionProviders';
    assert.deepEqual(
      problems.filter((p) => /deny every request/.test(p.message)).map((p) => [p.severity, p.field]),
      [
        ['warning', `${at}[2].envoyExtAuthzHttp.port`],
        ['warning', `${at}[3].envoyExtAuthzHttp.statusOnError`],
        ['warning', `${at}[4].envoyExtAuthzHttp.headersToDownstreamOnDeny[0]`],
        ['warning', `${at}[5].envoyExtAuthzHttp.pathPrefix`],
      ],
    );
    assert.equal(problems.filter((p) => p.severity === 'error').length, 0);
  });
});

function custom(name: string, provider: string): string {
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: CUSTOM
  provider: {name: ${provider}}
  rules: [{to: [{operation: {paths: [/headers]}}]}]
`;
}

describe('analyzer: CUSTOM policies whose provider cannot answer (MG0005)', () => {
  it('names the unknown provider, the broken one and the one whose service is not in the registry', () => {
    const text = [
      meshConfigMap(`    extensionProviders:
    - name: ok
      envoyExtAuthzHttp: {service: ext-authz.foo.svc.cluster.local, port: 8000}
    - name: nowhere
      envoyExtAuthzGrpc: {service: gone.foo.svc.cluster.local, port: 9000}
    - name: broken
      envoyExtAuthzHttp: {service: ext-authz.foo.svc.cluster.local}`),
      serviceYaml('ext-authz', [{ pod: 'ext-authz-0', port: 8000 }], { namespace: 'foo', port: 8000 }),
      custom('fine', 'ok'),
      custom('typo', 'okk'),
      custom('gone', 'nowhere'),
      custom('bad', 'broken'),
    ].join('---\n');
    const found = extAuthzProviders(analysisContext(load(text).valid));
    assert.deepEqual(found.map((p) => [p.code, p.resource, p.field]), [
      ['MG0005', 'AuthorizationPolicy foo/typo', 'spec.provider.name'],
      ['MG0005', 'AuthorizationPolicy foo/gone', 'spec.provider.name'],
      ['MG0005', 'AuthorizationPolicy foo/bad', 'spec.provider.name'],
    ]);
    assert.match(found[0]!.message, /no envoyExtAuthzHttp or envoyExtAuthzGrpc provider "okk".*\(ok, nowhere, broken\)/);
    assert.match(found[1]!.message, /gone\.foo\.svc\.cluster\.local port 9000/);
    assert.match(found[2]!.message, /port must be/);
  });
});
