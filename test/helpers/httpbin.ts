// A stand-in for Istio's httpbin sample, answering the paths Istio's tasks call the way httpbin
// does: /status/N (418 with its teapot), /headers and /get (the request's headers, httpbin's
// capitalised names), /ip, /delay/N (answers after N seconds, as the timeout tasks rely on), and
// 200 with an empty body for anything else. Loopback, a port the OS chooses.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { startUpstream, type Echo } from './upstream.js';

export interface Httpbin {
  readonly port: number;
  readonly server: Server;
  /** Paths asked for, in order. */
  readonly paths: readonly string[];
  /** Requests received, in order (the app's own access log). */
  readonly seen: readonly Echo[];
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

/** httpbin's answer to one request (startUpstream has read its body). */
function answer(req: IncomingMessage, res: ServerResponse): true {
  const url = new URL(req.url ?? '/', 'http://httpbin');
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
  // Unref'd: a test that closes the server does not wait for a delay it no longer needs.
  else if (delay) setTimeout(() => json({ headers: headersOf(req) }), Math.min(10, Number(delay[1])) * 1000).unref();
  else res.writeHead(200, { 'content-length': 0 }).end();
  return true;
}

export async function startHttpbin(): Promise<Httpbin> {
  const up = await startUpstream('httpbin', (req, res) => answer(req, res));
  return {
    port: up.port,
    server: up.server,
    get paths() {
      return up.seen.map((e) => new URL(e.url, 'http://httpbin').pathname);
    },
    seen: up.seen,
    close: () => up.close(),
  };
}
