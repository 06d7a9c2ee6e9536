// Entry point of the benchmark's child processes (started by targets.ts with fork): the upstream, the
// @fastify/http-proxy peer, the bare proxy: node:http in front of one undici Pool, with no
// routing, no policy and no logging, the most a Node proxy can do on this machine, and the OTLP span
// sink of the observability rows. Each listens on 127.0.0.1 port 0 and reports its port over IPC, so the
// parent never guesses ports; each exits when the parent goes away, so none outlives a crashed run.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { fastify } from 'fastify';
import { fastifyHttpProxy } from '@fastify/http-proxy';
import { Pool } from 'undici';

/** The Host every request of the benchmark carries; the routes match on it. */
export const BENCH_HOST = 'bench.example.com';

/** What the upstream answers to every request; the parent checks each target returns exactly this. */
export const UPSTREAM_BODY = JSON.stringify({ service: 'bench-upstream', ok: true, items: [1, 2, 3, 4, 5, 6, 7, 8] });

async function upstream(): Promise<number> {
  const body = Buffer.from(UPSTREAM_BODY);
  const server = createServer((req, res) => {
    // Drain any request body so keep-alive connections stay usable.
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function fastifyProxy(upstreamUrl: string): Promise<number> {
  const app = fastify({ logger: false });
  await app.register(fastifyHttpProxy, { upstream: upstreamUrl, prefix: '/' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as AddressInfo).port;
}

/** The bare proxy's request handler: one undici Pool, headers passed on minus hop-by-hop ones. */
export function bareProxyHandler(pool: Pool): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const headers = { ...req.headers };
    delete headers.connection;
    pool
      .request({ method: req.method as 'GET', path: req.url ?? '/', headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req })
      .then(({ statusCode, headers: h, body }) => {
        delete h.connection;
        delete h['keep-alive'];
        delete h['transfer-encoding'];
        res.writeHead(statusCode, h as Record<string, string>);
        body.pipe(res);
      })
      .catch(() => {
        res.statusCode = 502;
        res.end();
      });
  };
}

async function bareProxy(upstreamUrl: string): Promise<number> {
  const server = createServer(bareProxyHandler(new Pool(upstreamUrl, { connections: 128, pipelining: 1 })));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/**
 * An OTLP/HTTP receiver that only answers (what exporting costs is the gateway's), telling the parent
 * over IPC how many batches it has had. Its own process: in the bench's, every export it took in
 * landed on the load generators that run there (autocannon without wrk, the paced client), which
 * then fed the gateway less evenly and raised its CPU per request (docs/benchmarks.md).
 */
async function spanSink(): Promise<number> {
  let batches = 0;
  const server = createServer((req, res) => req.resume().on('end', () => {
    process.send?.({ batches: ++batches });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function child(role: string | undefined, arg: string | undefined): Promise<void> {
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  let port: number;
  if (role === 'upstream') port = await upstream();
  else if (role === 'fastify-proxy' && arg) port = await fastifyProxy(arg);
  else if (role === 'bare-proxy' && arg) port = await bareProxy(arg);
  else if (role === 'span-sink') port = await spanSink();
  else throw new Error(`usage: servers.js upstream | fastify-proxy UPSTREAM_URL | bare-proxy UPSTREAM_URL | span-sink (got ${role ?? 'nothing'})`);
  process.send?.({ port });
}

// Only run as a child (forked with an IPC channel); importing this module for its constants does nothing.
if (process.send && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  child(process.argv[2], process.argv[3]).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
