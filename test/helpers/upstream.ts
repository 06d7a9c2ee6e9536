// Small real upstream servers for integration tests: each answers JSON naming itself and echoing
// what it received, so tests can see exactly what the gateway forwarded.

import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
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

/**
 * A loopback port nothing listens on, below the kernel's ephemeral range. The kernel never hands
 * such a port to a listener on port 0 or to an outgoing connection, so no other test's server can
 * take it between this check and its use, as one could take a port bound here and released. The
 * few tests that must bind a port known in advance (Redis, an ACME HTTP-01 port) take theirs here
 * too; a pick is checked to refuse connections and never repeated within a process.
 */
export async function closedPort(): Promise<number> {
  const lowestEphemeral = Number(
    (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768')).trim().split(/\s+/)[0],
  );
  const lowest = 10_000;
  for (;;) {
    const port = lowest + Math.floor(Math.random() * (lowestEphemeral - lowest));
    if (pickedPorts.has(port)) continue;
    pickedPorts.add(port);
    if (await refuses(port)) return port;
  }
}

const pickedPorts = new Set<number>();

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
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
