// A demo backend: a tiny HTTP server that answers every request with JSON saying which service,
// version and instance answered and what it received, so `curl` through the gateway shows the routing
// decision and the headers the gateway set.

import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface BackendOptions {
  readonly service: string;
  readonly version: string;
  readonly instance: string;
  readonly host?: string;
  /** 0 = any free port. */
  readonly port: number;
  /**
   * Services this one calls on every request, by name, through its sidecar's outbound port used as
   * an HTTP proxy (what `HTTP_PROXY=http://127.0.0.1:15001` does for a real app). Their answers are
   * included in the reply, so one curl shows the whole call chain. The proxy's port is asked for at
   * each call, so the app can start before the sidecar whose port the OS chooses.
   */
  readonly calls?: { readonly proxyPort: () => number; readonly urls: readonly string[] };
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
  /** What the called services answered (status and body), by URL. */
  readonly calls?: Record<string, { status: number; body: unknown }>;
}

export async function startBackend(opts: BackendOptions): Promise<RunningBackend> {
  const { service, version, instance } = opts;
  const server = createServer((req, res) => {
    // The body is counted, never buffered: an upload of any size costs no memory.
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => (bodyBytes += chunk.length));
    req.on('end', () => void answer(req, res, bodyBytes).catch(() => res.destroy()));
    req.on('error', () => res.destroy());
  });

  const answer = async (req: IncomingMessage, res: ServerResponse, bodyBytes: number): Promise<void> => {
    if (req.method === 'GET' && req.url === '/healthz') {
      send(res, { status: 'ok', service, version, instance });
      return;
    }
    const calls = opts.calls ? await callThroughProxy(opts.calls.proxyPort(), opts.calls.urls, propagated(req)) : undefined;
    const reply: BackendReply = {
      service,
      version,
      instance,
      method: req.method ?? '',
      path: req.url ?? '',
      host: req.headers.host ?? '',
      headers: req.headers,
      bodyBytes,
      ...(calls ? { calls } : {}),
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

/**
 * The headers an app in a mesh passes on to its own calls: the request id and the trace context, so
 * traces join up, and bookinfo's `end-user`, which its apps pass on and Istio's tasks route on.
 */
const PROPAGATED = ['end-user', 'x-request-id', 'traceparent', 'tracestate', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags', 'b3'];

function propagated(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PROPAGATED) {
    const v = req.headers[name];
    if (typeof v === 'string') out[name] = v;
  }
  return out;
}

/** GET each URL through an HTTP proxy (absolute-form request target), passing the request id and trace context along as apps in a mesh should. */
async function callThroughProxy(proxyPort: number, urls: readonly string[], passOn: Record<string, string>): Promise<Record<string, { status: number; body: unknown }>> {
  const out: Record<string, { status: number; body: unknown }> = {};
  for (const url of urls) {
    out[url] = await new Promise((resolve) => {
      const target = new URL(url);
      const req = request({ host: '127.0.0.1', port: proxyPort, path: url, headers: { host: target.host, ...passOn } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON (a local reply such as 'RBAC: access denied'): keep the text
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', () => resolve({ status: 0, body: 'response broke off' }));
      });
      req.on('error', (err) => resolve({ status: 0, body: `call failed: ${err.message}` }));
      req.end();
    });
  }
  return out;
}
