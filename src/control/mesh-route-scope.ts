// Which routes attached to Services or Istio ServiceEntries (the Gateway API's mesh support) a
// sidecar is sent: those of the Services (ServiceEntry hosts) it imports that apply to its namespace, a producer's route (in the Service's own
// namespace) for every namespace and a consumer's route only for its own, and the hosts their
// backends are, so that those Services reach it too. Reads the raw spec: validation happens where
// the sidecar builds its snapshot.

import { isRecord } from '../core/config/load.js';
import type { Resource } from '../core/model/resource.js';

export interface MeshRouteScope {
  readonly routes: Resource[];
  /** FQDNs of the Services their backendRefs and mirrors name. */
  readonly backendHosts: string[];
}

/** `namespace/name` of a ServiceEntry → its hosts. */
export type ServiceEntryHosts = (namespace: string, name: string) => readonly string[];

export function meshRoutesFor(routes: readonly Resource[], proxyNamespace: string, imported: (namespace: string, host: string) => boolean, domain: string, entryHosts: ServiceEntryHosts = () => []): MeshRouteScope {
  const out: MeshRouteScope = { routes: [], backendHosts: [] };
  for (const r of routes) {
    const spec = isRecord(r.spec) ? r.spec : {};
    const ns = r.metadata.namespace;
    const applies = list(spec.parentRefs).some((p) => {
      if (typeof p.name !== 'string') return false;
      const serviceNs = typeof p.namespace === 'string' ? p.namespace : ns;
      if (ns !== serviceNs && ns !== proxyNamespace) return false;
      if (p.group === ISTIO_NETWORKING_GROUP && p.kind === 'ServiceEntry') return entryHosts(serviceNs, p.name).some((h) => imported(serviceNs, h));
      return p.group === '' && p.kind === 'Service' && imported(serviceNs, `${p.name}.${serviceNs}.svc.${domain}`);
    });
    if (!applies) continue;
    out.routes.push(r);
    for (const rule of list(spec.rules)) {
      const refs = [...list(rule.backendRefs), ...list(rule.filters).map((f) => (isRecord(f.requestMirror) ? f.requestMirror.backendRef : undefined))];
      for (const b of refs) {
        if (!isRecord(b) || typeof b.name !== 'string') continue;
        if (b.group === ISTIO_NETWORKING_GROUP && b.kind === 'Hostname') out.backendHosts.push(b.name.toLowerCase());
        if ((b.group ?? '') !== '' || (b.kind ?? 'Service') !== 'Service') continue;
        out.backendHosts.push(`${b.name}.${typeof b.namespace === 'string' ? b.namespace : ns}.svc.${domain}`);
      }
    }
  }
  return out;
}

const ISTIO_NETWORKING_GROUP = 'networking.istio.io';

function list(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? v.filter(isRecord) : [];
}
