// The act stage of the request pipeline: what the route says to do, once every check has passed —
// a redirect (Envoy's redirect: path, host, scheme and port replaced as configured), a direct
// response, or a forward (weighted destinations → cluster → load balancer → endpoint, with the
// route's timeout, retries, mirrors and header rules: ../forward.ts). A sidecar's inbound side acts
// with `localApp` instead: the request goes to the workload's own app (../relay.ts). A forward that
// fails comes back as a typed failure, answered through the exchange's one `reply`.

import type { ServerResponse } from 'node:http';
import type { RedirectAction, RequestFacts } from '../../routing/types.js';
import type { RequestRecord } from '../../telemetry/access-log.js';
import { applyHeaderRules } from '../headers.js';
import { forward, type ForwardContext } from '../forward.js';
import { clientAddressOf } from '../client-address.js';
import { relay } from '../relay.js';
import { LocalReplies } from '../respond.js';
import type { Exchange, StageResult } from './exchange.js';
import { DONE, factsOf } from './exchange.js';
import { isConnect } from './parse.js';

export function act(ex: Exchange): StageResult {
  const { req, res, record, route } = ex;
  const facts = factsOf(ex);
  // `routed` answered every request without a route before this stage.
  if (!route) return LocalReplies.noRoute;
  const action = route.action;
  if (action.kind === 'redirect') {
    sendRedirect(res, action.code, redirectLocation(action, facts, req.url ?? '/'), record);
    return DONE;
  }
  if (action.kind === 'direct') {
    const headers: Record<string, string | string[]> = { server: 'istio-envoy', 'content-length': String(action.body?.length ?? 0) };
    if (action.body) headers['content-type'] = 'text/plain';
    applyHeaderRules(headers, action.responseHeaders);
    record.details = 'direct_response';
    res.writeHead(action.status, headers);
    res.end(action.body);
    return DONE;
  }
  const { ctx, listener } = ex;
  // One object, its absent parts undefined: spreading each optional part in made an object apiece.
  const fctx: ForwardContext = {
    pools: ctx.pools,
    random: ctx.random,
    remoteAddress: ex.remoteAddress,
    requestId: ex.requestId,
    clientCert: listener.clientCert?.(req),
    identity: ctx.identity,
    responseHeaders: ex.corsHeaders,
    upgrade: ex.tunnel,
    peerMetadata: ctx.peerMetadata,
    destination: ex.destination,
    dialled: listener.dialled?.(req),
    detectsProtocol: ex.snapshot?.role.kind === 'sidecar',
    keepsForwardedFor: listener.keepsForwardedFor,
    externalAddress: listener.keepsForwardedFor ? undefined : clientAddressOf(ex),
  };
  forward(req, res, facts, action, fctx, record, (failure, bug) => {
    if (bug !== undefined) internalError(ex, bug);
    else if (failure) ex.reply(failure);
  });
  return DONE;
}

/**
 * The act stage of a sidecar's inbound side: the app gets the request that passed authorization —
 * the normalized path the policy checked, the query as it came, the caller's identity in XFCC.
 */
export function actLocalApp(ex: Exchange): StageResult {
  const { listener, ctx, req, res, record, requestId } = ex;
  const app = listener.localApp;
  // Istio's inbound routes match no CONNECT: 404 NR, now that authorization has allowed it.
  if (!app || isConnect(req)) return LocalReplies.noRoute;
  const facts = factsOf(ex);
  relay(ctx.pools, app.upstream(), app.protocol(), req, res, facts, app.headers(req, facts, requestId), record, ex.reply, ex.tunnel);
  return DONE;
}

/** A bug, not an expected failure: answered as Envoy answers an internal error, and the proxy keeps serving. */
export function internalError(ex: Exchange, err: unknown): void {
  // Whatever was thrown (an Error, or null, a string …): reading .message off null would throw again.
  const message = err instanceof Error ? err.message : String(err);
  ex.ctx.log?.error({ err, requestId: ex.requestId, path: ex.req.url }, 'request handling failed');
  // The access log keeps what failed: the reply's own details would say "connection termination".
  ex.reply({ ...LocalReplies.upstreamReset, details: `internal_error:${message.replace(/\s+/g, '_')}` });
}

export function sendRedirect(res: ServerResponse, code: number, location: string, record: RequestRecord): void {
  record.details = 'direct_response';
  res.writeHead(code, { location, server: 'istio-envoy', 'content-length': '0' });
  res.end();
}

/** Envoy's redirect: replace path/host/scheme/port as configured; default ports are left out. */
export function redirectLocation(a: RedirectAction, facts: RequestFacts, url: string): string {
  const scheme = a.scheme ?? facts.scheme;
  const original = splitAuthority(facts.authority);
  const host = a.authority !== undefined ? splitAuthority(a.authority).host : original.host;
  let port: string | undefined;
  if (a.port !== undefined) port = String(a.port);
  else if (a.derivePort === 'FROM_REQUEST_PORT') port = original.port ?? String(facts.port);
  else if (a.derivePort === 'FROM_PROTOCOL_DEFAULT') port = undefined;
  else if (a.authority !== undefined) port = splitAuthority(a.authority).port;
  else if (a.scheme === undefined || a.scheme === facts.scheme) port = original.port;
  if ((scheme === 'http' && port === '80') || (scheme === 'https' && port === '443')) port = undefined;
  const q = url.indexOf('?');
  const path = a.uri ?? (a.rewritePath ? a.rewritePath(facts.path) : facts.path);
  const query = q >= 0 ? url.slice(q) : '';
  return `${scheme}://${host}${port ? `:${port}` : ''}${path}${a.uri?.includes('?') ? '' : query}`;
}

function splitAuthority(authority: string): { host: string; port?: string } {
  const m = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(authority);
  if (!m) return { host: authority };
  return m[2] !== undefined ? { host: m[1]!, port: m[2] } : { host: m[1]! };
}

