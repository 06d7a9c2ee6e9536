// Small real upstream servers for integration tests: each answers JSON naming itself and echoing
// what it received, so tests can see exactly what the gateway forwarded.

import { spawn } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';

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

/**
 * A port whose TCP connects hang, as towards an unreachable host: a listener in a child process
 * that never accepts, its accept queue filled first, so the kernel drops further connection
 * attempts. For connect timeouts on loopback.
 */
export async function blackholePort(): Promise<{ port: number; close(): void }> {
  const child = spawn(process.execPath, [
    '-e',
    "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>{process.stdout.write(s.address().port+'\\n');Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0)})",
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    child.once('error', reject);
  });
  // Connect until one attempt no longer completes: from then on every new one hangs.
  const fillers: Socket[] = [];
  for (let i = 0; i < 16; i++) {
    const s = netConnect(port, '127.0.0.1');
    s.on('error', () => undefined);
    fillers.push(s);
    const connected = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 300);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    if (!connected) break;
  }
  return {
    port,
    close: () => {
      for (const s of fillers) s.destroy();
      child.kill();
    },
  };
}
