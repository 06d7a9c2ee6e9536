// `meshgate gateway --workers 2`: limits that protect a backend hold for the gateway as a whole, not
// once per worker. DestinationRule connectionPool limits are counted by the primary for both
// workers, and a RateLimitPolicy with store redis, while Redis cannot be reached, falls
// back to counts the primary keeps for both workers.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { eventually } from './helpers/gateway.js';
import { startWorkersGateway, type WorkersGateway } from './helpers/gateway-workers.js';
import { freshGet } from './helpers/ports.js';
import { closedPort, startUpstream, type Upstream } from './helpers/upstream.js';

const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';
const RATE_LIMIT = 10;

// A request the gateway never answers would otherwise hang the run: fail it instead.
describe('gateway --workers 2: limits for the gateway as a whole', { timeout: 60_000 }, () => {
  let dir: string;
  let slow: Upstream;
  let app: Upstream;
  let gw: WorkersGateway;
  const held: ServerResponse[] = [];
  let holding = true;

  before(async () => {
    slow = await startUpstream('slow', (_req, res) => {
      if (!holding) return false;
      held.push(res);
      return true;
    });
    app = await startUpstream('app');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-workers-limits-'));
    await writeFile(join(dir, 'gw.yaml'), gatewayYaml(['slow.example.com', 'app.example.com']));
    await writeFile(join(dir, 'svc.yaml'), [serviceYaml('slow', [{ pod: 'slow-0', port: slow.port }]), serviceYaml('app', [{ pod: 'app-0', port: app.port }])].join('---\n'));
    await writeFile(
      join(dir, 'rules.yaml'),
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: slow}
spec:
  host: slow
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 2}
      http: {http1MaxPendingRequests: 2}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: routes}
spec:
  hosts: [slow.example.com, app.example.com]
  gateways: [gw]
  http:
  - name: slow
    match: [{authority: {exact: slow.example.com}}]
    route: [{destination: {host: slow}}]
  - name: app
    route: [{destination: {host: app}}]
---
apiVersion: meshgate.io/v1
kind: RateLimitPolicy
metadata: {name: shared, namespace: default}
spec:
  targetRef: {kind: VirtualService, name: routes, route: app}
  limits: [{key: {header: {name: x-api-key}}, requests: ${RATE_LIMIT}, interval: 1h}]
  store: redis
`,
    );
    // Nothing listens on the Redis port: every check is an outage decision.
    gw = await startWorkersGateway(dir, 2, ['--redis', `redis://127.0.0.1:${await closedPort()}`]);
  });

  after(async () => {
    gw?.kill();
    for (const res of held.splice(0)) res.end('done');
    await Promise.all([slow.close(), app.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('connectionPool: 2 connections + 2 pending admit at most 4 of 8 concurrent requests, not 4 per worker', async () => {
    // New connections, so that the primary hands them out to both workers.
    const statuses: number[] = [];
    const overflows: number[] = [];
    const all = Array.from({ length: 8 }, (_, i) =>
      freshGet(gw.port, 'slow.example.com', `/${i}`).then((r) => {
        statuses.push(r.status);
        if (r.status === 503 && r.text === OVERFLOW_BODY) overflows.push(i);
      }),
    );
    // Two connections with two requests waiting behind them, for both workers together; the rest
    // overflow. Per-worker limits of the whole 2 + 2 would let every request in and none overflow.
    await eventually(async () => held.length + overflows.length >= 6).catch(() =>
      assert.fail(`${held.length} requests at the upstream and ${overflows.length} overflowed: more than 2 + 2 were let in`),
    );
    assert.ok(held.length <= 2, `${held.length} requests reached the upstream at once; the limit is 2 connections`);
    holding = false;
    for (const res of held.splice(0)) res.end('done');
    await Promise.all(all);
    const ok = statuses.filter((s) => s === 200).length;
    assert.equal(ok + overflows.length, 8, statuses.join(' '));
    assert.equal(ok, 4, `${ok} admitted: 2 connections + 2 pending for the gateway as a whole`);
  });

  it('store redis while Redis is unreachable: the fallback counts once for both workers', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 2 * RATE_LIMIT; i++) codes.push((await freshGet(gw.port, 'app.example.com', `/${i}`, { 'x-api-key': 'k1' })).status);
    assert.equal(codes.filter((c) => c === 200).length, RATE_LIMIT, codes.join(' '));
    assert.equal(codes.filter((c) => c === 429).length, RATE_LIMIT, codes.join(' '));
  });
});
