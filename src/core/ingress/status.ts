// The status of the Ingresses this gateway serves, as istiod writes it: `status.loadBalancer.ingress`
// lists the addresses of the mesh config's `ingressService` (a Service of that name in the gateway's
// namespace: its load balancer's IPs and host names, then its externalIPs; an ExternalName Service's
// name), sorted host names first. meshgate's own Service has another name (deploy/service.yaml):
// when no Service is called ingressService, the LoadBalancer Service that selects this gateway
// stands in for it. With `ingressService: ""`, istiod reads the nodes instead: the ExternalIP
// addresses of the node of the first running ingress gateway pod whose node it finds (internal
// addresses never). Nodes are not watched here: the status writer reads the nodes this names when it
// writes (ingressStatusNodes).
//
// An Ingress that stops being served (its class changed, the mesh config's ingressControllerMode or
// ingressClass changed, its annotation removed) gets an empty status, as istiod's status collection
// writes `IngressStatus{}` for an Ingress that leaves it; an Ingress this gateway never served is
// left alone, so another controller's addresses stay. Only the gateway the Ingresses' Gateway
// selects writes. Pure: the Gateway API's status writer does the writing.

import type { StatusObject } from '../gateway-api/status-objects.js';
import { gatewayServiceAddresses } from '../gateway-api/status-objects.js';
import type { Resource } from '../model/resource.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { ingressGatewaySelector, ingressSettings, servedIngresses, type IngressSettings } from './selection.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface IngressStatusRound {
  readonly objects: StatusObject[];
  /** `namespace/name` of the Ingresses this gateway serves, and of those it has yet to see cleared: the next round's `servedBefore`. */
  readonly served: ReadonlySet<string>;
}

const NONE: IngressStatusRound = Object.freeze({ objects: [], served: new Set<string>() });

/**
 * The status to write for each Ingress of `snapshot`. `servedBefore`: what the previous round
 * served. `nodeAddresses`: node name → its ExternalIP addresses, for the nodes ingressStatusNodes()
 * named that could be read (only when `ingressService` is empty).
 */
export function ingressStatusObjects(snapshot: Snapshot, servedBefore: ReadonlySet<string> = new Set(), nodeAddresses: ReadonlyMap<string, readonly string[]> = new Map()): IngressStatusRound {
  const role = snapshot.role;
  if (role.kind !== 'gateway' || !snapshot.resources.some((r) => r.kind === 'Ingress')) return NONE;
  const settings = ingressSettings(snapshot.resources);
  // Not the gateway that serves Ingresses (any more): the one that is writes their status.
  if (!matches(ingressGatewaySelector(settings), role.labels)) return NONE;
  const served = servedIngresses(snapshot.resources, settings);
  const servedKeys = new Set(served.map(keyOf));
  const ingress = loadBalancerIngress(addresses(snapshot.resources, settings, role.namespace, role.labels, nodeAddresses));
  const objects: StatusObject[] = served.map((r) => ({ resource: r, plural: 'ingresses', status: { ...current(r), loadBalancer: { ingress } } }));
  const next = new Set(servedKeys);
  for (const r of snapshot.resources) {
    if (r.kind !== 'Ingress' || servedKeys.has(keyOf(r)) || !servedBefore.has(keyOf(r))) continue;
    const old = current(r);
    const lb = old.loadBalancer;
    // Cleared already (by our write, or by hand): nothing more to do for it.
    if (!isObj(lb) || Object.keys(lb).length === 0) continue;
    objects.push({ resource: r, plural: 'ingresses', status: { ...old, loadBalancer: {} } });
    next.add(keyOf(r));
  }
  return { objects, served: next };
}

/**
 * The nodes whose addresses the status needs, in the order they are tried: with `ingressService: ""`,
 * the nodes of the running pods, in the gateway's namespace, that the Ingresses' Gateway selects (by
 * pod name). Empty otherwise.
 */
export function ingressStatusNodes(snapshot: Snapshot): string[] {
  const role = snapshot.role;
  if (role.kind !== 'gateway' || !snapshot.resources.some((r) => r.kind === 'Ingress')) return [];
  const settings = ingressSettings(snapshot.resources);
  const selector = ingressGatewaySelector(settings);
  if (settings.ingressService !== '' || !matches(selector, role.labels)) return [];
  const nodes: string[] = [];
  const pods = snapshot.resources.filter((r) => r.kind === 'Pod' && r.metadata.namespace === role.namespace && matches(selector, r.metadata.labels));
  for (const pod of pods.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0))) {
    const phase = isObj(pod.raw.status) ? pod.raw.status.phase : undefined;
    const node = isObj(pod.spec) ? pod.spec.nodeName : undefined;
    if (phase === 'Running' && typeof node === 'string' && node !== '' && !nodes.includes(node)) nodes.push(node);
  }
  return nodes;
}

/** The ExternalIP addresses of a Node object as the API serves it, each once. */
export function nodeExternalAddresses(node: unknown): string[] {
  const list = isObj(node) && isObj(node.status) && Array.isArray(node.status.addresses) ? node.status.addresses : [];
  const out: string[] = [];
  for (const a of list) if (isObj(a) && a.type === 'ExternalIP' && typeof a.address === 'string' && a.address !== '' && !out.includes(a.address)) out.push(a.address);
  return out;
}

function addresses(resources: readonly Resource[], settings: IngressSettings, namespace: string, labels: Readonly<Record<string, string>>, nodeAddresses: ReadonlyMap<string, readonly string[]>): string[] {
  if (settings.ingressService === '') {
    // istiod takes the first pod whose node it has, even when that node has no external address.
    for (const [, found] of nodeAddresses) return [...found];
    return [];
  }
  const named = resources.find((r) => r.kind === 'Service' && r.metadata.namespace === namespace && r.metadata.name === settings.ingressService);
  if (!named) return gatewayServiceAddresses(resources, namespace, labels).map((a) => a.value);
  const spec = (isObj(named.spec) ? named.spec : {}) as { type?: string; externalName?: string; externalIPs?: unknown };
  if (spec.type === 'ExternalName') return spec.externalName ? [spec.externalName] : [];
  const lb = isObj(named.raw.status) && isObj(named.raw.status.loadBalancer) ? named.raw.status.loadBalancer.ingress : undefined;
  const out: string[] = [];
  for (const i of Array.isArray(lb) ? lb : []) {
    if (isObj(i) && typeof i.ip === 'string' && i.ip !== '') out.push(i.ip);
    else if (isObj(i) && typeof i.hostname === 'string') out.push(i.hostname);
  }
  for (const ip of Array.isArray(spec.externalIPs) ? spec.externalIPs : []) if (typeof ip === 'string') out.push(ip);
  return out;
}

/** `[{ip}|{hostname}]`, host names first (by name), then IPs (by address), as Istio sorts them. */
function loadBalancerIngress(list: readonly string[]): Array<{ ip: string } | { hostname: string }> {
  const isIp = (s: string): boolean => /^[\d.]+$/.test(s) || s.includes(':');
  const key = (s: string): string => (isIp(s) ? `1${s}` : `0${s}`);
  return [...list].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)).map((s) => (isIp(s) ? { ip: s } : { hostname: s }));
}

function matches(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function keyOf(r: Resource): string {
  return `${r.metadata.namespace}/${r.metadata.name}`;
}

function current(r: Resource): Obj {
  return isObj(r.raw.status) ? r.raw.status : {};
}
