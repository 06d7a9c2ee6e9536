// The Node floor for TLS, a child of the benchmark (targets.ts forks it with an IPC channel, like servers.ts):
// a bare `node:https` server with the bench certificate and nothing else. `answer` writes the
// upstream's body itself (the least a Node TLS server can do per handshake or request); `proxy`
// forwards to the upstream through one undici Pool (the bare HTTP proxy's row, over TLS). What
// meshgate costs beyond these is its own; what these cost beyond nginx is Node's.

import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import { UPSTREAM_BODY, bareProxyHandler } from './servers.js';

async function main(mode: string | undefined, certFile: string | undefined, keyFile: string | undefined, upstreamUrl: string | undefined): Promise<void> {
  if ((mode !== 'answer' && mode !== 'proxy') || !certFile || !keyFile || (mode === 'proxy' && !upstreamUrl)) {
    throw new Error('usage: tls-floor.js answer|proxy CERT KEY [UPSTREAM_URL]');
  }
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  const body = Buffer.from(UPSTREAM_BODY);
  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  };
  const handler = mode === 'proxy' ? bareProxyHandler(new Pool(upstreamUrl!, { connections: 128, pipelining: 1 })) : answer;
  const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, handler);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.send?.({ port: (server.address() as AddressInfo).port });
}

// Only run as a child (forked with an IPC channel).
if (process.send && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv[2], process.argv[3], process.argv[4], process.argv[5]).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
