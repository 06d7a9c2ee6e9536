// The Node floor for a sidecar's inbound side, a child of sidecar-floor.ts (forked with an IPC
// channel, like servers.ts): a bare `node:https` server that asks for and verifies the client's
// mesh certificate (mutual TLS against the mesh's root), in front of one undici Pool to the app (or
// node:http's client with an Agent, SIDECAR_FLOOR_APP_CLIENT=node:http),
// with no routing, policy, headers or telemetry. It loads what a sidecar would load for that and
// nothing else (undici's Pool alone, as the sidecar does; not servers.ts, which brings fastify), so
// its memory is the least a Node process holds doing a sidecar's inbound work. It sets on itself the
// V8 flags in SIDECAR_FLOOR_V8_FLAGS at run time, as the sidecar sets its own: given on the command
// line, --optimize-for-size also sizes the young generation down to 1 MB semi-spaces (a V8 flag
// implication that holds only while the heap is set up), which the sidecar's run-time flags do not.

import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import type { Dispatcher, Pool as UndiciPool } from 'undici';

if (process.env.SIDECAR_FLOOR_V8_FLAGS) setFlagsFromString(process.env.SIDECAR_FLOOR_V8_FLAGS);
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as new (origin: string, options?: UndiciPool.Options) => Dispatcher;

/** Relays one request with undici's dispatch handler, the same interface meshgate's exchange uses. */
function forward(pool: Dispatcher, req: IncomingMessage, res: ServerResponse): void {
  const headers = { ...req.headers };
  delete headers.connection;
  pool.dispatch({ path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers: headers as Record<string, string>, body: req.method === 'GET' || req.method === 'HEAD' ? null : req }, {
    onRequestStart() {},
    onResponseStart(c, statusCode, h) {
      delete h.connection;
      delete h['keep-alive'];
      delete h['transfer-encoding'];
      res.writeHead(statusCode, h as Record<string, string>);
      res.on('drain', () => c.resume());
    },
    onResponseData(c, chunk) {
      if (!res.write(chunk)) c.pause();
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError() {
      if (res.headersSent) res.destroy();
      else res.writeHead(502).end();
    },
  });
}

/**
 * The same hop with node:http's client (SIDECAR_FLOOR_APP_CLIENT=node:http): Node's own llhttp, the
 * one its server side already runs, where undici brings a WebAssembly build of it, compiled in the
 * process on the first connection.
 */
function forwardWithNodeHttp(agent: Agent, app: URL, req: IncomingMessage, res: ServerResponse): void {
  const headers = { ...req.headers };
  delete headers.connection;
  const out = httpRequest({ agent, host: app.hostname, port: app.port, path: req.url ?? '/', method: req.method ?? 'GET', headers }, (answer) => {
    const h = { ...answer.headers };
    delete h.connection;
    delete h['keep-alive'];
    delete h['transfer-encoding'];
    res.writeHead(answer.statusCode ?? 502, h);
    answer.pipe(res);
  });
  out.on('error', () => {
    if (res.headersSent) res.destroy();
    else res.writeHead(502).end();
  });
  req.pipe(out);
}

async function main(certFile: string | undefined, keyFile: string | undefined, caFile: string | undefined, appUrl: string | undefined): Promise<void> {
  if (!certFile || !keyFile || !caFile || !appUrl) throw new Error('usage: sidecar-floor-server.js CERT KEY ROOT_CERT APP_URL');
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  const nodeHttp = process.env.SIDECAR_FLOOR_APP_CLIENT === 'node:http';
  const pool = nodeHttp ? undefined : new Pool(appUrl, { connections: 128, pipelining: 1 });
  const agent = new Agent({ keepAlive: true, maxSockets: 128 });
  const app = new URL(appUrl);
  const server = createServer(
    { cert: readFileSync(certFile), key: readFileSync(keyFile), ca: readFileSync(caFile), requestCert: true, rejectUnauthorized: true },
    (req, res) => (pool ? forward(pool, req, res) : forwardWithNodeHttp(agent, app, req, res)),
  );
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.send?.({ port: (server.address() as AddressInfo).port });
}

main(process.argv[2], process.argv[3], process.argv[4], process.argv[5]).catch((err) => {
  console.error(err);
  process.exit(1);
});
