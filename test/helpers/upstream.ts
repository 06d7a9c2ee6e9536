// Small real upstream servers for integration tests: each answers JSON naming itself and echoing
// what it received, so tests can see exactly what the gateway forwarded.

import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Echo {
  name: string;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
}

export interface Upstream {
  readonly name: string;
  readonly port: number;
  readonly server: Server;
  /** Requests seen, in order. */
  readonly seen: Echo[];
  close(): Promise<void>;
}

export type Behaviour = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, echo: Echo) => boolean | void;

/** `behaviour` may answer itself (return true) to hang, fail or stream. */
export async function startUpstream(name: string, behaviour?: Behaviour): Promise<Upstream> {
  const seen: Echo[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => (bodyBytes += c.length));
    req.on('end', () => {
      const echo: Echo = { name, method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes };
      seen.push(echo);
      if (behaviour?.(req, res, echo)) return;
      const body = JSON.stringify(echo);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-upstream': name });
      res.end(body);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    name,
    port: (server.address() as AddressInfo).port,
    server,
    seen,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
