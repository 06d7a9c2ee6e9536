// The control plane's status port (15021): `/healthz/ready` answers 200 once the first validated
// set is ready to hand out and the CA can sign, which is when proxies can start against it.

import { createServer, type Server } from 'node:http';

export function createStatusServer(ready: () => boolean): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/healthz/ready') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (ready()) res.writeHead(200, { 'content-type': 'text/plain' }).end('');
    else res.writeHead(503, { 'content-type': 'text/plain' }).end('not ready\n');
  });
}
