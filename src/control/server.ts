// The control plane's TLS endpoint (port 15012): authenticates every call by its bearer token, then
//   GET  /v1/config/stream?proxy=ID&role=sidecar|gateway&labels=k=v,…
//                                     the configuration stream (NDJSON, long-lived); what it
//                                     carries is scoped to the caller's namespace, role and labels
//   POST /v1/config/ack               a proxy says whether it applied a version
//   POST /v1/certificates             a CSR signed for the caller's identity
// (The list of proxies is on the loopback debug port, debug-server.ts: a token is not enough for it.)
//
// Transport: HTTP/1.1 over node:https, without a framework. Each proxy holds one response open for
// the stream and makes a few short POSTs; chunked NDJSON is all the stream needs, any HTTP client
// (curl included) can read it, and writing lines straight to the response keeps heartbeats and
// back-pressure in plain sight. HTTP/2 would multiplex, but one stream per proxy leaves nothing to
// multiplex, and fastify's request lifecycle adds nothing for three routes and fits a response that
// never ends poorly.

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { CertificateAuthority } from '../core/pki/authority.js';
import { spiffeIdOf } from '../core/pki/spiffe.js';
import { ACK_PATH, CERTIFICATES_PATH, STREAM_PATH, parseDescription } from '../core/sources/control-plane-wire.js';
import { answerCertificateRequest } from './ca-service.js';
import type { ConfigDistributor } from './config-distributor.js';
import type { ProxyRegistry } from './proxy-registry.js';
import type { ControlMetrics } from './control-metrics.js';
import { bearerToken, type Authenticator, type Caller } from './token-authenticator.js';
import { apiFailure, internalFailure, sendEndpointFailure, type LocalReply } from '../core/proxy/respond.js';

export interface ControlServerOptions {
  /** The server certificate: chain leaf first (PEM), and its key. */
  readonly tls: { readonly certChainPem: string; readonly keyPem: string };
  readonly authenticator: Authenticator;
  readonly distributor: ConfigDistributor;
  readonly registry: ProxyRegistry;
  readonly ca: CertificateAuthority;
  readonly log: Logger;
  readonly metrics?: ControlMetrics;
}

/** A CSR is about 1 KiB; an acknowledgement carries at most a list of problems. */
const MAX_BODY_BYTES = 1 << 20;
/** How long an idle acknowledgement connection stays open (a minute and a bit, as HTTP load balancers keep them). */
const ACK_KEEP_ALIVE_MS = 65_000;
const PROXY_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,252}$/;

const ROUTES: Readonly<Record<string, string>> = {
  [STREAM_PATH]: 'GET',
  [ACK_PATH]: 'POST',
  [CERTIFICATES_PATH]: 'POST',
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function createControlServer(opts: ControlServerOptions): Server {
  const { log } = opts;
  const server = createServer({ cert: opts.tls.certChainPem, key: opts.tls.keyPem, minVersion: 'TLSv1.2' }, (req, res) => {
    handle(opts, req, res).catch((err: unknown) => {
      // A body cut short leaves the connection in an unknown state: close it after the answer.
      if (err instanceof HttpError) return sendEndpointFailure(res, apiFailure(err.status, err.message), 'json', err.status === 413 ? { connection: 'close' } : {});
      log.error({ err, path: req.url }, 'control plane request failed');
      fail(res, internalFailure('internal error'));
    });
  });
  // A proxy acknowledges every push on a pooled connection beside its stream; Node's 5 s default
  // would close it between pushes, and each push would then cost every proxy a new TLS handshake.
  server.keepAliveTimeout = ACK_KEEP_ALIVE_MS;
  // Proxies that fail the handshake (a wrong root, a port scanner) are worth a debug line, not a crash.
  server.on('tlsClientError', (err, socket) => log.debug({ error: err.message, address: socket.remoteAddress }, 'TLS handshake failed'));
  return server;
}

async function handle(opts: ControlServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://control.invalid');
  // Authentication comes before routing, so an unauthenticated caller learns nothing, not even which paths exist.
  const caller = await authenticate(opts, req, url.pathname);
  if (!caller) {
    if (url.pathname === CERTIFICATES_PATH) opts.metrics?.certificateAuthenticationFailed();
    return fail(res, apiFailure(401, 'a valid bearer token is required'), { 'www-authenticate': 'Bearer' });
  }
  const identity = spiffeIdOf({ trustDomain: opts.ca.trustDomain, ...caller });
  const method = ROUTES[url.pathname];
  if (!method) return fail(res, apiFailure(404, `no such path ${url.pathname}`));
  if (req.method !== method) return fail(res, apiFailure(405, `${url.pathname} takes ${method}`), { allow: method });

  switch (url.pathname) {
    case STREAM_PATH: {
      const id = url.searchParams.get('proxy') ?? '';
      if (!PROXY_ID.test(id)) return fail(res, apiFailure(400, 'proxy=ID is required: letters, digits, . _ : -'));
      const described = parseDescription(url.searchParams);
      if (typeof described === 'string') return fail(res, apiFailure(400, described));
      // The namespace is the token's, never the caller's say: it decides which policies it receives.
      const meta = { ...described, namespace: caller.namespace };
      const connected = opts.registry.connect(id, identity, req.socket.remoteAddress ?? '', meta);
      if (!connected.ok) return fail(res, apiFailure(409, connected.message));
      opts.distributor.open(connected.session, res, connected.replaced);
      return;
    }
    case ACK_PATH: {
      const outcome = opts.registry.acknowledge(identity, await readJson(req));
      return outcome.ok ? reply(res, 200, {}) : fail(res, apiFailure(outcome.status, outcome.message));
    }
    case CERTIFICATES_PATH: {
      const answer = answerCertificateRequest(opts.ca, caller, await readJson(req), opts.log);
      opts.metrics?.certificateRequest(answer.ok);
      return answer.ok ? reply(res, 200, answer.body) : fail(res, apiFailure(answer.status, answer.message));
    }
  }
}

async function authenticate(opts: ControlServerOptions, req: IncomingMessage, path: string): Promise<Caller | undefined> {
  const where = { address: req.socket.remoteAddress, method: req.method, path };
  const token = bearerToken(req.headers.authorization);
  if (!token) {
    opts.log.warn(where, 'request refused: no bearer token');
    return undefined;
  }
  const result = await opts.authenticator.authenticate(token);
  if (!result.ok) {
    // Never the token itself: a log line must not become a credential.
    opts.log.warn({ ...where, reason: result.message }, 'request refused: token not accepted');
    return undefined;
  }
  return result.caller;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'the body is not JSON');
  }
}

/** A refused or failed API request, written by respond.ts like every other failure; never cached. */
function fail(res: ServerResponse, r: LocalReply, headers: Record<string, string> = {}): void {
  sendEndpointFailure(res, r, 'json', { 'cache-control': 'no-store', ...headers });
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.destroy();
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}
