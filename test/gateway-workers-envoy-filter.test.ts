// `meshgate gateway --workers 2` with an EnvoyFilter local rate limit: Envoy's token bucket is shared
// by all worker threads of one Envoy, so the limit holds for the gateway as a whole, not once per
// worker; local_rate_limit_per_downstream_connection stays one bucket per client connection, whichever
// worker serves it. Every request of the first test comes on a new connection, which the primary
// hands to the workers in turn. Buckets refill once an hour: no refill lands mid-test.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { ALWAYS, envoyFilterYaml, filterPatchYaml, getOver, routePatchYaml } from './helpers/envoy-filter-yaml.js';
import { startWorkersGateway, type WorkersGateway } from './helpers/gateway-workers.js';
import { freshGet } from './helpers/ports.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const MAX_TOKENS = 5;
const PER_CONNECTION = 2;

const CONFIG = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [app.example.com]
  gateways: [gw]
  http:
  - name: conn
    match: [{uri: {prefix: /conn}}]
    route: [{destination: {host: app}}]
  - name: main
    route: [{destination: {host: app}}]
---
${envoyFilterYaml('local-limit', '{istio: ingressgateway}', [
  filterPatchYaml('GATEWAY', 'INSERT_BEFORE envoy.filters.http.router', [`token_bucket: {max_tokens: ${MAX_TOKENS}, tokens_per_fill: ${MAX_TOKENS}, fill_interval: 3600s}`, ...ALWAYS]),
  routePatchYaml('GATEWAY', 'app.example.com:80', 'conn', [`token_bucket: {max_tokens: ${PER_CONNECTION}, tokens_per_fill: ${PER_CONNECTION}, fill_interval: 3600s}`, ...ALWAYS, 'local_rate_limit_per_downstream_connection: true']),
])}`;

describe('gateway --workers 2: EnvoyFilter local rate limits', { timeout: 90_000 }, () => {
  let dir: string;
  let app: Upstream;
  let gw: WorkersGateway;

  before(async () => {
    app = await startUpstream('app');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-workers-envoyfilter-'));
    await writeFile(join(dir, 'gw.yaml'), gatewayYaml(['app.example.com']));
    await writeFile(join(dir, 'svc.yaml'), serviceYaml('app', [{ pod: 'app-0', port: app.port }]));
    await writeFile(join(dir, 'limits.yaml'), CONFIG);
    gw = await startWorkersGateway(dir, 2);
  });

  after(async () => {
    gw?.kill();
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('one bucket per gateway: of max_tokens + 4 requests on new connections, exactly max_tokens pass', async () => {
    const codes: number[] = [];
    for (let i = 0; i < MAX_TOKENS + 4; i++) codes.push((await freshGet(gw.port, 'app.example.com', `/main/${i}`)).status);
    // A bucket per worker would let up to 2 × max_tokens through.
    assert.deepEqual(codes, [...Array<number>(MAX_TOKENS).fill(200), 429, 429, 429, 429], codes.join(' '));
  });

  it('per downstream connection: each of 4 connections gets its own bucket, whichever worker holds it', async () => {
    const agents = Array.from({ length: 4 }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
    try {
      // Each connection's requests one after another (one socket each); the connections side by side.
      const perConnection = await Promise.all(
        agents.map(async (agent) => {
          const codes: number[] = [];
          for (let i = 0; i < PER_CONNECTION + 1; i++) codes.push(await getOver(agent, gw.port, 'app.example.com', '/conn'));
          return codes;
        }),
      );
      for (const codes of perConnection) assert.deepEqual(codes, [...Array<number>(PER_CONNECTION).fill(200), 429], perConnection.map((c) => c.join(' ')).join(' | '));
    } finally {
      for (const a of agents) a.destroy();
    }
  });
});
