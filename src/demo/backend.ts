// A demo backend: a tiny HTTP server that answers every request with JSON saying which service,
// version and instance answered and what it received, so `curl` through the gateway shows the routing
// decision and the headers the gateway set.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface BackendOptions {
  readonly service: string;
  readonly version: string;
  readonly instance: string;
  readonly host?: string;
  /** 0 = any free port. */
  readonly port: number;
}

export interface RunningBackend {
  readonly port: number;
  close(): Promise<void>;
}

export interface BackendReply {
  readonly service: string;
  readonly version: string;
  readonly instance: string;
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly headers: IncomingMessage['headers'];
  readonly bodyBytes: number;
}

export async function startBackend(opts: BackendOptions): Promise<RunningBackend> {
  const { service, version, instance } = opts;
  const server = createServer((req, res) => {
    // The body is counted, never buffered: an upload of any size costs no memory.
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => (bodyBytes += chunk.length));
    req.on('end', () => answer(req, res, bodyBytes));
    req.on('error', () => res.destroy());
  });

  const answer = (req: IncomingMessage, res: ServerResponse, bodyBytes: number): void => {
    if (req.method === 'GET' && req.url === '/healthz') {
      send(res, { status: 'ok', service, version, instance });
      return;
    }
    const reply: BackendReply = {
      service,
      version,
      instance,
      method: req.method ?? '',
      path: req.url ?? '',
      host: req.headers.host ?? '',
      headers: req.headers,
      bodyBytes,
    };
    send(res, reply);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  return {
    port,
    // Keep-alive connections from the gateway's pools would hold close() open; a demo backend has no
    // requests worth draining, so it drops them.
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

function send(res: ServerResponse, value: unknown): void {
  // Indented with a trailing newline so that a bare `curl` prints it readably.
  const body = JSON.stringify(value, null, 2) + '\n';
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
