// Which listeners a route attaches to, and as which host names: its parentRefs (Gateway, optional
// sectionName and port), each listener's allowedRoutes (namespaces Same/All/Selector, kinds), and
// the intersection of the listener's hostname with the route's hostnames. A parent where nothing
// attaches is reported (NoMatchingParent, NotAllowedByListeners, NoMatchingListenerHostname).
// A parentRef to a core Service (`group: ""`, `kind: Service`, the Gateway API's mesh support) attaches
// the route to that Service's mesh traffic instead (attachToServices), for sidecars; so does one to
// an Istio ServiceEntry (`group: networking.istio.io`), for each of its hosts, as Istio's egress tasks
// write it.

import { GATEWAY_API_GROUP, type LabelSelector, type ParentReference, type RouteKind } from '../model/gateway-api.js';
import type { Resource } from '../model/resource.js';
import { hostIntersection } from '../registry/hostname.js';
import type { Registry, Service } from '../registry/types.js';
import { condition, type RouteParentStatus } from './conditions.js';
import type { ServedListener } from './listeners.js';

export interface Attachment {
  readonly listener: ServedListener;
  /** Index of the parentRef that attached it. */
  readonly parentIndex: number;
  /** Where listener and route hostnames meet, lower-case; `*` for a listener and route without hostnames. */
  readonly hostnames: readonly string[];
}

interface RouteLike {
  readonly parentRefs?: readonly ParentReference[];
  readonly hostnames?: readonly string[];
}

/** A route attached to a Service: it applies to mesh traffic whose destination is that Service. */
export interface ServiceAttachment {
  /** The Service's FQDN, lower-case. */
  readonly host: string;
  readonly serviceNamespace: string;
  /** The parentRef's port (or the port its sectionName names); undefined: every port of the Service. */
  readonly port?: number;
  readonly parentIndex: number;
}

/** Namespace name → labels, for `from: Selector`. */
export type NamespaceLabels = ReadonlyMap<string, Readonly<Record<string, string>>>;

export function attachRoute(
  route: Resource<RouteLike>,
  kind: RouteKind,
  listeners: readonly ServedListener[],
  namespaces: NamespaceLabels,
): { attachments: Attachment[]; parents: RouteParentStatus[] } {
  const attachments: Attachment[] = [];
  const parents: RouteParentStatus[] = [];
  const ns = route.metadata.namespace;
  const routeHosts = (route.spec.hostnames ?? []).map((h) => h.toLowerCase());
  (route.spec.parentRefs ?? []).forEach((p, index) => {
    if ((p.group ?? GATEWAY_API_GROUP) !== GATEWAY_API_GROUP || (p.kind ?? 'Gateway') !== 'Gateway') return;
    const key = `${p.namespace ?? ns}/${p.name}`;
    const ofGateway = listeners.filter((l) => l.gatewayKey === key);
    // Not a Gateway this proxy serves: its own controller reports on it.
    if (ofGateway.length === 0) return;
    const status: RouteParentStatus = { parentRef: p, index, conditions: [] };
    parents.push(status);
    const selected = ofGateway.filter((l) => (p.sectionName === undefined || l.listener.name === p.sectionName) && (p.port === undefined || l.listener.port === p.port));
    if (selected.length === 0) {
      status.conditions.push(condition('Accepted', false, 'NoMatchingParent', `Gateway ${key} has no listener${p.sectionName ? ` named ${p.sectionName}` : ''}${p.port ? ` on port ${p.port}` : ''}`));
      return;
    }
    let allowedSomewhere = false;
    let found = false;
    for (const l of selected) {
      if (!l.istioGateway) continue;
      if (!l.kinds.has(kind) || !namespaceAllowed(l, ns, namespaces)) continue;
      allowedSomewhere = true;
      const hostnames = kind === 'TCPRoute' ? [l.hostname] : hostIntersection([l.hostname], routeHosts.length > 0 ? routeHosts : ['*']);
      if (hostnames.length === 0) continue;
      found = true;
      attachments.push({ listener: l, parentIndex: index, hostnames });
    }
    if (found) status.conditions.push(condition('Accepted', true, 'Accepted'));
    else if (!allowedSomewhere) {
      const programmed = selected.some((l) => l.istioGateway);
      status.conditions.push(
        programmed
          ? condition('Accepted', false, 'NotAllowedByListeners', `the listeners' allowedRoutes admit no ${kind} from namespace ${ns}`)
          : condition('Accepted', false, 'NoMatchingParent', 'the selected listeners are not served (see the Gateway status)'),
      );
    } else {
      status.conditions.push(condition('Accepted', false, 'NoMatchingListenerHostname', `no hostname of the route [${routeHosts.join(', ')}] meets a listener hostname`));
    }
  });
  // attachedRoutes counts a route once per listener, however many parentRefs lead to it.
  for (const l of new Set(attachments.map((a) => a.listener))) l.status.attachedRoutes++;
  return { attachments, parents };
}

/** True for a parentRef to a core Service (`group: ""`, `kind: Service`): the Gateway API's mesh support. */
export function isServiceParent(p: ParentReference): boolean {
  return p.group === '' && p.kind === 'Service';
}

/** True for a parentRef to an Istio ServiceEntry, which Istio attaches like a Service, one host each. */
export function isServiceEntryParent(p: ParentReference): boolean {
  return p.group === ISTIO_NETWORKING_GROUP && p.kind === 'ServiceEntry';
}

const ISTIO_NETWORKING_GROUP = 'networking.istio.io';

/** The registry's services a Service or ServiceEntry parentRef names, and how to name it in a condition. */
function parentServices(p: ParentReference, ns: string, registry: Registry, domain: string): { shown: string; services: Service[] } {
  if (isServiceEntryParent(p)) {
    const source = `ServiceEntry ${ns}/${p.name}`;
    return { shown: source, services: [...registry.services.values()].filter((s) => s.kind === 'ServiceEntry' && s.sources.includes(source)) };
  }
  const host = `${p.name}.${ns}.svc.${domain}`.toLowerCase();
  const service = registry.lookup(host);
  return { shown: `Service ${ns}/${p.name}`, services: service && service.kind === 'Service' && service.hostname === host ? [service] : [] };
}

/**
 * The Services a route is attached to through its `group: "", kind: Service` parentRefs (GAMMA). A
 * route in the Service's namespace is its producer's and applies to every client; a route in another
 * namespace is a consumer's, for the clients of that namespace only (the caller scopes it). Every
 * route kind meshgate serves attaches, as in Istio; a Service or port that does not exist is NoMatchingParent.
 */
export function attachToServices(
  route: Resource<RouteLike>,
  kind: RouteKind,
  registry: Registry,
  domain: string,
): { attachments: ServiceAttachment[]; parents: RouteParentStatus[] } {
  const attachments: ServiceAttachment[] = [];
  const parents: RouteParentStatus[] = [];
  (route.spec.parentRefs ?? []).forEach((p, index) => {
    if (!isServiceParent(p) && !isServiceEntryParent(p)) return;
    const status: RouteParentStatus = { parentRef: p, index, conditions: [] };
    parents.push(status);
    const ns = p.namespace ?? route.metadata.namespace;
    const { shown, services } = parentServices(p, ns, registry, domain);
    if (services.length === 0) {
      status.conditions.push(condition('Accepted', false, 'NoMatchingParent', `${shown} does not exist`));
      return;
    }
    // A ServiceEntry's hosts share its ports: the first host's are every host's.
    const ports = services[0]!.ports;
    const named = p.sectionName === undefined ? undefined : ports.find((sp) => sp.name === p.sectionName);
    if (p.sectionName !== undefined && (!named || (p.port !== undefined && named.number !== p.port))) {
      status.conditions.push(condition('Accepted', false, 'NoMatchingParent', `${shown} has no port named ${p.sectionName}${p.port !== undefined ? ` with number ${p.port}` : ''}`));
      return;
    }
    const port = p.port ?? named?.number;
    if (port !== undefined && !ports.some((sp) => sp.number === port)) {
      status.conditions.push(condition('Accepted', false, 'NoMatchingParent', `${shown} has no port ${port} (ports: ${ports.map((sp) => sp.number).join(', ')})`));
      return;
    }
    status.conditions.push(condition('Accepted', true, 'Accepted'));
    for (const service of services) attachments.push({ host: service.hostname, serviceNamespace: ns, ...(port !== undefined ? { port } : {}), parentIndex: index });
  });
  return { attachments, parents };
}

function namespaceAllowed(l: ServedListener, routeNamespace: string, namespaces: NamespaceLabels): boolean {
  const from = l.listener.allowedRoutes?.namespaces?.from ?? 'Same';
  if (from === 'All') return true;
  if (from === 'Same') return routeNamespace === l.gateway.metadata.namespace;
  const labels = { 'kubernetes.io/metadata.name': routeNamespace, ...(namespaces.get(routeNamespace) ?? {}) };
  return selectorMatches(l.listener.allowedRoutes?.namespaces?.selector, labels);
}

/** A Kubernetes label selector: every matchLabels pair and every matchExpression must hold. */
export function selectorMatches(sel: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!sel) return false;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const values = e.values ?? [];
    const ok =
      e.operator === 'In' ? has && values.includes(labels[e.key]!) :
      e.operator === 'NotIn' ? !has || !values.includes(labels[e.key]!) :
      e.operator === 'Exists' ? has :
      e.operator === 'DoesNotExist' ? !has : false;
    if (!ok) return false;
  }
  return true;
}
