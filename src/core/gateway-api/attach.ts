// Which listeners a route attaches to, and as which host names: its parentRefs (Gateway, optional
// sectionName and port), each listener's allowedRoutes (namespaces Same/All/Selector, kinds), and
// the intersection of the listener's hostname with the route's hostnames. A parent where nothing
// attaches is reported (NoMatchingParent, NotAllowedByListeners, NoMatchingListenerHostname).

import { GATEWAY_API_GROUP, type LabelSelector, type ParentReference, type RouteKind } from '../model/gateway-api.js';
import type { Resource } from '../model/resource.js';
import { hostIntersection } from '../registry/hostname.js';
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
