// Finds the route for a request in a route config: the virtual host by Host, then the first route
// whose conditions all hold. `explainLookup` walks the same table and records why each earlier
// candidate did not match.

import type { CompiledRoute, RequestFacts, RouteConfig, VirtualHost } from './types.js';

export interface LookupHit {
  readonly virtualHost: VirtualHost;
  readonly route: CompiledRoute;
}

export function findRoute(config: RouteConfig, req: RequestFacts): { virtualHost?: VirtualHost; route?: CompiledRoute } {
  const virtualHost = config.findVirtualHost(req.host);
  if (!virtualHost) return {};
  const routes = virtualHost.routes;
  outer: for (let i = 0; i < routes.length; i++) {
    const route = routes[i]!;
    const conds = route.conditions;
    for (let j = 0; j < conds.length; j++) if (!conds[j]!.test(req)) continue outer;
    return { virtualHost, route };
  }
  return { virtualHost };
}

export interface Miss {
  readonly route: CompiledRoute;
  /** The first condition that failed: what it wanted and what the request had. */
  readonly failed: string;
}

export interface Explanation {
  readonly virtualHost?: VirtualHost;
  readonly misses: readonly Miss[];
  readonly route?: CompiledRoute;
}

export function explainLookup(config: RouteConfig, req: RequestFacts): Explanation {
  const virtualHost = config.findVirtualHost(req.host);
  if (!virtualHost) return { misses: [] };
  const misses: Miss[] = [];
  for (const route of virtualHost.routes) {
    const bad = route.conditions.find((c) => !c.test(req));
    if (!bad) return { virtualHost, misses, route };
    misses.push({ route, failed: `${bad.what}, got ${bad.actual(req)}` });
  }
  return { virtualHost, misses };
}
