// Routes attached to Services (the Gateway API's mesh support, GAMMA) → the mesh-bound
// VirtualServices sidecars already compile (routing/compile-mesh.ts), as Istio translates them: one
// per Service host and route namespace, `gateways: [mesh]`, every rule of every route attached to that
// Service from that namespace in Gateway API precedence, a parentRef `port` written as a match port.
// A route in the Service's own namespace (the producer's) is seen by every namespace; a route in
// another namespace (a consumer's) only by its own namespace (`exportTo: ['.']`), where it comes
// before the producer's (compile-mesh.ts orders Gateway API routes of the proxy's namespace first).

import type { VirtualServiceSpec } from '../model/istio.js';
import type { Resource } from '../model/resource.js';
import { MESH_GATEWAY } from '../routing/gateway-binding.js';
import type { ServiceAttachment } from './attach.js';
import type { HttpEntry } from './http-rules.js';
import { compareRoutes, type RankedEntry } from './precedence.js';
import { recordSources } from './route-sources.js';
import { entriesOrigin, rankedHttp, synthetic } from './virtual-services.js';

interface MeshEntry extends RankedEntry {
  readonly port?: number;
}

/** Rules attached to one Service host from one namespace. */
interface MeshGroup {
  readonly namespace: string;
  readonly host: string;
  readonly consumer: boolean;
  readonly entries: MeshEntry[];
}

export class MeshRoutes {
  readonly #groups = new Map<string, MeshGroup>();

  /** Adds one route's entries (per rule, as ruleEntries gives them) for each Service it is attached to. */
  add(route: Resource, attachments: readonly ServiceAttachment[], entries: readonly HttpEntry[]): void {
    const ns = route.metadata.namespace;
    // Two parentRefs to the same Service and port add the rules once.
    const seen = new Set<string>();
    for (const att of attachments) {
      const once = `${att.host}|${att.port ?? '*'}`;
      if (seen.has(once)) continue;
      seen.add(once);
      const key = `${ns}|${att.host}`;
      const group = this.#groups.get(key) ?? { namespace: ns, host: att.host, consumer: ns !== att.serviceNamespace, entries: [] };
      this.#groups.set(key, group);
      for (const entry of entries) group.entries.push({ route, entry, ...(att.port !== undefined ? { port: att.port } : {}) });
    }
  }

  virtualServices(): Resource<VirtualServiceSpec>[] {
    return [...this.#groups.values()].map(groupVirtualService);
  }
}

function groupVirtualService(g: MeshGroup): Resource<VirtualServiceSpec> {
  const { http, sources } = rankedHttp(g.entries, (e) => (e as MeshEntry).port);
  // The VirtualService stands in the oldest route's place among VirtualServices for the same host.
  const oldest = [...new Set(g.entries.map((e) => e.route))].sort(compareRoutes)[0]!;
  const spec: VirtualServiceSpec = { hosts: [g.host], gateways: [MESH_GATEWAY], http, ...(g.consumer ? { exportTo: ['.'] } : {}) };
  const vs = synthetic(oldest, `mesh:${g.host}`, spec, entriesOrigin(oldest, oldest.origin.order, sources));
  recordSources(vs, sources);
  return vs;
}
