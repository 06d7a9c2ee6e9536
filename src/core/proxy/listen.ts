// Opening a listening socket for a proxy port and reporting the port actually bound (0 asks the
// system for any free one), with a bind failure (port in use) as a rejected promise, not a crash.

import type { Server } from 'node:net';

export function listenOn(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}
