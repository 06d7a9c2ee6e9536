// EnvoyFilter local rate limits on a gateway process (context GATEWAY), with Istio's selector for the
// ingress gateway: the filter's bucket is shared by every route of the port's HTTP connection manager
// (both hosts count in it), a route with its own typed_per_filter_config counts in its own bucket and
// answers with its own status, filter_enforced 0 only counts (shadow mode), and
// local_rate_limit_per_downstream_connection gives each connection a bucket. Refusals carry Envoy's
// body, flag RL and details in the access log. Buckets refill once an hour: no refill lands mid-test.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { ALWAYS, envoyFilterYaml, filterPatchYaml, getOver, routePatchYaml } from './helpers/envoy-filter-yaml.js';
import { accessLogLine, eventually, send } from './helpers/gateway.js';
import { exited, meshgate, ready, type MeshgateProcess } from './helpers/processes.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const ROUTES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: default}
spec:
  hosts: [bookinfo.com, other.com]
  gateways: [gw]
  http:
  - name: api
    match: [{uri: {prefix: /api}}]
    route: [{destination: {host: product-service}}]
  - name: shadow
    match: [{uri: {prefix: /shadow}}]
    route: [{destination: {host: product-service}}]
  - name: per-connection
    match: [{uri: {prefix: /conn}}]
    route: [{destination: {host: product-service}}]
  - name: drafted
    match: [{uri: {prefix: /drafted}}]
    route: [{destination: {host: product-service}}]
  - name: main
    route: [{destination: {host: product-service}}]
`;

const limitFilter = filterPatchYaml('GATEWAY', 'INSERT_BEFORE envoy.filters.http.router', ['token_bucket: {max_tokens: 3, tokens_per_fill: 2, fill_interval: 3600s}', ...ALWAYS, 'response_headers_to_add:', "- header: {key: x-local-rate-limit, value: 'true'}"]);
const FILTER = envoyFilterYaml('gateway-local-ratelimit', '{istio: ingressgateway}', [
  limitFilter,
  routePatchYaml('GATEWAY', 'bookinfo.com:80', 'api', ['token_bucket: {max_tokens: 1, tokens_per_fill: 1, fill_interval: 3600s}', ...ALWAYS, 'status: {code: ServiceUnavailable}']),
  routePatchYaml('GATEWAY', 'bookinfo.com:80', 'shadow', [
    'token_bucket: {max_tokens: 1, tokens_per_fill: 1, fill_interval: 3600s}',
    'filter_enabled: {default_value: {numerator: 100, denominator: HUNDRED}}',
    'filter_enforced: {default_value: {numerator: 0, denominator: HUNDRED}}',
  ]),
  routePatchYaml('GATEWAY', 'bookinfo.com:80', 'per-connection', ['token_bucket: {max_tokens: 1, tokens_per_fill: 1, fill_interval: 3600s}', ...ALWAYS, 'local_rate_limit_per_downstream_connection: true']),
  routePatchYaml('GATEWAY', 'bookinfo.com:80', 'drafted', ['token_bucket: {max_tokens: 2, tokens_per_fill: 2, fill_interval: 3600s}', ...ALWAYS, 'enable_x_ratelimit_headers: DRAFT_VERSION_03']),
]);

describe('EnvoyFilter local rate limit on a gateway process', () => {
  let dir: string;
  let up: Upstream;
  let gw: MeshgateProcess | undefined;
  let port = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-envoyfilter-gw-'));
    up = await startUpstream('product');
    await writeFile(join(dir, 'gateway.yaml'), gatewayYaml(['bookinfo.com', 'other.com']));
    await writeFile(join(dir, 'services.yaml'), serviceYaml('product-service', [{ pod: 'product-1', port: up.port }]));
    await writeFile(join(dir, 'routes.yaml'), ROUTES);
    await writeFile(join(dir, 'envoyfilter.yaml'), FILTER);
    gw = meshgate(['gateway', '--config', dir, '--ports', '80=0', '--status-port', '0', '--admin-port', '0', '--metrics-port', '0', '--listen-host', '127.0.0.1', '--access-log', join(dir, 'access.log')]);
    const line = await gw.serving();
    port = Number((line.ports as Record<string, number>)['80']);
    await eventually(() => ready(Number(line.statusPort)), 60_000).catch((err: Error) => assert.fail(`${err.message}\n${gw!.log()}`));
  });

  after(async () => {
    gw?.kill('SIGKILL');
    await exited(gw);
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("the filter's bucket: max_tokens for both hosts together, then 429 local_rate_limited with the configured header", async () => {
    const statuses = [];
    for (const host of ['bookinfo.com', 'other.com', 'bookinfo.com', 'other.com']) statuses.push((await send(port, host, '/main', { 'x-request-id': `main-${statuses.length}` })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429], gw!.log());
    const refused = await send(port, 'bookinfo.com', '/', { 'x-request-id': 'refused-1' });
    assert.equal(refused.status, 429);
    assert.equal(refused.text, 'local_rate_limited');
    assert.equal(refused.headers['x-local-rate-limit'], 'true');
    assert.equal(refused.headers['x-envoy-ratelimited'], undefined, 'Envoy sends only the configured headers');
    assert.equal(refused.headers['retry-after'], undefined);
    assert.equal(refused.headers['x-ratelimit-limit'], undefined, 'no x-ratelimit-* without enable_x_ratelimit_headers');
    const log = await accessLogLine(join(dir, 'access.log'), 'refused-1');
    assert.equal(log.response_code, 429);
    assert.equal(log.response_flags, 'RL');
    assert.equal(log.response_code_details, 'local_rate_limited');
    assert.equal(log.route_name, 'main');
  });

  it("a route's own configuration replaces the filter's: its own bucket and status", async () => {
    assert.equal((await send(port, 'bookinfo.com', '/api/1')).status, 200);
    const refused = await send(port, 'bookinfo.com', '/api/2');
    assert.equal(refused.status, 503);
    assert.equal(refused.text, 'local_rate_limited');
    // The configured header is the filter's, not this route's: its configuration has none.
    assert.equal(refused.headers['x-local-rate-limit'], undefined);
    // other.com's virtual host (other.com:80) has no configuration of its own for the route: the filter's bucket, spent above.
    assert.equal((await send(port, 'other.com', '/api/1')).status, 429);
  });

  it('filter_enforced 0: requests over the limit still go through', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await send(port, 'bookinfo.com', '/shadow')).status, 200);
  });

  it('enable_x_ratelimit_headers DRAFT_VERSION_03: max_tokens, tokens left, and reset 0 while one is left', async () => {
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await send(port, 'bookinfo.com', '/drafted'));
    assert.deepEqual(replies.map((r) => [r.status, r.headers['x-ratelimit-limit'], r.headers['x-ratelimit-remaining']]), [[200, '2', '1'], [200, '2', '0'], [429, '2', '0']]);
    assert.equal(replies[0]!.headers['x-ratelimit-reset'], '0', 'a token is left: no wait');
    for (const r of replies.slice(1)) {
      const reset = Number(r.headers['x-ratelimit-reset']);
      assert.ok(reset > 0 && reset <= 3600, `reset ${reset}: the seconds until the bucket lets one more through`);
    }
    assert.equal(replies[2]!.headers['retry-after'], undefined, "Envoy's local rate limit sends no Retry-After");
  });

  it('local_rate_limit_per_downstream_connection: each connection has its own bucket', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const get = (a: Agent | false) => getOver(a, port, 'bookinfo.com', '/conn');
    assert.deepEqual([await get(agent), await get(agent)], [200, 429]);
    assert.equal(await get(false), 200, 'a new connection starts with a full bucket');
    agent.destroy();
  });
});
