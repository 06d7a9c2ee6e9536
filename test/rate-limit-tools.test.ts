// The tools show the rate limits in force, as `istioctl proxy-config` lets one find the filter:
// `meshgate routes` (and the admin /routes of a running gateway, the same text) lists a route
// config's local rate limit filter bucket once and each route's own limits under it; with --sidecar,
// the inbound side's; `meshgate explain` says which limits a request meets, whether each counts it
// and under what, and where in the pipeline; the admin /rate_limits has the same in JSON.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { ALWAYS, envoyFilterYaml, filterPatchYaml, routePatchYaml } from './helpers/envoy-filter-yaml.js';
import { exited, meshgate, type MeshgateProcess } from './helpers/processes.js';

const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });

const CONFIG = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  gateways: [gw]
  http:
  - name: keyed
    match: [{uri: {prefix: /keyed}}]
    route: [{destination: {host: app}}]
  - name: own
    match: [{uri: {prefix: /own}}]
    route: [{destination: {host: app}}]
  - name: main
    route: [{destination: {host: app}}]
---
apiVersion: meshgate.io/v1
kind: RateLimitPolicy
metadata: {name: keyed, namespace: default}
spec:
  targetRef: {kind: VirtualService, name: api, route: keyed}
  limits: [{key: {header: {name: x-api-key}}, requests: 3, interval: 1m, burst: 2}]
---
${envoyFilterYaml('gw-limit', '{istio: ingressgateway}', [
  filterPatchYaml('GATEWAY', 'INSERT_BEFORE envoy.filters.http.router', ['token_bucket: {max_tokens: 10, tokens_per_fill: 10, fill_interval: 60s}', ...ALWAYS]),
  routePatchYaml('GATEWAY', 'api.example.com:80', 'own', ['token_bucket: {max_tokens: 2, tokens_per_fill: 1, fill_interval: 1s}', ...ALWAYS, 'enable_x_ratelimit_headers: DRAFT_VERSION_03']),
])}---
${envoyFilterYaml('inbound-limit', '{app: app}', [filterPatchYaml('SIDECAR_INBOUND', 'INSERT_BEFORE', ['token_bucket: {max_tokens: 4, tokens_per_fill: 4, fill_interval: 60s}', ...ALWAYS])])}`;

const FILTER_LINE = 'rate limit EnvoyFilter istio-system/gw-limit configPatches[0]: token bucket max_tokens 10, tokens_per_fill 10, fill_interval 60s; one bucket for route config http.80 (every virtual host and route without its own); INSERT_BEFORE envoy.filters.http.router: counted after AuthorizationPolicy and fault injection, just before routing';

describe('rate limits in meshgate routes, explain and the admin port', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-rl-tools-'));
    await writeFile(join(dir, 'gw.yaml'), gatewayYaml(['api.example.com']));
    await writeFile(join(dir, 'svc.yaml'), serviceYaml('app', [{ pod: 'app-0', port: 9 }]));
    await writeFile(join(dir, 'limits.yaml'), CONFIG);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("routes: the filter's bucket once under its route config, each route's own limits under the route", () => {
    const out = run('routes', '--config', dir, '--ports', '80=80');
    assert.equal(out.status, 0, out.stderr);
    const lines = out.stdout.split('\n');
    assert.equal(lines.filter((l) => l.includes('gw-limit configPatches[0]')).length, 1, out.stdout);
    assert.equal(lines[lines.indexOf('  route config http.80') + 1], `    ${FILTER_LINE}`);
    const own = lines.findIndex((l) => /^ {6}\d+\. own /.test(l));
    assert.match(
      lines.slice(own, own + 4).join('\n'),
      /rate limit EnvoyFilter istio-system\/gw-limit configPatches\[1\]: token bucket max_tokens 2, tokens_per_fill 1, fill_interval 1s; one bucket for route own of virtual host api\.example\.com:80 \(its own configuration\); x-ratelimit-\* headers; INSERT_BEFORE envoy\.filters\.http\.router/,
    );
    assert.ok(lines.includes('         rate limit default/keyed[0]: 3 requests per 60s + burst 2, one count per value of header x-api-key, store memory; counted after AuthorizationPolicy, before fault injection'), out.stdout);
  });

  it("routes --sidecar: the inbound side's buckets, where Istio's task puts the filter (first)", () => {
    const out = run('routes', '--config', dir, '--sidecar', '--labels', 'app=app');
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /^inbound \(to the app\)\n {2}rate limit EnvoyFilter istio-system\/inbound-limit configPatches\[0\]: token bucket max_tokens 4, tokens_per_fill 4, fill_interval 60s; one bucket for the inbound side \(every port\); INSERT_BEFORE: counted before RequestAuthentication and AuthorizationPolicy \(denied requests are counted too\)$/m);
  });

  it('explain: each limit the request meets, and what it is counted under', () => {
    const keyed = run('explain', '--config', dir, '--port', '80', '-H', 'x-api-key: alice', 'http://api.example.com/keyed');
    assert.equal(keyed.status, 0, keyed.stderr);
    assert.match(keyed.stdout, /default\/keyed\[0\]: 3 requests per 60s \+ burst 2.*\n {6}this request: counted under x-api-key: alice\n/);
    assert.match(keyed.stdout, /gw-limit configPatches\[0\].*\n {6}this request: counted in this bucket\n/);
    const keyless = run('explain', '--config', dir, '--port', '80', 'http://api.example.com/keyed');
    assert.match(keyless.stdout, /this request: not counted: no x-api-key header/);
    const own = run('explain', '--config', dir, '--port', '80', 'http://api.example.com/own');
    assert.match(own.stdout, /gw-limit configPatches\[1\]: .*one bucket for route own of virtual host api\.example\.com:80/);
    assert.doesNotMatch(own.stdout, /configPatches\[0\]/, "the route's own configuration replaces the filter's");
  });

  describe('a running gateway', () => {
    let gw: MeshgateProcess | undefined;
    let admin = 0;
    let listen = 0;
    before(async () => {
      gw = meshgate(['gateway', '--config', dir, '--ports', '80=0', '--status-port', '0', '--admin-port', '0', '--metrics-port', '0', '--listen-host', '127.0.0.1', '--access-log', 'off']);
      const serving = await gw.serving();
      admin = serving['adminPort'] as number;
      listen = (serving['ports'] as Record<string, number>)['80']!;
    });
    after(async () => {
      gw?.kill('SIGKILL');
      await exited(gw);
    });

    it('/routes shows the same limits as meshgate routes with the same ports', async () => {
      const text = await (await request(`http://127.0.0.1:${admin}/routes`)).body.text();
      assert.ok(text.includes(`    ${FILTER_LINE.replaceAll('http.80', `http.${listen}`)}\n`), text);
      assert.equal(run('routes', '--config', dir, '--ports', `80=${listen}`).stdout, text);
    });

    it('/rate_limits: every rule with where it counts, and an EnvoyFilter bucket with its settings', async () => {
      const body = (await (await request(`http://127.0.0.1:${admin}/rate_limits`)).body.json()) as { rules: Array<Record<string, unknown>> };
      const byId = new Map(body.rules.map((r) => [r['id'], r]));
      assert.equal(byId.get('default/keyed[0]')?.['position'], 'after-authz');
      const own = byId.get('EnvoyFilter istio-system/gw-limit configPatches[1]');
      assert.deepEqual(own?.['envoyFilter'], {
        placement: 'INSERT_BEFORE envoy.filters.http.router',
        bucket: { routeConfig: `http.${listen}`, virtualHost: 'api.example.com:80', route: 'own' },
        tokenBucket: { maxTokens: 2, tokensPerFill: 1, fillInterval: '1s' },
        filterEnabled: 1,
        filterEnforced: 1,
        status: 429,
        xRateLimitHeaders: true,
      });
      assert.equal(own?.['position'], 'after-fault');
    });
  });
});
