// A route's backendRefs → VirtualService destinations. A reference must be to a core Service, in the
// route's namespace or granted by a ReferenceGrant (RefNotPermitted), or to Istio's `Hostname` (group
// networking.istio.io: a ServiceEntry host by name, as Istio's egress tasks use it); other kinds are
// InvalidKind. The Service or host and its port must exist (BackendNotFound). What fails is reported on the route's
// parents as ResolvedRefs False; requests that would have gone to it get a 500 (see http-rules.ts).

import { GATEWAY_API_GROUP, type BackendRef, type RouteKind } from '../model/gateway-api.js';
import type { Registry } from '../registry/types.js';
import type { ReferenceGrants } from './reference-grants.js';

export interface BackendContext {
  readonly routeKind: RouteKind;
  readonly routeNamespace: string;
  readonly registry: Registry;
  /**
   * The grants a cross-namespace backendRef needs; undefined for a route attached to a Service (mesh):
   * there, as in Istio and the Gateway API's MeshConsumerRoute conformance test, none is needed, since
   * the route's clients could call the Service directly.
   */
  readonly grants: ReferenceGrants | undefined;
  readonly domain: string;
}

export type ResolvedBackend =
  | { readonly ok: true; readonly host: string; readonly port: number }
  | { readonly ok: false; readonly reason: 'RefNotPermitted' | 'InvalidKind' | 'BackendNotFound'; readonly message: string };

export function resolveBackend(ref: BackendRef, ctx: BackendContext): ResolvedBackend {
  const group = ref.group ?? '';
  const kind = ref.kind ?? 'Service';
  const ns = ref.namespace ?? ctx.routeNamespace;
  const shown = `${kind} ${ns}/${ref.name}`;
  if (group === ISTIO_NETWORKING_GROUP && kind === 'Hostname') return hostnameBackend(ref, ctx);
  if (group !== '' || kind !== 'Service') return { ok: false, reason: 'InvalidKind', message: `backend ${group ? `${group}/` : ''}${kind} ${ref.name} is not a Service` };
  const granted = ctx.grants === undefined || ctx.grants.allows({
    fromGroup: GATEWAY_API_GROUP, fromKind: ctx.routeKind, fromNamespace: ctx.routeNamespace, toGroup: '', toKind: 'Service', toNamespace: ns, toName: ref.name,
  });
  if (!granted) return { ok: false, reason: 'RefNotPermitted', message: `${shown} is in another namespace and no ReferenceGrant there allows ${ctx.routeKind}s from ${ctx.routeNamespace}` };
  const host = `${ref.name}.${ns}.svc.${ctx.domain}`.toLowerCase();
  const service = ctx.registry.lookup(host);
  if (!service || service.kind !== 'Service') return { ok: false, reason: 'BackendNotFound', message: `${shown} does not exist` };
  if (ref.port === undefined) return { ok: false, reason: 'BackendNotFound', message: `${shown}: backendRef has no port` };
  if (!service.ports.some((p) => p.number === ref.port)) return { ok: false, reason: 'BackendNotFound', message: `${shown} has no port ${ref.port}` };
  return { ok: true, host, port: ref.port };
}

const ISTIO_NETWORKING_GROUP = 'networking.istio.io';

/** Istio's Hostname backend: a host of the registry (a ServiceEntry's), with no namespace to grant. */
function hostnameBackend(ref: BackendRef, ctx: BackendContext): ResolvedBackend {
  const host = ref.name.toLowerCase();
  const shown = `Hostname ${ref.name}`;
  const service = ctx.registry.lookup(host);
  if (!service) return { ok: false, reason: 'BackendNotFound', message: `${shown} is no host of a ServiceEntry or Service` };
  if (ref.port === undefined) return { ok: false, reason: 'BackendNotFound', message: `${shown}: backendRef has no port` };
  if (!service.ports.some((p) => p.number === ref.port)) return { ok: false, reason: 'BackendNotFound', message: `${shown} has no port ${ref.port}` };
  return { ok: true, host, port: ref.port };
}
