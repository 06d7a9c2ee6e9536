// The status port (15021): `/healthz/ready` answers 200 once the first snapshot serves and while
// the proxy is not draining — what a Kubernetes readiness probe and a load balancer look at.

import { fastify, type FastifyInstance } from 'fastify';
import { EndpointFailures, endpointAnswer } from '../proxy/respond.js';

export interface ReadinessSource {
  ready(): boolean;
}

export function createStatusServer(readiness: ReadinessSource): FastifyInstance {
  const app = fastify({ logger: false });
  app.get('/healthz/ready', async (_req, reply) => {
    if (readiness.ready()) return reply.code(200).type('text/plain').send('');
    const a = endpointAnswer(EndpointFailures.notReady);
    return reply.code(a.status).headers(a.headers).send(a.body);
  });
  return app;
}
