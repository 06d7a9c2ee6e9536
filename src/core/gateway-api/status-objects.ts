// The Gateway API status as the API server holds it: for each GatewayClass, Gateway and route this
// gateway answers for, the `status` its status subresource should carry. Conditions carry
// observedGeneration and keep their lastTransitionTime while their status stays the same; a
// route's parents written by other controllers are kept. Pure: status-writer.ts does the writing.

import { MESHGATE_CONTROLLER, type K8sGatewaySpec } from '../model/gateway-api.js';
import type { Resource } from '../model/resource.js';
import type { PolicyStatus } from './backend-tls.js';
import type { Condition, GatewayApiStatus } from './conditions.js';
import { ownService } from './deployment-objects.js';

export interface StatusObject {
  readonly resource: Resource;
  /** `gatewayclasses`, `gateways`, `httproutes` … */
  readonly plural: string;
  readonly status: Record<string, unknown>;
}

const PLURALS: Readonly<Record<string, string>> = {
  GatewayClass: 'gatewayclasses',
  KubernetesGateway: 'gateways',
  HTTPRoute: 'httproutes',
  GRPCRoute: 'grpcroutes',
  TLSRoute: 'tlsroutes',
  TCPRoute: 'tcproutes',
  BackendTLSPolicy: 'backendtlspolicies',
};

type Obj = Record<string, unknown>;

export interface AddressSource {
  /** The gateway Service's load-balancer addresses, when the Gateway names none itself. */
  readonly serviceAddresses: ReadonlyArray<{ readonly type: string; readonly value: string }>;
  /** Where the Service of a Gateway's own deployment is found (automated deployment). */
  readonly resources?: readonly Resource[];
}

export function statusObjects(status: GatewayApiStatus, now: Date, addresses: AddressSource): StatusObject[] {
  const out: StatusObject[] = [];
  const time = now.toISOString().replace(/\.\d+Z$/, 'Z');
  for (const c of status.gatewayClasses) {
    out.push({ resource: c.resource, plural: PLURALS.GatewayClass!, status: { ...current(c.resource), conditions: conditionsOf(c.conditions, c.resource, oldConditions(current(c.resource)), time) } });
  }
  for (const g of status.gateways) {
    const old = current(g.resource);
    const oldListeners = Array.isArray(old.listeners) ? (old.listeners as Obj[]) : [];
    const spec = (g.resource.spec ?? {}) as { addresses?: Array<{ type?: string; value?: string }> };
    const own = addresses.resources ? ownService(g.resource as Resource<K8sGatewaySpec>, addresses.resources) : undefined;
    // An address without a value is one to be assigned: the Service's load balancer tells which.
    const named = (spec.addresses ?? []).flatMap((a) => (a.value ? [{ type: a.type ?? 'IPAddress', value: a.value }] : []));
    const addrs = own ? ownServiceAddresses(own) : named.length > 0 ? named : addresses.serviceAddresses;
    out.push({
      resource: g.resource,
      plural: PLURALS.KubernetesGateway!,
      status: {
        ...old,
        addresses: addrs.map((a) => ({ type: a.type, value: a.value })),
        conditions: conditionsOf(own ? withOwnServiceProgrammed(g.conditions, own, g.resource, addrs.length > 0) : g.conditions, g.resource, oldConditions(old), time),
        listeners: g.listeners.map((l) => ({
          name: l.name,
          supportedKinds: l.supportedKinds.map((k) => ({ group: k.group, kind: k.kind })),
          attachedRoutes: l.attachedRoutes,
          conditions: conditionsOf(l.conditions, g.resource, oldConditions(oldListeners.find((x) => x.name === l.name) ?? {}), time),
        })),
      },
    });
  }
  for (const r of status.routes) {
    const old = current(r.resource);
    const others = (Array.isArray(old.parents) ? (old.parents as Obj[]) : []).filter((p) => p.controllerName !== MESHGATE_CONTROLLER);
    const oldOurs = (Array.isArray(old.parents) ? (old.parents as Obj[]) : []).filter((p) => p.controllerName === MESHGATE_CONTROLLER);
    const parents = r.parents.map((p) => {
      const parentRef = { group: 'gateway.networking.k8s.io', kind: 'Gateway', ...p.parentRef, namespace: p.parentRef.namespace ?? r.resource.metadata.namespace };
      const before = oldOurs.find((o) => JSON.stringify(o.parentRef) === JSON.stringify(parentRef)) ?? {};
      return { parentRef, controllerName: MESHGATE_CONTROLLER, conditions: conditionsOf(p.conditions, r.resource, oldConditions(before), time) };
    });
    const plural = PLURALS[r.resource.kind];
    if (plural) out.push({ resource: r.resource, plural, status: { ...old, parents: [...others, ...parents] } });
  }
  for (const p of status.policies) out.push(policyStatus(p, time));
  return out;
}

/**
 * A BackendTLSPolicy's status: its ancestors (each target Service, each Gateway routing to one),
 * each with Accepted and ResolvedRefs; other controllers' ancestors are kept. A Gateway in the
 * policy's own namespace is named without one, as Istio writes it.
 */
function policyStatus(p: PolicyStatus, time: string): StatusObject {
  const old = current(p.resource);
  const list = Array.isArray(old.ancestors) ? (old.ancestors as Obj[]) : [];
  const others = list.filter((a) => a.controllerName !== MESHGATE_CONTROLLER);
  const ours = list.filter((a) => a.controllerName === MESHGATE_CONTROLLER);
  const ancestors = p.ancestors.map((a) => {
    const { namespace, ...ref } = a.ancestorRef;
    const ancestorRef = namespace && namespace !== p.resource.metadata.namespace ? { ...ref, namespace } : ref;
    const before = ours.find((o) => JSON.stringify(o.ancestorRef) === JSON.stringify(ancestorRef)) ?? {};
    return { ancestorRef, controllerName: MESHGATE_CONTROLLER, conditions: conditionsOf(a.conditions, p.resource, oldConditions(before), time) };
  });
  return { resource: p.resource, plural: PLURALS.BackendTLSPolicy!, status: { ...old, ancestors: [...others, ...ancestors] } };
}

/** True when writing `status` would change what the object holds (times aside, which only move with a change). */
export function statusChanged(o: StatusObject): boolean {
  return canonical(o.status) !== canonical(current(o.resource));
}

/** JSON with keys sorted, so that the API server's key order does not look like a change. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Obj)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * The gateway Service's load-balancer addresses: a LoadBalancer Service in the proxy's namespace
 * whose selector picks the proxy's labels (status.loadBalancer.ingress: ip → IPAddress, hostname → Hostname).
 */
export function gatewayServiceAddresses(resources: readonly Resource[], namespace: string, labels: Readonly<Record<string, string>>): Array<{ type: string; value: string }> {
  for (const r of resources) {
    if (r.kind !== 'Service' || r.metadata.namespace !== namespace) continue;
    const spec = r.spec as { type?: string; selector?: Record<string, string> };
    const selector = Object.entries(spec.selector ?? {});
    if (spec.type !== 'LoadBalancer' || selector.length === 0 || !selector.every(([k, v]) => labels[k] === v)) continue;
    const ingress = loadBalancerAddresses(r);
    if (ingress) return ingress;
  }
  return [];
}

/**
 * The addresses of a Gateway's own Service, as Istio reports them: its load balancer's once
 * assigned (none while pending); any other type, its cluster name (`<svc>.<ns>.svc.cluster.local`).
 */
function ownServiceAddresses(svc: Resource): Array<{ type: string; value: string }> {
  if ((svc.spec as { type?: string }).type === 'LoadBalancer') return loadBalancerAddresses(svc) ?? [];
  return [{ type: 'Hostname', value: `${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local` }];
}

/**
 * Programmed as Istio words it for a Gateway with a Service of its own: True names the Service's
 * `host:port`s; while a LoadBalancer Service has no ingress address yet, False with reason
 * AddressNotAssigned (Istio's `address pending for hostname`), True again once it has one. Only a
 * Gateway whose listeners are programmed is concerned: otherwise their reason stands.
 */
function withOwnServiceProgrammed(conditions: readonly Condition[], svc: Resource, gw: Resource, assigned: boolean): Condition[] {
  const was = conditions.find((c) => c.type === 'Programmed');
  if (was?.status !== 'True') return [...conditions];
  const host = `${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`;
  const listeners = ((gw.spec ?? {}) as { listeners?: Array<{ port?: unknown }> }).listeners ?? [];
  const ports = [...new Set(listeners.map((l) => l.port).filter((p): p is number => typeof p === 'number'))];
  const services = humanJoin(ports.map((p) => `${host}:${p}`).sort());
  const programmed: Condition = assigned
    ? { type: 'Programmed', status: 'True', reason: 'Programmed', message: `Resource programmed, assigned to service(s) ${services}` }
    : { type: 'Programmed', status: 'False', reason: 'AddressNotAssigned', message: `Assigned to service(s) ${services}, but failed to assign to all requested addresses: address pending for hostname "${host}"` };
  return conditions.map((c) => (c === was ? programmed : c));
}

/** `a`, `a and b`, `a, b, and c`: how Istio lists the services a Gateway is assigned to. */
function humanJoin(items: readonly string[]): string {
  if (items.length <= 2) return items.join(' and ');
  return `${items.slice(0, -1).join(', ')}, and ${items.at(-1)}`;
}

/** status.loadBalancer.ingress: ip → IPAddress, hostname → Hostname; undefined when there is none. */
function loadBalancerAddresses(svc: Resource): Array<{ type: string; value: string }> | undefined {
  const ingress = ((svc.raw.status as Obj | undefined)?.loadBalancer as Obj | undefined)?.ingress;
  if (!Array.isArray(ingress)) return undefined;
  return ingress.flatMap((i: Obj) => (typeof i.ip === 'string' ? [{ type: 'IPAddress', value: i.ip }] : typeof i.hostname === 'string' ? [{ type: 'Hostname', value: i.hostname }] : []));
}

function current(r: Resource): Obj {
  const s = r.raw.status;
  return typeof s === 'object' && s !== null && !Array.isArray(s) ? (s as Obj) : {};
}

function oldConditions(holder: Obj): Obj[] {
  return Array.isArray(holder.conditions) ? (holder.conditions as Obj[]) : [];
}

function conditionsOf(list: readonly Condition[], r: Resource, old: readonly Obj[], time: string): Obj[] {
  const generation = (r.raw.metadata as Obj | undefined)?.generation;
  return list.map((c) => {
    const was = old.find((o) => o.type === c.type);
    const since = was && was.status === c.status && typeof was.lastTransitionTime === 'string' ? was.lastTransitionTime : time;
    return {
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      ...(typeof generation === 'number' ? { observedGeneration: generation } : {}),
      lastTransitionTime: since,
    };
  });
}
