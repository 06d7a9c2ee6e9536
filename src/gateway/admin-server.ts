// The admin port (15000, loopback only): what a person asks a running proxy — its configuration,
// routing table, clusters with endpoints and live load, and current problems.

import { fastify, type FastifyInstance } from 'fastify';
import { formatProblem } from '../core/config/problem.js';
import type { RateLimiters } from '../core/policy/rate-limiters.js';
import type { UpstreamPools } from '../core/proxy/upstream-pools.js';
import { endpointPort } from '../core/registry/types.js';
import { printRoutes } from '../core/routing/print.js';
import type { SnapshotHolder } from '../core/snapshot/holder.js';

export function createAdminServer(holder: SnapshotHolder, pools: UpstreamPools, limiters?: RateLimiters): FastifyInstance {
  const app = fastify({ logger: false });
  const snapshotOr503 = () => holder.current();
  app.get('/', async () => ({ endpoints: ['/config_dump', '/routes', '/clusters', '/problems', '/rate_limits'] }));
  app.get('/config_dump', async (_req, reply) => {
    const s = snapshotOr503();
    if (!s) return reply.code(503).send({ error: 'no configuration yet' });
    return {
      version: s.version,
      createdAt: s.createdAt.toISOString(),
      resources: s.resources.map((r) => ({ file: `${r.origin.file}:${r.origin.line}`, ...r.raw })),
    };
  });
  app.get('/routes', async (_req, reply) => {
    const s = snapshotOr503();
    if (!s) return reply.code(503).type('text/plain').send('no configuration yet\n');
    return reply.type('text/plain').send(printRoutes(s));
  });
  app.get('/clusters', async (_req, reply) => {
    const s = snapshotOr503();
    if (!s) return reply.code(503).send({ error: 'no configuration yet' });
    return [...s.clusters.values()].map((c) => ({
      name: c.name,
      loadBalancer: c.lb.algorithm,
      policy: c.policy.source ?? null,
      endpoints: c.endpoints.map((e) => {
        const key = `${e.address}:${endpointPort(e, c.port)}`;
        return { address: key, locality: e.locality, weight: e.weight, labels: e.labels, active: pools.active(key) };
      }),
    }));
  });
  app.get('/rate_limits', async () => ({
    ...(limiters?.stats() ?? {}),
    rules: (holder.current()?.rateLimits.rules ?? []).map((r) => ({ id: r.id, key: r.key, requests: r.requests, intervalSeconds: r.intervalSeconds, burst: r.burst, burstSeconds: r.burstSeconds, store: r.store })),
  }));
  app.get('/problems', async (_req, reply) => {
    const s = snapshotOr503();
    return reply.type('text/plain').send((s?.problems ?? []).map(formatProblem).join('\n') + '\n');
  });
  return app;
}
