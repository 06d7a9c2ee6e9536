// Kubernetes Services as registry entries: `<name>.<ns>.svc.<domain>`, ports with their protocol and
// target port, and endpoints from EndpointSlices, else v1 Endpoints, else (so that a folder of YAML
// can describe a cluster compactly) the Pods the Service's selector picks. A headless Service
// (`clusterIP: None`) is marked so, and each of its endpoints with a DNS hostname (a StatefulSet pod:
// the slice's `hostname`, or the pod's `hostname` with `subdomain` naming the Service) is also an
// entry of its own, `<hostname>.<name>.<ns>.svc.<domain>`, with that one endpoint, as cluster DNS
// answers for it.

import type { Problem } from '../config/problem.js';
import { problemAt } from '../config/problem.js';
import type { EndpointSliceBody, EndpointsBody, ServicePortSpec, ServiceSpec } from '../model/kube.js';
import { SERVICE_NAME_LABEL } from '../model/kube.js';
import type { Resource } from '../model/resource.js';
import { compareByCreation, resourceRef } from '../model/resource.js';
import { EndpointSet, makeEndpoint } from './endpoint-set.js';
import { hasMeshTls, localityFromLabels } from './labels.js';
import type { PodIndex, PodInfo } from './pods.js';
import { isRecord } from './pods.js';
import { kubePortProtocol } from './protocol.js';
import type { Endpoint, Service, ServicePort } from './types.js';

const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

export function kubeServices(resources: readonly Resource[], pods: PodIndex, domain: string, problems: Problem[]): Service[] {
  const slices = new Map<string, Resource[]>();
  const endpointsByName = new Map<string, Resource>();
  for (const r of resources) {
    if (r.kind === 'EndpointSlice') {
      const owner = r.metadata.labels[SERVICE_NAME_LABEL];
      if (!owner) continue;
      const key = `${r.metadata.namespace}/${owner}`;
      const list = slices.get(key);
      if (list) list.push(r);
      else slices.set(key, [r]);
    } else if (r.kind === 'Endpoints') {
      endpointsByName.set(`${r.metadata.namespace}/${r.metadata.name}`, r);
    }
  }
  const services = resources.filter((r) => r.kind === 'Service' && r.apiVersion === 'v1').sort(compareByCreation);
  return services.flatMap((r) => kubeServiceOnce(r, slices.get(key(r)), endpointsByName.get(key(r)), pods, domain, problems));
}

/** One Service's registry entry as last built, with everything it was built from. */
interface Built {
  readonly slices: readonly Resource[] | undefined;
  readonly endpoints: Resource | undefined;
  readonly pods: object;
  readonly domain: string;
  readonly services: readonly Service[];
  readonly problems: readonly Problem[];
}

/**
 * Registry entries by the Service resource they came from. A reload that keeps a Service, its
 * EndpointSlices (or Endpoints) and the Pods as the very same objects gets the very same entry back:
 * at 10,000 services an edit of one then costs a probe per service, and what was compiled against
 * an unchanged entry (clusters, routes) can be kept too, because the entry is identical.
 */
const built = new WeakMap<Resource, Built>();

function kubeServiceOnce(r: Resource, slices: readonly Resource[] | undefined, endpoints: Resource | undefined, pods: PodIndex, domain: string, problems: Problem[]): readonly Service[] {
  const known = built.get(r);
  if (known && known.endpoints === endpoints && known.pods === pods.identity && known.domain === domain && sameItems(known.slices, slices)) {
    problems.push(...known.problems);
    return known.services;
  }
  const own: Problem[] = [];
  const service = kubeService(r, slices, endpoints, pods, domain, own);
  const services = service.headless ? [service, ...podHostServices(service)] : [service];
  built.set(r, { slices, endpoints, pods: pods.identity, domain, services, problems: own });
  problems.push(...own);
  return services;
}

/** Two lists with the very same items in the same order (both absent counts as the same). */
export function sameItems<T>(a: readonly T[] | undefined, b: readonly T[] | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function key(r: Resource): string {
  return `${r.metadata.namespace}/${r.metadata.name}`;
}

function kubeService(
  r: Resource,
  slices: readonly Resource[] | undefined,
  endpoints: Resource | undefined,
  pods: PodIndex,
  domain: string,
  problems: Problem[],
): Service {
  const spec = (isRecord(r.spec) ? r.spec : {}) as ServiceSpec;
  const ns = r.metadata.namespace;
  const ports = (Array.isArray(spec.ports) ? spec.ports : []).filter((p) => isRecord(p) && typeof p.port === 'number').map(servicePort);
  const externalName = spec.type === 'ExternalName' && typeof spec.externalName === 'string' && spec.externalName !== '' ? spec.externalName : undefined;
  const headless = !externalName && spec.clusterIP === 'None';
  const clusterIps = [...new Set([spec.clusterIP, ...(Array.isArray(spec.clusterIPs) ? spec.clusterIPs : [])])].filter((ip): ip is string => typeof ip === 'string' && ip !== '' && ip !== 'None');
  // Per-pod DNS names exist only under a headless Service; `subdomain` must name this one.
  const dns: PodDns = headless ? { service: r.metadata.name.toLowerCase() } : {};
  const exportTo = (r.metadata.annotations[EXPORT_TO_ANNOTATION] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

  let list: Endpoint[];
  if (externalName) {
    // An ExternalName service is a DNS alias: its one endpoint is the external name, on the service's own ports.
    list = [
      makeEndpoint({
        address: externalName.toLowerCase(),
        ports: new Map(ports.map((p) => [p.number, p.number])),
        labels: {},
        locality: '',
        namespace: ns,
        meshTls: false,
        ready: true,
      }),
    ];
  } else if (slices && slices.length > 0) {
    list = fromSlices(slices, ports, ns, pods, dns);
  } else if (endpoints) {
    list = fromEndpoints(endpoints, ports, ns, pods, dns);
  } else if (isRecord(spec.selector) && Object.keys(spec.selector).length > 0) {
    list = fromPods(r, pods.select(ns, spec.selector), ports, problems, dns);
  } else {
    list = [];
  }

  return Object.freeze({
    hostname: `${r.metadata.name}.${ns}.svc.${domain}`.toLowerCase(),
    namespace: ns,
    ports,
    endpoints: list,
    resolution: externalName ? 'DNS' : 'STATIC',
    location: externalName ? 'MESH_EXTERNAL' : 'MESH_INTERNAL',
    kind: 'Service',
    ...(headless ? { headless: true as const } : {}),
    ...(clusterIps.length > 0 ? { addresses: clusterIps } : {}),
    exportTo: exportTo.length > 0 ? exportTo : ['*'],
    subjectAltNames: [],
    sources: [resourceRef(r)],
  });
}

function servicePort(p: ServicePortSpec): ServicePort {
  const name = typeof p.name === 'string' ? p.name : '';
  const base = { number: p.port, name, protocol: kubePortProtocol(name, p.appProtocol, p.protocol) };
  const target = p.targetPort;
  if (typeof target === 'number') return { ...base, targetPort: target };
  if (typeof target === 'string' && target !== '') {
    return /^\d+$/.test(target) ? { ...base, targetPort: Number(target) } : { ...base, targetPortName: target };
  }
  // Kubernetes defaults targetPort to the port itself.
  return { ...base, targetPort: p.port };
}

/** Service port number → endpoint port, matching the source's port names to the service's. */
function mapPorts(ports: readonly ServicePort[], sourcePorts: ReadonlyMap<string, number>, pod: PodInfo | undefined): Map<number, number> {
  const out = new Map<number, number>();
  for (const p of ports) {
    const byName = sourcePorts.get(p.name);
    if (byName !== undefined) out.set(p.number, byName);
    else if (p.targetPortName && pod?.namedPorts.has(p.targetPortName)) out.set(p.number, pod.namedPorts.get(p.targetPortName)!);
  }
  return out;
}

/** Under a headless Service: its name (what a pod's `subdomain` must say); otherwise empty, and no endpoint has a hostname. */
interface PodDns {
  readonly service?: string;
}

/** The endpoint's DNS label under a headless Service: the source's own `hostname`, else the pod's. */
function dnsHostname(dns: PodDns, given: unknown, pod: PodInfo | undefined): string | undefined {
  if (dns.service === undefined) return undefined;
  if (typeof given === 'string' && given !== '') return given.toLowerCase();
  return pod?.dnsName?.subdomain === dns.service ? pod.dnsName.hostname : undefined;
}

/** `<hostname>.<service host>` for each endpoint of a headless Service that has one: that endpoint alone. */
function podHostServices(service: Service): Service[] {
  const out = new Map<string, Service>();
  for (const e of service.endpoints) {
    const hostname = e.hostname && `${e.hostname}.${service.hostname}`;
    if (hostname && !out.has(hostname)) out.set(hostname, Object.freeze({ ...service, hostname, endpoints: [e] }));
  }
  return [...out.values()];
}

function endpointFor(address: string, ports: Map<number, number>, ready: boolean, ns: string, pod: PodInfo | undefined, zone: string, hostname?: string) {
  const labels = pod?.labels ?? {};
  return {
    ...(hostname ? { hostname } : {}),
    address,
    ports,
    labels,
    locality: pod ? pod.locality(zone) : localityFromLabels({}, zone),
    ...(pod ? { serviceAccount: pod.serviceAccount } : {}),
    namespace: pod?.namespace ?? ns,
    meshTls: hasMeshTls(labels),
    ready,
  };
}

/** The pod behind an address: the one its targetRef names, else the one holding that IP in the namespace. */
function podFor(pods: PodIndex, ref: Record<string, unknown> | undefined, ns: string, address: string): PodInfo | undefined {
  const named =
    ref && ref.kind === 'Pod' && typeof ref.name === 'string'
      ? pods.byName(typeof ref.namespace === 'string' && ref.namespace !== '' ? ref.namespace : ns, ref.name)
      : undefined;
  return named ?? pods.byIp(ns, address);
}

function fromSlices(slices: readonly Resource[], ports: readonly ServicePort[], ns: string, pods: PodIndex, dns: PodDns): Endpoint[] {
  const set = new EndpointSet();
  for (const slice of [...slices].sort(compareByCreation)) {
    const body = slice.raw as EndpointSliceBody;
    const slicePorts = new Map<string, number>();
    for (const p of Array.isArray(body.ports) ? body.ports : []) {
      if (isRecord(p) && typeof p.port === 'number') slicePorts.set(typeof p.name === 'string' ? p.name : '', p.port);
    }
    for (const ep of Array.isArray(body.endpoints) ? body.endpoints : []) {
      if (!isRecord(ep) || !Array.isArray(ep.addresses)) continue;
      // Kubernetes says a slice endpoint's addresses are fungible; the first is the one to use.
      const address = ep.addresses.find((a): a is string => typeof a === 'string' && a !== '');
      if (!address) continue;
      const ref = isRecord(ep.targetRef) ? ep.targetRef : undefined;
      const pod = podFor(pods, ref, ns, address);
      const ready = !isRecord(ep.conditions) || ep.conditions.ready !== false;
      const zone = typeof ep.zone === 'string' ? ep.zone : '';
      set.add(endpointFor(address, mapPorts(ports, slicePorts, pod), ready, ns, pod, zone, dnsHostname(dns, ep.hostname, pod)));
    }
  }
  return set.toList();
}

function fromEndpoints(r: Resource, ports: readonly ServicePort[], ns: string, pods: PodIndex, dns: PodDns): Endpoint[] {
  const body = r.raw as EndpointsBody;
  const set = new EndpointSet();
  for (const subset of Array.isArray(body.subsets) ? body.subsets : []) {
    if (!isRecord(subset)) continue;
    const subsetPorts = new Map<string, number>();
    for (const p of Array.isArray(subset.ports) ? subset.ports : []) {
      if (isRecord(p) && typeof p.port === 'number') subsetPorts.set(typeof p.name === 'string' ? p.name : '', p.port);
    }
    const groups: Array<[unknown, boolean]> = [
      [subset.addresses, true],
      [subset.notReadyAddresses, false],
    ];
    for (const [addresses, ready] of groups) {
      for (const a of Array.isArray(addresses) ? (addresses as unknown[]) : []) {
        if (!isRecord(a) || typeof a.ip !== 'string' || a.ip === '') continue;
        const ref = isRecord(a.targetRef) ? a.targetRef : undefined;
        const pod = podFor(pods, ref, ns, a.ip);
        set.add(endpointFor(a.ip, mapPorts(ports, subsetPorts, pod), ready, ns, pod, '', dnsHostname(dns, a.hostname, pod)));
      }
    }
  }
  return set.toList();
}

function fromPods(service: Resource, selected: readonly PodInfo[], ports: readonly ServicePort[], problems: Problem[], dns: PodDns): Endpoint[] {
  const set = new EndpointSet();
  const unresolved = new Set<number>();
  for (const pod of selected) {
    const mapped = new Map<number, number>();
    ports.forEach((p, i) => {
      if (p.targetPortName === undefined) return; // numeric targetPort: endpointPort() falls back to it
      const target = pod.namedPorts.get(p.targetPortName);
      if (target !== undefined) mapped.set(p.number, target);
      else unresolved.add(i);
    });
    set.add(endpointFor(pod.ip!, mapped, pod.ready, pod.namespace, pod, '', dnsHostname(dns, undefined, pod)));
  }
  for (const i of unresolved) {
    const p = ports[i]!;
    problems.push(
      problemAt(
        service,
        ['spec', 'ports', i, 'targetPort'],
        `named targetPort "${p.targetPortName}" is not a container port of every selected pod; those pods are reached on port ${p.number}`,
        'warning',
      ),
    );
  }
  return set.toList();
}
