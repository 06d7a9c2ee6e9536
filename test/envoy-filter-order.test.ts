// Where an EnvoyFilter puts the local rate limit filter in Istio's HTTP filter chain decides which
// requests take a token. One gateway, two Gateway ports: on port 80 the filter is inserted first
// (INSERT_FIRST; Istio's task inserts it at the front too, with INSERT_BEFORE and no subFilter), so
// requests that AuthorizationPolicy then denies, or that a fault aborts, are counted; on port 81 it
// sits just before the router (INSERT_BEFORE envoy.filters.http.router), so only requests that got
// through RBAC and fault injection are. Buckets refill once an hour: no refill lands mid-test.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { ALWAYS, envoyFilterYaml, filterPatchYaml } from './helpers/envoy-filter-yaml.js';
import { send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const TOKENS = 2;
const bucket = [`token_bucket: {max_tokens: ${TOKENS}, tokens_per_fill: ${TOKENS}, fill_interval: 3600s}`, ...ALWAYS];

const CONFIG = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http-first, protocol: HTTP}
    hosts: [app.example.com]
  - port: {number: 81, name: http-last, protocol: HTTP}
    hosts: [app.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [app.example.com]
  gateways: [gw]
  http:
  - name: aborted
    match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: app}}]
  - name: main
    route: [{destination: {host: app}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-flagged, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules: [{when: [{key: "request.headers[x-deny]", values: ["yes"]}]}]
---
${envoyFilterYaml('ordered-limits', '{istio: ingressgateway}', [
  filterPatchYaml('GATEWAY', 'INSERT_FIRST', bucket, 80),
  filterPatchYaml('GATEWAY', 'INSERT_BEFORE envoy.filters.http.router', bucket, 81),
])}`;

describe('EnvoyFilter local rate limit: counted where the patch puts the filter', () => {
  let up: Upstream;
  let gw: TestGateway;
  let first = 0;
  let last = 0;

  before(async () => {
    up = await startUpstream('app');
    gw = await startTestGateway({ 'config.yaml': CONFIG, 'services.yaml': serviceYaml('app', [{ pod: 'app-0', port: up.port }]) }, { gateway: { ports: new Map([[80, 0], [81, 0]]) } });
    first = gw.gw.listenPorts.get(80)!;
    last = gw.gw.listenPorts.get(81)!;
  });

  after(async () => {
    await gw?.close();
    await up?.close();
  });

  it('first in the chain: a request RBAC denies takes a token, so the next allowed one is refused', async () => {
    assert.equal((await send(first, 'app.example.com', '/', { 'x-deny': 'yes' })).status, 403);
    assert.equal((await send(first, 'app.example.com', '/abort')).status, 418, 'the fault aborts after the limiter counted');
    const refused = await send(first, 'app.example.com', '/');
    assert.equal(refused.status, 429);
    assert.equal(refused.text, 'local_rate_limited');
    // Spent: even a request RBAC would deny is refused by the limiter, which comes first.
    assert.equal((await send(first, 'app.example.com', '/', { 'x-deny': 'yes' })).status, 429);
  });

  it('just before the router: denied and aborted requests take no token', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await send(last, 'app.example.com', '/', { 'x-deny': 'yes' })).status, 403);
    for (let i = 0; i < 3; i++) assert.equal((await send(last, 'app.example.com', '/abort')).status, 418);
    const codes: number[] = [];
    for (let i = 0; i < TOKENS + 1; i++) codes.push((await send(last, 'app.example.com', '/')).status);
    assert.deepEqual(codes, [...Array<number>(TOKENS).fill(200), 429]);
    // A request the limiter would refuse is denied by RBAC first.
    assert.equal((await send(last, 'app.example.com', '/', { 'x-deny': 'yes' })).status, 403);
  });
});
