// The status port (15021): `/healthz/ready` answers 200 once the first snapshot serves and while
// the proxy is not draining — what a Kubernetes readiness probe and a load balancer look at.

import { fastify, type FastifyInstance } from 'fastify';

export interface ReadinessSource {
  ready(): boolean;
}

export function createStatusServer(readiness: ReadinessSource): FastifyInstance {
  const app = fastify({ logger: false });
  app.get('/healthz/ready', async (_req, reply) => {
    if (readiness.ready()) return reply.code(200).type('text/plain').send('');
    return reply.code(503).type('text/plain').send('not ready\n');
  });
  return app;
}
