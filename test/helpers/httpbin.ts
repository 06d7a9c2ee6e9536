// A stand-in for Istio's httpbin sample, answering the paths Istio's tasks call the way httpbin
// does: /status/N (418 with its teapot), /headers and /get (the request's headers, httpbin's
// capitalised names), /ip, /delay/N (answers after N seconds, as the timeout tasks rely on), and
// 200 with an empty body for anything else. Loopback, a port the OS chooses.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Httpbin {
  readonly port: number;
  readonly server: Server;
  /** Paths asked for, in order. */
  readonly paths: string[];
  close(): Promise<void>;
}

const TEAPOT = `
    -=[ teapot ]=-

       _...._
     .'  _ _ \`.
    | ."\` ^ \`". _,
    \\_;\`"---"\`|//
      |       ;/
      \\_     _/
        \`"""\`
`;

/** httpbin's spelling of header names: each word capitalised. */
const shown = (name: string): string => name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());

function headersOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[shown(k)] = Array.isArray(v) ? v.join(',') : v;
  return out;
}

export async function startHttpbin(): Promise<Httpbin> {
  const paths: string[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://httpbin');
      paths.push(url.pathname);
      const json = (v: unknown): void => {
        const body = JSON.stringify(v, null, 2) + '\n';
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      };
      const status = /^\/status\/(\d{3})$/.exec(url.pathname);
      const delay = /^\/delay\/(\d+)$/.exec(url.pathname);
      if (status) {
        const code = Number(status[1]);
        const body = code === 418 ? TEAPOT : '';
        res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...(code === 418 ? { 'x-more-info': 'http://tools.ietf.org/html/rfc2324' } : {}) }).end(body);
      } else if (url.pathname === '/headers') json({ headers: headersOf(req) });
      else if (url.pathname === '/get') json({ args: Object.fromEntries(url.searchParams), headers: headersOf(req), origin: req.socket.remoteAddress, url: `http://${req.headers.host}${req.url}` });
      else if (url.pathname === '/ip') json({ origin: req.socket.remoteAddress });
      else if (delay) {
        const t = setTimeout(() => {
          timers.delete(t);
          json({ headers: headersOf(req) });
        }, Math.min(10, Number(delay[1])) * 1000);
        timers.add(t);
      } else res.writeHead(200, { 'content-length': 0 }).end();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    paths,
    close: () =>
      new Promise((r) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
