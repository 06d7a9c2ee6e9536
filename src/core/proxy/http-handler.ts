// The life of one HTTP request in a proxy: read the facts, take the current snapshot once, find the
// route, apply its CORS policy and fault injection, and act (redirect, direct response or forward),
// then write the access log line.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { SnapshotHolder } from '../snapshot/holder.js';
import { findRoute } from '../routing/lookup.js';
import type { FaultPolicy, ForwardAction, RedirectAction, RequestFacts, RouteConfig } from '../routing/types.js';
import { normalizeHost } from '../routing/host-index.js';
import { logWhenDone, newRequestRecord, type AccessLog, type RequestRecord } from '../telemetry/access-log.js';
import { peerOfRequest } from '../telemetry/workload.js';
import { applyHeaderRules, forwardedFor, requestIdOf } from './headers.js';
import { normalizePath } from './path-normalize.js';
import { forward, routedDestination, type ForwardContext } from './forward.js';
import { relay } from './relay.js';
import { LocalReplies, addFlag, sendLocalReply, type LocalReply } from './respond.js';
import { evaluateCors } from './cors.js';
import { decideFault, holdFor } from './fault.js';
import { admitRateLimited, type RateLimitContext } from './rate-limit-gate.js';
import type { UpstreamPools } from './upstream-pools.js';
import type { IdentityProvider } from '../pki/types.js';
import type { ConnectionDrain } from './drain.js';
import type { UpgradeTunnel } from './upgrade-exchange.js';
import { parseRequestTarget } from './request-target.js';
import { upgradeAllowed } from './upgrade-policy.js';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from './http-limits.js';
import type { WorkloadSecurityCache } from '../policy/workload-security.js';
import { principalOf } from '../pki/spiffe.js';
import { authenticateAndAuthorize } from './security-stage.js';

export interface HttpHandlerContext {
  readonly holder: SnapshotHolder;
  readonly pools: UpstreamPools;
  readonly accessLog: AccessLog;
  readonly random: () => number;
  /** The proxy's connections, which every listener accepts and serves HTTP through (graceful drain). */
  readonly drain: ConnectionDrain;
  /** The proxy's workload identity, for mTLS to endpoints in the mesh. */
  readonly identity?: IdentityProvider;
  /** RateLimitPolicy counters; without them no rate limit applies. */
  readonly rateLimits?: RateLimitContext;
  /** Header limits, timeouts and upgrade types of the listeners (http-limits.ts); Envoy's defaults without. */
  readonly limits?: HttpLimits;
  /**
   * The proxy's own workload (a gateway by its labels, a sidecar's app): with it, requests are
   * authenticated (RequestAuthentication) and authorized (AuthorizationPolicy) before routing acts.
   */
  readonly security?: WorkloadSecurityCache;
  /** Proxies in front that append to x-forwarded-for (Envoy's xff_num_trusted_hops): `remoteIpBlocks` reads past them. */
  readonly trustedProxies?: number;
  /** This proxy's peer metadata header value, sent to mesh peers (telemetry/workload.ts). */
  readonly peerMetadata?: string;
}

/** Which route config serves a request on this listener (plaintext: the port's `http.<port>`). */
export type RouteConfigSelector = (snapshot: Snapshot, req: IncomingMessage) => RouteConfig | undefined;

/** What the listener a request arrived on knows about it. */
export interface ListenerInfo {
  /** Gateway port number (route `match.port` compares against it). */
  readonly port: number;
  readonly scheme: 'http' | 'https';
  readonly select: RouteConfigSelector;
  /** x-forwarded-client-cert for the connection's verified client certificate, if any. */
  clientCert?(req: IncomingMessage): string | undefined;
  /** The URI SAN (SPIFFE ID) of the connection's verified client certificate, if any. */
  peerPrincipal?(req: IncomingMessage): string | undefined;
  /** True when the host would pick another TLS server on this port than the one the SNI chose: 421. */
  misdirected?(host: string, snapshot: Snapshot): boolean;
  /** httpsRedirect: the port the redirect names (none when undefined or 443). */
  httpsPort?(facts: RequestFacts, snapshot: Snapshot): number | undefined;
  /** ACME HTTP-01: the key authorization for a token, answered before routing. */
  acmeChallenge?(token: string): string | undefined;
  /** AuthorizationPolicy `ports` / destination.port (default: the port the connection came in on). */
  destinationPort?(req: IncomingMessage): number;
  /** When the port differs per request (a sidecar's outbound side: the port the app asked for). */
  requestPort?(req: IncomingMessage): number;
  /**
   * A sidecar's inbound side: the act stage hands every request that passed authorization to the
   * workload's own app (no route table), with the headers the app is given.
   */
  localApp?: LocalApp;
  /** A host no virtual host knows; without this hook it is 404 NR (a sidecar passes it through or answers 502). */
  unknownHost?(req: IncomingMessage, res: ServerResponse, facts: RequestFacts, record: RequestRecord, reply: (r: LocalReply) => void): void;
}

/** The app beside a sidecar, as the inbound listener's act stage reaches it. */
export interface LocalApp {
  /** Upstream pool key of the app (UpstreamPools.key). */
  readonly key: string;
  /** Envoy's cluster name for it (`inbound|<port>||`), for the access log. */
  readonly cluster: string;
  headers(req: IncomingMessage, facts: RequestFacts, requestId: string): Record<string, string | string[]>;
}

const ACME_PREFIX = '/.well-known/acme-challenge/';

export function requestFacts(req: IncomingMessage, port: number, scheme: string, path: string): RequestFacts {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const queryString = q >= 0 ? url.slice(q + 1) : '';
  const query = new Map<string, string>();
  if (queryString) {
    for (const [k, v] of new URLSearchParams(queryString)) if (!query.has(k)) query.set(k, v);
  }
  const authority = authorityOf(req);
  return { port, host: normalizeHost(authority), authority, path, queryString, query, method: req.method ?? 'GET', scheme, headers: req.headers };
}

export function rawPath(url: string): string {
  // Absolute-form request targets (`GET http://host/path`) carry the path after the authority.
  if (url.startsWith('http://') || url.startsWith('https://')) {
    const slash = url.indexOf('/', url.indexOf('//') + 2);
    url = slash < 0 ? '/' : url.slice(slash);
  }
  const q = url.indexOf('?');
  return q >= 0 ? url.slice(0, q) : url;
}

/** Host for HTTP/1, `:authority` for HTTP/2. */
export function authorityOf(req: IncomingMessage): string {
  return req.headers.host ?? (req.headers[':authority'] as string | undefined) ?? '';
}

/**
 * `tunnel` is set for an upgrade request (upgrade.ts): it takes every decision any request takes,
 * and only its upstream exchange is different.
 */
export function handleHttpRequest(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo, ctx: HttpHandlerContext, tunnel?: UpgradeTunnel): void {
  const { scheme, select } = listener;
  const port = listener.requestPort ? listener.requestPort(req) : listener.port;
  const socket = req.socket;
  const target = parseRequestTarget(req, res, ctx.limits);
  const requestId = requestIdOf(req.headers);
  const remoteAddress = socket.remoteAddress ?? '';
  // Delivered to the local app (a sidecar's inbound side), Istio reports it as the destination, with
  // the verified caller's workload.
  const record: RequestRecord = listener.localApp
    ? { ...newRequestRecord(req, requestId, authorityOf(req), { address: remoteAddress, port: socket.remotePort ?? 0 }), upstreamCluster: listener.localApp.cluster, reporter: 'destination' }
    : newRequestRecord(req, requestId, authorityOf(req), { address: remoteAddress, port: socket.remotePort ?? 0 }, forwardedFor(req.headers, remoteAddress));
  if (listener.localApp) {
    const downstreamPeer = peerOfRequest(req.headers, listener.peerPrincipal?.(req));
    if (downstreamPeer) record.downstreamPeer = downstreamPeer;
  }
  logWhenDone(req, res, record, ctx.accessLog, tunnel);
  ctx.accessLog.startSpan?.(req, record);
  const reply = (r: LocalReply): void => {
    record.flags = addFlag(record.flags, r.flag);
    record.details = r.details;
    record.errorCode = r.code;
    sendLocalReply(res, r, { 'x-request-id': requestId });
  };

  if (!target.ok) return reply(target.reply);
  if (tunnel && !upgradeAllowed(tunnel.protocol, ctx.limits ?? DEFAULT_HTTP_LIMITS)) return reply(LocalReplies.upgradeRefused);
  const path = normalizePath(rawPath(req.url ?? '/'));
  if (path === undefined) return reply(LocalReplies.badRequest);
  if (listener.acmeChallenge && path.startsWith(ACME_PREFIX)) {
    const answer = listener.acmeChallenge(path.slice(ACME_PREFIX.length));
    if (answer !== undefined) {
      record.details = 'acme_challenge';
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(answer) });
      res.end(answer);
      return;
    }
  }
  const snapshot = ctx.holder.current();
  const config = snapshot && select(snapshot, req);
  const facts = requestFacts(req, port, scheme, path);
  if (snapshot && listener.misdirected?.(facts.host, snapshot)) return reply(LocalReplies.misdirected);
  const ex: Exchange = { req, res, listener, ctx, record, reply, requestId, remoteAddress, facts, snapshot, config, ...(tunnel ? { tunnel } : {}) };
  // authenticate → authorize, for listeners that serve a workload of their own (ctx.security); before
  // routing acts, as Envoy's jwt_authn and RBAC filters run before its router.
  const security = ctx.security && snapshot ? ctx.security.for(snapshot) : undefined;
  // Without a configuration there is no policy to check the request against: closed, not open.
  if (ctx.security && !security) return reply(LocalReplies.noHealthyUpstream);
  if (!security) return routeAndAct(ex);
  const principal = listener.peerPrincipal?.(req);
  const outcome = authenticateAndAuthorize(security, req, facts, {
    address: remoteAddress,
    ...(principal ? { principal: principalOf(principal) } : {}),
    destinationPort: listener.destinationPort?.(req) ?? socket.localPort ?? port,
    ...(socket.localAddress ? { destinationIp: socket.localAddress } : {}),
  }, ctx.trustedProxies ?? 0);
  if (!(outcome instanceof Promise)) return outcome ? refuse(ex, outcome) : routeAndAct(ex);
  outcome.then(
    (r) => {
      if (res.destroyed) return; // the client gave up while the token was checked
      if (r) refuse(ex, r);
      else routeAndAct(ex);
    },
    (err: unknown) => {
      record.details = `internal_error:${(err as Error).message}`;
      reply(LocalReplies.upstreamReset);
    },
  );
}

/** One request between its stages: what the listener and the parse stage established. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly listener: ListenerInfo;
  readonly ctx: HttpHandlerContext;
  readonly tunnel?: UpgradeTunnel;
  readonly record: RequestRecord;
  readonly reply: (r: LocalReply) => void;
  readonly requestId: string;
  readonly remoteAddress: string;
  readonly facts: RequestFacts;
  readonly snapshot: Snapshot | undefined;
  readonly config: RouteConfig | undefined;
}

/**
 * A request authn/authz refused: Envoy has resolved its route (and cluster) before these filters run,
 * so the reply reports the routed service (Istio's metrics, the access log's upstream_cluster).
 */
function refuse(ex: Exchange, r: LocalReply): void {
  const route = ex.config ? findRoute(ex.config, ex.facts).route : undefined;
  if (route?.action.kind === 'forward') routedDestination(route.action, ex.ctx.random, ex.record);
  ex.reply(r);
}

/** select's outcome acted on: not found, TLS redirect, CORS, rate limit, fault, then the route's action. */
function routeAndAct(ex: Exchange): void {
  const { req, res, listener, ctx, tunnel, record, reply, requestId, remoteAddress, facts, snapshot, config } = ex;
  const { scheme } = listener;
  // act: local app. What the policy checked is what the app gets: the normalized path, the query as it came.
  if (listener.localApp) return relay(ctx.pools, listener.localApp.key, req, res, facts, listener.localApp.headers(req, facts, requestId), record, reply);
  if (!config) return listener.unknownHost && snapshot ? listener.unknownHost(req, res, facts, record, reply) : reply(LocalReplies.noRoute);
  const { virtualHost, route } = findRoute(config, facts);
  if (!virtualHost && listener.unknownHost) return listener.unknownHost(req, res, facts, record, reply);
  if (virtualHost?.requireTls && scheme === 'http' && snapshot) {
    const httpsPort = listener.httpsPort?.(facts, snapshot);
    return sendRedirect(res, 301, `https://${facts.host}${httpsPort && httpsPort !== 443 ? `:${httpsPort}` : ''}${req.url ?? '/'}`, record);
  }
  if (!route || !virtualHost) return reply(LocalReplies.noRoute);
  if (route.name) record.routeName = route.name;
  const action = route.action;
  // The weighted pick is made with the route, before rate limits and faults, so their replies name it.
  const destination = action.kind === 'forward' ? routedDestination(action, ctx.random, record) : undefined;
  let corsHeaders: Record<string, string> | undefined;
  if (action.cors) {
    const cors = evaluateCors(action.cors, facts.method, req.headers);
    if (cors && cors.kind !== 'actual') {
      record.details = 'cors_response';
      res.writeHead(200, { ...(cors.kind === 'preflight' ? cors.headers : {}), server: 'istio-envoy', 'content-length': '0' });
      res.end();
      return;
    }
    if (cors) {
      // Set before any answer is written, so local replies, redirects and direct responses carry them too.
      corsHeaders = cors.headers;
      for (const [name, value] of Object.entries(corsHeaders)) res.setHeader(name, value);
    }
  }
  const act = (): void => {
    if (action.kind === 'redirect') return sendRedirect(res, action.code, redirectLocation(action, facts, req.url ?? '/'), record);
    if (action.kind === 'direct') {
      const headers: Record<string, string | string[]> = { server: 'istio-envoy', 'content-length': String(action.body?.length ?? 0) };
      if (action.body) headers['content-type'] = 'text/plain';
      applyHeaderRules(headers, action.responseHeaders);
      record.details = 'direct_response';
      res.writeHead(action.status, headers);
      res.end(action.body);
      return;
    }
    const xfcc = listener.clientCert?.(req);
    const fctx: ForwardContext = {
      pools: ctx.pools,
      random: ctx.random,
      remoteAddress,
      requestId,
      ...(xfcc ? { clientCert: xfcc } : {}),
      ...(ctx.identity ? { identity: ctx.identity } : {}),
      ...(corsHeaders ? { responseHeaders: corsHeaders } : {}),
      ...(tunnel ? { upgrade: tunnel } : {}),
      ...(ctx.peerMetadata ? { peerMetadata: ctx.peerMetadata } : {}),
      ...(destination ? { destination } : {}),
    };
    (action.fault ? faultThenForward(req, res, facts, action, action.fault, fctx, record) : forward(req, res, facts, action, fctx, record)).then(
      (failure) => {
        if (failure) reply(failure);
      },
      (err: unknown) => {
        // A bug, not an expected failure: answer like Envoy would for an internal error and keep serving.
        record.details = `internal_error:${(err as Error).message}`;
        reply(LocalReplies.upstreamReset);
      },
    );
  };
  // Rate limits count the request before anything acts on it; with none on this route, `act` runs at once.
  admitRateLimited(ctx.rateLimits, snapshot?.rateLimits, virtualHost, route, { facts, peer: remoteAddress, principal: () => listener.peerPrincipal?.(req) }, res, reply, act);
}

/** The fault filter runs before the router: a delay holds the request (DI), an abort answers it (FI). */
async function faultThenForward(req: IncomingMessage, res: ServerResponse, facts: RequestFacts, action: ForwardAction, policy: FaultPolicy, fctx: ForwardContext, record: RequestRecord): Promise<LocalReply | undefined> {
  const fault = decideFault(policy, fctx.random, req.headers);
  if (fault) {
    if (fault.delayMs !== undefined) {
      record.flags = addFlag(record.flags, 'DI');
      if (!(await holdFor(fault.delayMs, res))) return undefined;
    }
    if (fault.abort) return fault.abort;
  }
  return forward(req, res, facts, action, fctx, record);
}

function sendRedirect(res: ServerResponse, code: number, location: string, record: RequestRecord): void {
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
