// The status of the Ingresses this gateway serves, as istiod writes it: `status.loadBalancer.ingress`
// lists the addresses of the mesh config's `ingressService` (a Service of that name in the gateway's
// namespace: its load balancer's IPs and host names, then its externalIPs; an ExternalName Service's
// name), sorted host names first. meshgate's own Service has another name (deploy/service.yaml):
// when no Service is called ingressService, the LoadBalancer Service that selects this gateway
// stands in for it. Ingresses this gateway does not serve are left alone. Pure: the Gateway API's
// status writer does the writing.

import type { StatusObject } from '../gateway-api/status-objects.js';
import { gatewayServiceAddresses } from '../gateway-api/status-objects.js';
import type { Resource } from '../model/resource.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { ingressGatewaySelector, ingressSettings, servedIngresses, type IngressSettings } from './selection.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function ingressStatusObjects(snapshot: Snapshot): StatusObject[] {
  const role = snapshot.role;
  if (role.kind !== 'gateway' || !snapshot.resources.some((r) => r.kind === 'Ingress')) return [];
  const settings = ingressSettings(snapshot.resources);
  if (!Object.entries(ingressGatewaySelector(settings)).every(([k, v]) => role.labels[k] === v)) return [];
  const ingress = loadBalancerIngress(addresses(snapshot.resources, settings, role.namespace, role.labels));
  return servedIngresses(snapshot.resources, settings).map((r) => {
    const old = isObj(r.raw.status) ? r.raw.status : {};
    return { resource: r, plural: 'ingresses', status: { ...old, loadBalancer: { ingress } } };
  });
}

function addresses(resources: readonly Resource[], settings: IngressSettings, namespace: string, labels: Readonly<Record<string, string>>): string[] {
  const named = settings.ingressService === '' ? undefined : resources.find((r) => r.kind === 'Service' && r.metadata.namespace === namespace && r.metadata.name === settings.ingressService);
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
