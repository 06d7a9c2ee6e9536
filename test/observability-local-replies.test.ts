// Istio's labels on the gateway's local replies (docs/reference/metrics.md): Envoy resolves a
// request's route, and with it the route's cluster, before any filter runs, so every reply after
// that point (401 JWT, 403 RBAC, 429 rate limit, 503 FI abort, 503 UH/UO, 504 UT, a DI delay)
// reports the routed service as destination_service; only what has no route (404 NR), no cluster
// (503 NC) or was refused while being parsed (400, 414, 431) says `unknown`, since the gateway takes
// no destination from the Host header.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import { eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { rawExchange } from './helpers/raw-http.js';
import { scrapeSamples, type Sample } from './helpers/prometheus-text.js';

const APP = 'app.default.svc.cluster.local';

describe('the gateway\'s local replies carry the labels Istio writes for them', () => {
  let up: Upstream;
  let gw: TestGateway;
  const held: ServerResponse[] = [];
  let samples: Sample[];

  before(async () => {
    up = await startUpstream('app', (req, res) => {
      if (!req.url?.startsWith('/slow') && !req.url?.startsWith('/hold')) return false;
      held.push(res);
      return true;
    });
    const { publicKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' };
    gw = await startTestGateway({
      'gw.yaml': gatewayYaml(['app.example.com']),
      'svc.yaml': [serviceYaml('app', [{ pod: 'app-v1', port: up.port, labels: { version: 'v1' } }]), serviceYaml('empty', [])].join('---\n'),
      'dr.yaml': `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: app}
spec:
  host: app
  trafficPolicy: {connectionPool: {http: {http2MaxRequests: 1}}}
`,
      'vs.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app}
spec:
  hosts: [app.example.com]
  gateways: [gw]
  http:
  - {name: limited, match: [{uri: {prefix: /limited}}], route: [{destination: {host: app}}]}
  - {name: abort, match: [{uri: {prefix: /abort}}], fault: {abort: {httpStatus: 503, percentage: {value: 100}}}, route: [{destination: {host: app}}]}
  - {name: delay, match: [{uri: {prefix: /delay}}], fault: {delay: {fixedDelay: 1ms, percentage: {value: 100}}}, route: [{destination: {host: app}}]}
  - {name: slow, match: [{uri: {prefix: /slow}}], timeout: 0.2s, route: [{destination: {host: app}}]}
  - {name: empty, match: [{uri: {prefix: /empty}}], route: [{destination: {host: empty}}]}
  - {name: subset, match: [{uri: {prefix: /subset}}], route: [{destination: {host: app, subset: v9}}]}
  - {name: main, route: [{destination: {host: app}}]}
`,
      'limit.yaml': `apiVersion: meshgate.io/v1
kind: RateLimitPolicy
metadata: {name: one, namespace: default}
spec:
  targetRef: {kind: VirtualService, name: app, route: limited}
  limits: [{key: {clientIp: {}}, requests: 1, interval: 1h}]
  store: memory
`,
      'security.yaml': `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules: [{to: [{operation: {paths: [/denied]}}]}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules:
  - issuer: https://issuer.example
    jwks: '${JSON.stringify({ keys: [jwk] })}'
`,
    }, { gateway: { metricsPort: 0 } });

    const status = async (path: string, headers: Record<string, string> = {}, host = 'app.example.com'): Promise<number> => (await gw.get(host, path, headers)).status;
    assert.equal(await status('/'), 200);
    assert.equal(await status('/limited'), 200);
    assert.equal(await status('/limited'), 429);
    assert.equal(await status('/abort'), 503);
    assert.equal(await status('/delay'), 200);
    assert.equal(await status('/slow'), 504);
    assert.equal(await status('/empty'), 503);
    assert.equal(await status('/subset'), 503);
    assert.equal(await status('/denied'), 403);
    assert.equal(await status('/', { authorization: 'Bearer not.a.token' }), 401);
    assert.equal(await status('/', {}, 'nobody.example.com'), 404);
    // One request in flight holds the only slot http2MaxRequests allows; the next overflows.
    const holding = gw.get('app.example.com', '/hold');
    await eventually(async () => held.length === 2);
    assert.equal(await status('/'), 503);
    for (const r of held.splice(0)) r.end('late');
    assert.equal((await holding).status, 200);
    assert.equal((await rawExchange(gw.port, 'GET /x HTTP/1.1\r\nconnection: close\r\n\r\n')).status, 400);
    assert.equal((await rawExchange(gw.port, `GET /${'a'.repeat(70 * 1024)} HTTP/1.1\r\nhost: app.example.com\r\nconnection: close\r\n\r\n`)).status, 414);
    assert.equal((await rawExchange(gw.port, `GET / HTTP/1.1\r\nhost: app.example.com\r\nx-big: ${'b'.repeat(62 * 1024)}\r\nconnection: close\r\n\r\n`)).status, 431);
    samples = await scrapeSamples(gw.gw.metricsPort, 'istio_requests_total');
  });

  after(async () => {
    for (const r of held.splice(0)) r.end();
    await gw?.close();
    await up?.close();
  });

  const one = (code: string, flags: string): Record<string, string> => {
    const found = samples.filter((s) => s.labels.response_code === code && s.labels.response_flags === flags);
    assert.equal(found.length, 1, `one ${code} ${flags} series in\n${samples.map((s) => JSON.stringify(s.labels)).join('\n')}`);
    return found[0]!.labels;
  };
  // The client side takes destination_service_namespace from the routed cluster's service, as Istio's
  // stats filter does (then from the workload reached); the gateway names itself as source_principal
  // only over a mutual TLS connection to an endpoint, and this app is plaintext.
  const routedTo = (l: Record<string, string>, service: string, name: string, reached = false): void => {
    assert.equal(l.destination_service, service);
    assert.equal(l.destination_service_name, name);
    assert.equal(l.destination_service_namespace, 'default');
    assert.equal(l.destination_canonical_revision, reached ? 'v1' : 'latest');
    assert.equal(l.source_principal, 'unknown');
  };
  const unknownDestination = (l: Record<string, string>): void => {
    for (const k of ['destination_service', 'destination_service_name', 'destination_service_namespace', 'destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version', 'destination_canonical_service', 'destination_cluster']) assert.equal(l[k], 'unknown', k);
    assert.equal(l.destination_canonical_revision, 'latest');
  };

  it('a reply after routing names the routed service, and no workload when no endpoint was picked', () => {
    for (const [code, flags] of [['429', 'RL'], ['503', 'FI'], ['403', '-'], ['401', '-']] as const) {
      const l = one(code, flags);
      routedTo(l, APP, 'app');
      assert.equal(l.destination_workload, 'unknown', `${code} ${flags}`);
      assert.equal(l.destination_principal, 'unknown');
    }
    routedTo(one('503', 'UH'), 'empty.default.svc.cluster.local', 'empty');
    routedTo(one('503', 'UO'), APP, 'app', true);
  });

  it('a reply after an endpoint was picked names it too (504 UT); a delay (DI) is reported with the answer', () => {
    const ut = one('504', 'UT');
    routedTo(ut, APP, 'app', true);
    assert.equal(ut.destination_workload, 'app-v1');
    assert.equal(ut.destination_version, 'v1');
    const di = one('200', 'DI');
    routedTo(di, APP, 'app', true);
    assert.equal(di.destination_workload, 'app-v1');
  });

  it('no route (404 NR), no cluster (503 NC) and requests refused while parsed (400, 414, 431) say unknown', () => {
    unknownDestination(one('404', 'NR'));
    unknownDestination(one('503', 'NC'));
    for (const code of ['400', '414', '431']) unknownDestination(one(code, '-'));
  });

  it('every local reply is reported by the gateway as source, over no mutual TLS it can vouch for', () => {
    for (const s of samples) {
      assert.equal(s.labels.reporter, 'source');
      assert.equal(s.labels.source_workload_namespace, 'istio-system');
      assert.equal(s.labels.request_protocol, 'http');
      assert.equal(s.labels.connection_security_policy, 'unknown');
    }
  });
});
