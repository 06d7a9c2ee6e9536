// The status the Gateway API asks a controller to report, as plain data: conditions (Accepted,
// Programmed, ResolvedRefs, Conflicted) with their reasons on GatewayClasses, Gateways, listeners
// and each parent of a route. The translation fills it in; in a cluster it is written to the
// objects' status subresource (status-writer.ts), with files `analyze`/`explain` show it as problems.

import type { Problem } from '../config/problem.js';
import { problemAt } from '../config/problem.js';
import type { ParentReference } from '../model/gateway-api.js';
import type { FieldPath, Resource } from '../model/resource.js';
import type { AncestorStatus, PolicyStatus } from './backend-tls.js';

export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
}

export interface ListenerStatus {
  readonly name: string;
  attachedRoutes: number;
  readonly supportedKinds: ReadonlyArray<{ readonly group: string; readonly kind: string }>;
  readonly conditions: Condition[];
}

export interface GatewayStatus {
  readonly resource: Resource;
  readonly conditions: Condition[];
  readonly listeners: ListenerStatus[];
  /** Filled in by whoever knows the addresses (spec.addresses, or the gateway Service's load balancer). */
  addresses: ReadonlyArray<{ readonly type: string; readonly value: string }>;
}

export interface RouteParentStatus {
  readonly parentRef: ParentReference;
  /** Index of the parentRef in spec.parentRefs, for file:line. */
  readonly index: number;
  readonly conditions: Condition[];
}

export interface RouteStatus {
  readonly resource: Resource;
  readonly parents: RouteParentStatus[];
}

export interface GatewayApiStatus {
  readonly gatewayClasses: ReadonlyArray<{ readonly resource: Resource; readonly conditions: Condition[] }>;
  readonly gateways: readonly GatewayStatus[];
  readonly routes: readonly RouteStatus[];
  /** BackendTLSPolicies, with their ancestors (backend-tls.ts). */
  readonly policies: readonly PolicyStatus[];
}

export function condition(type: string, ok: boolean, reason: string, message = ''): Condition {
  return { type, status: ok ? 'True' : 'False', reason, message };
}

/** Sets the condition of its type, replacing what was there. */
export function setCondition(list: Condition[], c: Condition): void {
  const i = list.findIndex((x) => x.type === c.type);
  if (i < 0) list.push(c);
  else list[i] = c;
}

/**
 * The conditions that say something is wrong, as problems at the field they concern: what
 * `meshgate analyze`, `validate` and `explain` print in file mode (`leaveOut`: conditions the caller
 * reports in its own words). Conflicted True, and any
 * Accepted/Programmed/ResolvedRefs False, is a warning: the resource stays, the part is not served.
 */
export function statusProblems(status: GatewayApiStatus, leaveOut: (c: Condition) => boolean = () => false): Problem[] {
  const out: Problem[] = [];
  const bad = (c: Condition): boolean => (c.type === 'Conflicted' ? c.status === 'True' : c.status === 'False') && !leaveOut(c);
  const say = (r: Resource, path: FieldPath, c: Condition, what: string): void => {
    out.push(problemAt(r, path, `${what}${c.type} ${c.status} (${c.reason})${c.message ? `: ${c.message}` : ''}`, 'warning'));
  };
  for (const g of status.gatewayClasses) for (const c of g.conditions) if (bad(c)) say(g.resource, ['spec', 'controllerName'], c, '');
  for (const g of status.gateways) {
    for (const c of g.conditions) if (bad(c) && c.reason !== 'ListenersNotValid') say(g.resource, ['spec'], c, '');
    g.listeners.forEach((l, i) => {
      for (const c of l.conditions) if (bad(c)) say(g.resource, ['spec', 'listeners', i], c, `listener ${l.name}: `);
    });
  }
  for (const r of status.routes) {
    for (const p of r.parents) {
      for (const c of p.conditions) if (bad(c)) say(r.resource, ['spec', 'parentRefs', p.index], c, `parent ${parentText(p.parentRef, r.resource.metadata.namespace)}: `);
    }
  }
  for (const p of status.policies) {
    // One CA problem is the same for every ancestor: said once.
    const said = new Set<string>();
    for (const a of p.ancestors) {
      for (const c of a.conditions) {
        if (!bad(c) || said.has(`${c.type}|${c.message}`)) continue;
        said.add(`${c.type}|${c.message}`);
        const caProblem = c.reason === 'NoValidCACertificate' || c.type === 'ResolvedRefs';
        say(p.resource, caProblem ? ['spec', 'validation', 'caCertificateRefs', 0] : a.at, c, caProblem ? '' : `ancestor ${ancestorText(a)}: `);
      }
    }
  }
  return out;
}

function ancestorText(a: AncestorStatus): string {
  const r = a.ancestorRef;
  return `${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name}${r.sectionName ? `/${r.sectionName}` : ''}`;
}

export function parentText(p: ParentReference, routeNamespace: string): string {
  // A Service parent (mesh) is named as such: the bare form means a Gateway.
  return `${p.group === '' && p.kind === 'Service' ? 'Service ' : ''}${p.namespace ?? routeNamespace}/${p.name}${p.sectionName ? `/${p.sectionName}` : ''}${p.port ? `:${p.port}` : ''}`;
}

/**
 * The status as lines for people (what `meshgate explain` prints in file mode, the same conditions a
 * cluster would hold): one line per GatewayClass, Gateway, listener and route parent.
 */
export function statusLines(status: GatewayApiStatus): string[] {
  const conds = (list: readonly Condition[]): string =>
    list
      .filter((c) => c.type !== 'Conflicted' || c.status === 'True')
      .map((c) => `${c.type} ${c.status}${c.reason !== c.type ? ` (${c.reason})` : ''}${c.message && (c.status === 'False' || c.type === 'Conflicted') ? `: ${c.message}` : ''}`)
      .join(', ');
  const out: string[] = [];
  for (const c of status.gatewayClasses) out.push(`GatewayClass ${c.resource.metadata.name}: ${conds(c.conditions)}`);
  for (const g of status.gateways) {
    out.push(`Gateway ${g.resource.metadata.namespace}/${g.resource.metadata.name}: ${conds(g.conditions)}`);
    for (const l of g.listeners) out.push(`  listener ${l.name}: attachedRoutes ${l.attachedRoutes}, ${conds(l.conditions)}`);
  }
  for (const r of status.routes) {
    for (const p of r.parents) out.push(`${r.resource.kind} ${r.resource.metadata.namespace}/${r.resource.metadata.name} → ${parentText(p.parentRef, r.resource.metadata.namespace)}: ${conds(p.conditions)}`);
  }
  for (const p of status.policies) {
    for (const a of p.ancestors) out.push(`BackendTLSPolicy ${p.resource.metadata.namespace}/${p.resource.metadata.name} → ${ancestorText(a)}: ${conds(a.conditions)}`);
  }
  return out;
}
