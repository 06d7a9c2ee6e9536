// The control plane's status port (15021): `/healthz/ready` answers 200 once the first validated
// set is ready to hand out and the CA can sign, which is when proxies can start against it.

import { createServer, type Server } from 'node:http';
import { EndpointFailures, sendEndpointFailure } from '../core/proxy/respond.js';

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
