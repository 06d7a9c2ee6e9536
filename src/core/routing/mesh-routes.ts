// The http routes one mesh-bound VirtualService gives a sidecar on one service port (docs/reference/routing.md):
// matches are compiled as for gateways, but `port`, `gateways`, `sourceLabels` and `sourceNamespace`
// are settled here, against the port and the proxy, and never looked at per request. Also the
// registry view a sidecar resolves destination ports with.

import type { HTTPMatchRequest, Labels, VirtualServiceSpec } from '../model/istio.js';
import type { Resource } from '../model/resource.js';
import type { Cluster } from '../policy/types.js';
import { selectorMatches } from '../registry/labels.js';
import type { Registry, Service } from '../registry/types.js';
import { translatedSource } from '../gateway-api/route-sources.js';
import { compileAction } from './actions.js';
import { REDIRECT_CODES, routeName } from './compile.js';
import { MESH_GATEWAY } from './gateway-binding.js';
import { compileMatch, isCatchAll } from './match.js';
import type { CompiledRoute } from './types.js';

export interface MeshProxy {
  readonly labels: Labels;
  readonly namespace: string;
}

export interface MeshRouteContext {
  /** The registry as seen on this port (registryAtPort). */
  readonly registry: Registry;
  readonly domain: string;
  cluster(host: string, port: number, subset: string): Cluster | undefined;
}

/**
 * Istio's sourceMatchHTTP: a match naming `gateways` applies to sidecars only if it names `mesh` (and
 * its source fields are then not looked at); otherwise every sourceLabels label must be on the proxy
 * and sourceNamespace, when set, must be the proxy's namespace.
 */
export function sourceMatches(m: HTTPMatchRequest | undefined, proxy: MeshProxy): boolean {
  if (!m) return true;
  if (m.gateways && m.gateways.length > 0) return m.gateways.includes(MESH_GATEWAY);
  if (!selectorMatches(m.sourceLabels, proxy.labels)) return false;
  return !m.sourceNamespace || m.sourceNamespace === proxy.namespace;
}

/** One compiled route per (http route × match) that exists for this proxy on `port`; none after a catch-all. */
export function compileMeshHttpRoutes(vs: Resource<VirtualServiceSpec>, port: number, proxy: MeshProxy, ctx: MeshRouteContext): CompiledRoute[] {
  const out: CompiledRoute[] = [];
  const ns = vs.metadata.namespace;
  const http = vs.spec.http ?? [];
  for (let i = 0; i < http.length; i++) {
    const route = http[i]!;
    if (route.redirect?.redirectCode !== undefined && !REDIRECT_CODES.has(route.redirect.redirectCode)) continue;
    const matches: Array<HTTPMatchRequest | undefined> = route.match && route.match.length > 0 ? [...route.match] : [undefined];
    let sawCatchAll = false;
    for (let k = 0; k < matches.length && !sawCatchAll; k++) {
      const m = matches[k];
      // `port: 0` means any port, as in Istio.
      if (m?.port && m.port !== port) continue;
      if (!sourceMatches(m, proxy)) continue;
      const catchAll = isCatchAll(m);
      sawCatchAll = catchAll;
      out.push({
        name: routeName(route, m),
        source: translatedSource(vs, i) ?? { virtualService: `${ns}/${vs.metadata.name}`, file: vs.origin.file, line: vs.origin.lineOf(['spec', 'http', i]), httpIndex: i, matchIndex: m ? k : -1 },
        conditions: m ? compileMatch(m) : [],
        catchAll,
        action: compileAction(route, m, { namespace: ns, listenerPort: port, registry: ctx.registry, domain: ctx.domain, cluster: ctx.cluster }),
      });
    }
    if (sawCatchAll) break;
  }
  return out;
}

/**
 * The registry a sidecar's route config for `port` resolves destinations in: only the visible services
 * that have this port, each cut down to it. So a destination without `port` always lands on the
 * listener port (a service's "only port" is this one or the service is not there), which is how Istio
 * builds sidecar routes; a gateway instead uses a single-port service's own port.
 */
export function registryAtPort(services: ReadonlyMap<string, Service>, full: Registry, port: number): Registry {
  const cut = new Map<string, Service>();
  for (const [host, s] of services) {
    const p = s.ports.find((x) => x.number === port);
    if (p) cut.set(host, Object.freeze({ ...s, ports: [p] }));
  }
  const lookup = (hostname: string): Service | undefined => {
    const found = full.lookup(hostname);
    return found ? cut.get(found.hostname) : undefined;
  };
  return Object.freeze({ services: cut, lookup });
}
