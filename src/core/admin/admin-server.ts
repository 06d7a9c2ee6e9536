// The admin port (15000, loopback only): what a person asks a running proxy — its configuration,
// routing table, clusters with endpoints, live load, circuit-breaker counters and outlier
// ejections, and current problems.

import { fastify, type FastifyInstance, type FastifyReply } from 'fastify';
import { formatProblem } from '../config/problem.js';
import type { RateLimiters } from '../policy/rate-limiters.js';
import type { UpstreamPools } from '../proxy/upstream-pools.js';
import { endpointKey } from '../policy/lb-endpoints.js';
import type { Cluster } from '../policy/types.js';
import { printRoutes } from '../routing/print.js';
import { ruleJson } from '../policy/rate-limit-describe.js';
import type { SnapshotHolder } from '../snapshot/holder.js';
import { DASHBOARD_HTML, type DashboardData } from '../telemetry/dashboard-page.js';
import { EndpointFailures, endpointAnswer } from '../proxy/respond.js';
import { redactForDump } from './config-dump-redaction.js';
import { formatStats } from './cluster-stats.js';

/** `dashboard`: this proxy's own traffic as the service graph (a gateway without a control plane). */
export function createAdminServer(holder: SnapshotHolder, pools: UpstreamPools, limiters?: RateLimiters, dashboard?: () => Promise<DashboardData>): FastifyInstance {
  const app = fastify({ logger: false });
  if (dashboard) {
    app.get('/dashboard', async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(DASHBOARD_HTML));
    for (const path of ['/graph.json', '/dashboard/graph.json']) app.get(path, async (_req, reply) => reply.header('cache-control', 'no-store').send(await dashboard()));
  }
  const snapshotOr503 = () => holder.current();
  app.get('/', async () => ({ endpoints: ['/config_dump', '/routes', '/clusters', '/problems', '/rate_limits', '/stats'] }));
  app.get('/config_dump', async (_req, reply) => {
    const s = snapshotOr503();
    if (!s) return failed(reply, 'json');
    return {
      version: s.version,
      createdAt: s.createdAt.toISOString(),
      resources: s.resources.map((r) => ({ file: `${r.origin.file}:${r.origin.line}`, ...redactForDump(r.raw) })),
    };
  });
  app.get('/routes', async (_req, reply) => {
    const s = snapshotOr503();
    if (!s) return failed(reply, 'text');
    return reply.type('text/plain').send(printRoutes(s));
  });
  app.get('/clusters', async (_req, reply) => {
    const s = snapshotOr503();
    if (!s) return failed(reply, 'json');
    return [...s.clusters.values()].map((c) => ({
      name: c.name,
      loadBalancer: c.lb.algorithm,
      policy: c.policy.source ?? null,
      ...trafficOf(c),
      endpoints: c.endpoints.map((e) => {
        const key = endpointKey(e, c.port);
        const health = c.traffic?.outlier?.detector.status(key);
        return {
          address: key,
          locality: e.locality,
          weight: e.weight,
          labels: e.labels,
          active: pools.active(key),
          ...(health
            ? {
                ejected: health.ejected,
                ejectedUntil: health.ejectedUntil !== undefined ? new Date(health.ejectedUntil).toISOString() : null,
                ejections: health.ejections,
                consecutive5xx: health.consecutive5xx,
                consecutiveGatewayErrors: health.consecutiveGatewayErrors,
              }
            : {}),
        };
      }),
    }));
  });
  app.get<{ Querystring: { filter?: string } }>('/stats', async (req, reply) => {
    const s = snapshotOr503();
    if (!s) return failed(reply, 'text');
    const text = formatStats(s.clusters.values(), req.query.filter);
    if (text === undefined) return reply.code(400).type('text/plain').send('Invalid regex: filter\n');
    return reply.type('text/plain').send(text);
  });
  app.get('/rate_limits', async () => ({
    ...(limiters?.stats() ?? {}),
    rules: (holder.current()?.rateLimits.rules ?? []).map(ruleJson),
  }));
  app.get('/problems', async (_req, reply) => {
    const s = snapshotOr503();
    return reply.type('text/plain').send((s?.problems ?? []).map(formatProblem).join('\n') + '\n');
  });
  return app;
}

/** Circuit-breaker limits and live counters, and the outlier-detection settings in force. */
function trafficOf(c: Cluster): Record<string, unknown> {
  const t = c.traffic;
  if (!t) return {};
  const { limits } = t;
  return {
    circuitBreakers: {
      maxConnections: limits.maxConnections,
      maxPendingRequests: limits.maxPendingRequests,
      maxRequests: limits.maxRequests,
      maxRetries: limits.maxRetries,
      ...t.breaker.counters(),
    },
    outlierDetection: t.outlier ? t.outlier.settings : null,
  };
}

/** No configuration yet: 503, as respond.ts words it. */
function failed(reply: FastifyReply, format: 'text' | 'json'): FastifyReply {
  const a = endpointAnswer(EndpointFailures.noConfiguration, format);
  return reply.code(a.status).headers(a.headers).send(a.body);
}
