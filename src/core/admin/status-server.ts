// The status port (15021): `/healthz/ready` answers 200 while the process is ready — a proxy once its
// first snapshot serves and while it is not draining, the control plane once it can hand out a
// validated set and sign — which is what a Kubernetes readiness probe and a load balancer look at.
// Plain node:http: one fixed path needs no framework, and every proxy runs this port.

import { createServer, type Server } from 'node:http';
import { EndpointFailures, sendEndpointFailure } from '../proxy/respond.js';

export function createStatusServer(ready: () => boolean): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/healthz/ready') {
      sendEndpointFailure(res, EndpointFailures.notFound);
      return;
    }
    if (ready()) res.writeHead(200, { 'content-type': 'text/plain' }).end('');
    else sendEndpointFailure(res, EndpointFailures.notReady);
  });
}
