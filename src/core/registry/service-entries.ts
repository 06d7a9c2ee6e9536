// ServiceEntries as registry entries, one per host: their ports, resolution and location, and
// endpoints from `endpoints[]`, from the WorkloadEntries and Pods a `workloadSelector` picks, or (DNS
// resolution with neither) the host name itself, left for the connection pool to resolve.

import type { Labels, ServiceEntryPort, ServiceEntrySpec, WorkloadEntrySpec } from '../model/istio.js';
import type { Resource } from '../model/resource.js';
import { resourceRef } from '../model/resource.js';
import { isWildcardHost } from './hostname.js';
import { makeEndpoint } from './endpoint-set.js';
import { hasMeshTls, selectorMatches } from './labels.js';
import type { PodIndex } from './pods.js';
import { isRecord } from './pods.js';
import { parseProtocol } from './protocol.js';
import type { Endpoint, Service, ServicePort } from './types.js';

/** What one ServiceEntry contributes for one of its hosts, before hosts from several sources are reconciled. */
export interface ServiceEntryHost {
  readonly resource: Resource;
  readonly service: Service;
}

export function serviceEntryHosts(entry: Resource, resources: readonly Resource[], pods: PodIndex): ServiceEntryHost[] {
  const spec = (isRecord(entry.spec) ? entry.spec : {}) as unknown as ServiceEntrySpec;
  const ns = entry.metadata.namespace;
  const ports = (Array.isArray(spec.ports) ? spec.ports : []).filter((p) => isRecord(p) && typeof p.number === 'number').map(entryPort);
  const resolution = spec.resolution ?? 'NONE';
  const location = spec.location ?? 'MESH_EXTERNAL';
  // Auto mTLS never applies to services declared outside the mesh, whatever their endpoints' labels say.
  const internal = location === 'MESH_INTERNAL';

  let shared: Endpoint[] | undefined;
  if (Array.isArray(spec.endpoints) && spec.endpoints.length > 0) {
    shared = spec.endpoints.flatMap((we) => {
      if (typeof we !== 'object' || we === null) return [];
      const e = workloadEndpoint(we, ports, ns, internal, isRecord(we.labels) ? (we.labels as Labels) : {});
      return e ? [e] : [];
    });
  } else if (isRecord(spec.workloadSelector)) {
    shared = selectedWorkloads(spec.workloadSelector.labels ?? {}, ns, ports, internal, resources, pods);
  }

  const hosts = (Array.isArray(spec.hosts) ? spec.hosts : []).filter((h): h is string => typeof h === 'string' && h !== '');
  return hosts.map((raw) => {
    const hostname = raw.toLowerCase();
    let endpoints = shared ?? [];
    if (!shared && (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && !isWildcardHost(hostname)) {
      endpoints = [makeEndpoint({ address: hostname, ports: new Map(), labels: {}, locality: '', namespace: ns, meshTls: false, ready: true })];
    }
    const service: Service = Object.freeze({
      hostname,
      namespace: ns,
      ports,
      endpoints,
      resolution,
      location,
      kind: 'ServiceEntry',
      exportTo: Array.isArray(spec.exportTo) && spec.exportTo.length > 0 ? [...spec.exportTo] : ['*'],
      subjectAltNames: Array.isArray(spec.subjectAltNames) ? [...spec.subjectAltNames] : [],
      sources: [resourceRef(entry)],
    });
    return { resource: entry, service };
  });
}

function entryPort(p: ServiceEntryPort): ServicePort {
  const base = { number: p.number, name: typeof p.name === 'string' ? p.name : '', protocol: parseProtocol(p.protocol) };
  return typeof p.targetPort === 'number' && p.targetPort > 0 ? { ...base, targetPort: p.targetPort } : base;
}

/** A WorkloadEntry (inline or standalone) as an endpoint; its `ports` map port names to endpoint ports. */
function workloadEndpoint(we: WorkloadEntrySpec, ports: readonly ServicePort[], ns: string, internal: boolean, labels: Labels): Endpoint | undefined {
  if (typeof we.address !== 'string' || we.address === '') return undefined;
  const mapped = new Map<number, number>();
  const named = isRecord(we.ports) ? we.ports : {};
  for (const p of ports) {
    const target = named[p.name];
    if (typeof target === 'number') mapped.set(p.number, target);
  }
  return makeEndpoint({
    address: we.address,
    ports: mapped,
    labels,
    locality: typeof we.locality === 'string' ? we.locality : '',
    ...(typeof we.weight === 'number' ? { weight: we.weight } : {}),
    ...(typeof we.serviceAccount === 'string' && we.serviceAccount !== '' ? { serviceAccount: we.serviceAccount } : {}),
    namespace: ns,
    meshTls: internal && hasMeshTls(labels),
    ready: true,
  });
}

function selectedWorkloads(
  selector: Labels,
  ns: string,
  ports: readonly ServicePort[],
  internal: boolean,
  resources: readonly Resource[],
  pods: PodIndex,
): Endpoint[] {
  const out: Endpoint[] = [];
  for (const r of resources) {
    if (r.kind !== 'WorkloadEntry' || r.metadata.namespace !== ns || !isRecord(r.spec)) continue;
    const spec = r.spec as WorkloadEntrySpec;
    // Metadata labels take precedence over spec labels, as Istio merges them.
    const labels = { ...(isRecord(spec.labels) ? spec.labels : {}), ...r.metadata.labels };
    if (!selectorMatches(selector, labels)) continue;
    const e = workloadEndpoint(spec, ports, ns, internal, labels);
    if (e) out.push(e);
  }
  for (const pod of pods.select(ns, selector)) {
    out.push(
      makeEndpoint({
        address: pod.ip!,
        ports: new Map(),
        labels: pod.labels,
        locality: pod.locality(),
        serviceAccount: pod.serviceAccount,
        namespace: pod.namespace,
        meshTls: internal && pod.meshTls,
        ready: pod.ready,
      }),
    );
  }
  return out;
}
