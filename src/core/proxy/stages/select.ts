// The select stage of the request pipeline: the listener's route config, then the virtual host and
// route in it (routing/lookup.ts, a compiled table: nothing is sorted or parsed per request). A host
// that the SNI rules give to another TLS server of the port is 421 here. Select only looks up: what a
// miss means — 404 NR, a host the mesh does not know, an httpsRedirect — is answered by `routed`,
// which runs after authorize, so that a policy decides before anything about the routes is said (as
// Envoy's RBAC filter runs before its router).

import { findRoute } from '../../routing/lookup.js';
import { outboundTrafficModeOf, PASSTHROUGH_CLUSTER } from '../../policy/outbound-traffic-policy.js';
import { hopByHopFree } from '../headers.js';
import { relay } from '../relay.js';
import { connectTimeoutFor, limitsWithConnectTimeout } from '../../policy/connection-limits.js';
import { LocalReplies } from '../respond.js';
import { UpstreamPools } from '../upstream-pools.js';
import { routedDestination } from '../destination-pick.js';
import type { DestinationTarget, RouteConfig, VirtualHost } from '../../routing/types.js';
import { authenticate } from './authenticate.js';
import type { Exchange, StageResult } from './exchange.js';
import { DONE, factsOf } from './exchange.js';
import { sendRedirect } from './act.js';
import { isConnect } from './parse.js';

export function select(ex: Exchange): StageResult | Promise<StageResult> {
  const { snapshot, listener, req } = ex;
  const facts = factsOf(ex);
  const config = snapshot && listener.select(snapshot, req);
  if (snapshot && listener.misdirected?.(facts.host, snapshot)) return LocalReplies.misdirected;
  if (!config) return undefined;
  ex.config = config;
  // No route matches CONNECT: `routed` answers it 404 once authorization has had its say.
  if (isConnect(req)) return undefined;
  const { virtualHost, route } = findRoute(config, facts);
  if (virtualHost) ex.virtualHost = virtualHost;
  if (virtualHost && routesByClaims(virtualHost)) return selectByClaims(ex, config);
  if (route) ex.route = route;
  return undefined;
}

/**
 * A virtual host with routes on JWT claims (gateways only): the token is verified first, as Envoy's
 * jwt_authn filter runs before its router, and the route is chosen with the claims it carries. A bad
 * token is refused here (401) before any route is chosen; the authenticate stage then has nothing left to do.
 */
function selectByClaims(ex: Exchange, config: RouteConfig): StageResult | Promise<StageResult> {
  const chosen = (result: StageResult): StageResult => {
    if (result !== undefined) return result;
    const facts = { ...factsOf(ex), claims: ex.auth?.claims ?? NO_CLAIMS };
    ex.facts = facts;
    const { route } = findRoute(config, facts);
    if (route) ex.route = route;
    return undefined;
  };
  const authn = authenticate(ex);
  return authn instanceof Promise ? authn.then(chosen) : chosen(authn);
}

const NO_CLAIMS: Readonly<Record<string, unknown>> = Object.freeze({});
const claimHosts = new WeakMap<VirtualHost, boolean>();

/** Whether any route of the virtual host has a condition on JWT claims (worked out once per compiled host). */
function routesByClaims(vh: VirtualHost): boolean {
  let yes = claimHosts.get(vh);
  if (yes === undefined) {
    yes = vh.routes.some((r) => r.conditions.some((c) => c.claim === true));
    claimHosts.set(vh, yes);
  }
  return yes;
}

/** What select found, answered: no route (404 NR), an unknown host (the listener's policy), httpsRedirect (301). */
export function routed(ex: Exchange): StageResult {
  const { listener, snapshot, config, virtualHost, route, req, res, record } = ex;
  const facts = factsOf(ex);
  // Never passed through to an unknown host either: Envoy's router matches no route for it.
  if (isConnect(req)) return LocalReplies.noRoute;
  if (!config) return listener.unknownHost && snapshot ? unknownHost(ex) : LocalReplies.noRoute;
  if (!virtualHost && listener.unknownHost) return unknownHost(ex);
  if (virtualHost?.requireTls && listener.scheme === 'http' && snapshot) {
    const httpsPort = listener.httpsPort?.(facts, snapshot);
    sendRedirect(res, 301, `https://${facts.host}${httpsPort && httpsPort !== 443 ? `:${httpsPort}` : ''}${req.url ?? '/'}`, record);
    return DONE;
  }
  if (!route || !virtualHost) return LocalReplies.noRoute;
  if (route.name) record.routeName = route.name;
  // The weighted pick is made with the route, before rate limits and faults, so their replies name it.
  routedDestinationOf(ex);
  return undefined;
}

/**
 * The route's destination, picked once: Envoy resolves a route's (weighted) cluster before any
 * filter runs, so a local reply before the upstream (401, 403, 429, a fault) reports the routed
 * service, as Istio's metrics do. authenticate and authorize call it when they refuse.
 */
export function routedDestinationOf(ex: Exchange): DestinationTarget | undefined {
  if (ex.destination === undefined && ex.route?.action.kind === 'forward') {
    const picked = routedDestination(ex.route.action, ex.ctx.random, ex.record);
    if (picked) ex.destination = picked;
  }
  return ex.destination;
}

/**
 * A host no virtual host knows, at a sidecar's outbound side (outboundTrafficPolicy, from its Sidecar
 * resource, the mesh config or its flag: policy/outbound-traffic-policy.ts): REGISTRY_ONLY answers
 * 502; ALLOW_ANY passes the request through (PassthroughCluster): under capture to the address the
 * app dialled, as Envoy's original-destination passthrough does (a Host naming a pod's IP, or any
 * name, never decides where it goes); through the proxy port to the host it names.
 */
function unknownHost(ex: Exchange): StageResult {
  const { listener, req, res, record, ctx } = ex;
  const facts = factsOf(ex);
  if (!ex.snapshot || outboundTrafficModeOf(ex.snapshot) === 'REGISTRY_ONLY') {
    record.routeName = 'block_all';
    return LocalReplies.registryOnly;
  }
  record.routeName = 'allow_any';
  record.upstreamCluster = PASSTHROUGH_CLUSTER;
  const headers = hopByHopFree(req.headers);
  headers.host = facts.authority;
  const dialled = listener.dialled?.(req);
  const key = dialled ? UpstreamPools.key(dialled.address, dialled.port) : UpstreamPools.key(facts.host, facts.port);
  // The PassthroughCluster speaks what the client spoke (an h2c client's request stays HTTP/2).
  relay(ctx.pools, { key, limits: limitsWithConnectTimeout(connectTimeoutFor(ex.snapshot)) }, 'downstream', req, res, facts, headers, record, ex.reply, ex.tunnel);
  return DONE;
}
