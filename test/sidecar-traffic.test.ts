// Integration: the gateway's traffic policy on a sidecar's outbound side, on real sockets. A sidecar
// in region-a/zone-1 keeps its calls in its zone until that endpoint is ejected; the ejection
// survives a configuration push (the sidecar keeps its live cluster state across snapshots); and a
// RateLimitPolicy on a mesh VirtualService route answers 429 with x-ratelimit-* headers, counted in
// memory or, with --redis, in one real redis-server shared by two sidecars.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { startSidecar, type RunningSidecar, type SidecarOptions } from '../src/sidecar/main.js';
import { staticServiceEntryYaml } from './helpers/cluster-yaml.js';
import { eventually } from './helpers/gateway.js';
import { sidecarOptions, testAuthority, viaProxy } from './helpers/mesh.js';
import { NO_APP } from './helpers/ports.js';
import { redisSkipReason, startRedis, type TestRedis } from './helpers/redis.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const GEO_RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: geo, namespace: default}
spec:
  host: geo.internal
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1, maxEjectionPercent: 100, baseEjectionTime: 10m}
`;

/** A limit by the x-api-key header on one route of VirtualService `api`. */
const limitOn = (route: string, limit: string, store = 'memory'): string => `apiVersion: meshgate.io/v1
kind: RateLimitPolicy
metadata: {name: ${route}, namespace: default}
spec:
  targetRef: {kind: VirtualService, name: api, route: ${route}}
  limits:
  - {key: {header: {name: x-api-key}}, ${limit}}
  store: ${store}
`;

/** A VirtualService bound to `mesh` (no gateways): routes under a limit, in memory or in Redis, and one without. */
const API = [
  `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.internal]
  http:
  - name: limited
    match: [{uri: {prefix: /limited}}]
    route: [{destination: {host: api.internal}}]
  - name: shared
    match: [{uri: {prefix: /shared}}]
    route: [{destination: {host: api.internal}}]
  - name: free
    route: [{destination: {host: api.internal}}]
`,
  limitOn('limited', 'requests: 2, interval: 1m'),
  limitOn('shared', 'requests: 3, interval: 1h', 'redis'),
].join('---\n');

describe('sidecar outbound: traffic policy and rate limits', () => {
  const quiet = pino({ level: 'silent' });
  const failing = new Set<string>();
  let ca: CertificateAuthority;
  let dir: string;
  let z1: Upstream, z2: Upstream, api: Upstream;
  const sidecars: RunningSidecar[] = [];

  const start = async (extra: Partial<SidecarOptions> = {}): Promise<RunningSidecar> => {
    const s = await startSidecar({
      ...sidecarOptions(ca, dir, 'client', NO_APP),
      logger: quiet,
      locality: 'region-a/zone-1',
      ...extra,
    });
    sidecars.push(s);
    return s;
  };

  before(async () => {
    ca = await testAuthority();
    const answer = (name: string) => (_req: unknown, res: ServerResponse) => {
      if (!failing.has(name)) return false;
      res.writeHead(503, { 'content-length': '0' });
      res.end();
      return true;
    };
    z1 = await startUpstream('z1', answer('z1'));
    z2 = await startUpstream('z2', answer('z2'));
    api = await startUpstream('api');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-sidecar-traffic-'));
    await writeFile(
      join(dir, 'services.yaml'),
      [
        staticServiceEntryYaml('geo.internal', [
          { port: z1.port, locality: 'region-a/zone-1' },
          { port: z2.port, locality: 'region-a/zone-2' },
        ]),
        staticServiceEntryYaml('api.internal', [{ port: api.port }]),
      ].join('---\n'),
    );
    await writeFile(join(dir, 'rules.yaml'), GEO_RULE);
    await writeFile(join(dir, 'api.yaml'), API);
  });

  after(async () => {
    await Promise.all(sidecars.map((s) => s.destroy()));
    await Promise.all([z1?.close(), z2?.close(), api?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  describe('locality and live cluster state', () => {
    let sidecar: RunningSidecar;
    before(async () => {
      sidecar = await start();
    });

    /** Who answered each of `n` calls to geo.internal (`503` for an error). */
    const who = async (n: number): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      for (let i = 0; i < n; i++) {
        const r = await viaProxy(sidecar.outboundPort, 'http://geo.internal/');
        const name = r.status === 200 ? String(r.headers['x-upstream']) : String(r.status);
        out[name] = (out[name] ?? 0) + 1;
      }
      return out;
    };

    it('keeps calls in its own zone (--locality) while that endpoint is healthy', async () => {
      assert.deepEqual(await who(10), { z1: 10 });
    });

    it('fails over when its zone is ejected, and a configuration push does not bring the ejected endpoint back', async () => {
      failing.add('z1');
      try {
        assert.deepEqual(await who(11), { 503: 1, z2: 10 });
        const version = sidecar.holder.current()!.version;
        await writeFile(join(dir, 'pushed.yaml'), staticServiceEntryYaml('other.internal', [{ port: api.port }]));
        await eventually(async () => sidecar.holder.current()!.version > version);
        // A fresh cluster state would send the next call to zone-1 again, and it would fail.
        assert.deepEqual(await who(10), { z2: 10 });
      } finally {
        failing.clear();
      }
    });
  });

  describe('rate limits', () => {
    let sidecar: RunningSidecar;
    before(async () => {
      sidecar = await start();
    });

    it('answers 429 with x-ratelimit-* and Retry-After beyond a RateLimitPolicy on a mesh route', async () => {
      const call = () => viaProxy(sidecar.outboundPort, 'http://api.internal/limited/1', { 'x-api-key': 'alice' });
      const first = await call();
      assert.equal(first.status, 200, first.text);
      assert.equal(first.headers['x-ratelimit-limit'], '2');
      assert.equal(first.headers['x-ratelimit-remaining'], '1');
      assert.equal(first.headers['x-ratelimit-reset'], '60');
      assert.equal((await call()).headers['x-ratelimit-remaining'], '0');
      const seen = api.seen.length;
      const refused = await call();
      assert.equal(refused.status, 429);
      assert.equal(refused.text, 'local_rate_limited');
      assert.equal(refused.headers['x-ratelimit-limit'], '2');
      assert.equal(refused.headers['x-ratelimit-remaining'], '0');
      assert.ok(Number(refused.headers['retry-after']) > 0);
      assert.equal(api.seen.length, seen, 'the refused call never reached the service');
      // Another key counts on its own; another route of the VirtualService is not limited.
      assert.equal((await viaProxy(sidecar.outboundPort, 'http://api.internal/limited/1', { 'x-api-key': 'bob' })).status, 200);
      const free = await viaProxy(sidecar.outboundPort, 'http://api.internal/other', { 'x-api-key': 'alice' });
      assert.equal(free.status, 200);
      assert.equal(free.headers['x-ratelimit-limit'], undefined);
    });
  });

  describe('rate limits with --redis, shared by two sidecars', { skip: redisSkipReason() }, () => {
    let redis: TestRedis;
    let a: RunningSidecar, b: RunningSidecar;
    before(async () => {
      redis = await startRedis();
      a = await start({ redisUrl: redis.url });
      b = await start({ redisUrl: redis.url });
    });
    after(async () => {
      await redis?.close();
    });

    it('lets the limit through once for both, not once each', async () => {
      const statuses: number[] = [];
      for (const s of [a, b, a, b, a, b]) statuses.push((await viaProxy(s.outboundPort, 'http://api.internal/shared', { 'x-api-key': 'carol' })).status);
      assert.deepEqual(statuses, [200, 200, 200, 429, 429, 429]);
    });
  });
});
