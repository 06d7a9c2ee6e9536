// The names a sidecar's DNS proxy answers itself, built from its snapshot as Istio builds a proxy's
// name table (every other name is forwarded to the pod's nameservers):
// - a Kubernetes Service: its cluster IPs under its FQDN `name.ns.svc.<domain>`, and under the short
//   forms an app's resolver may send as they are: `name.ns`, `name.ns.svc`, and `name` for a Service
//   in the proxy's own namespace; a headless Service: its ready endpoints' addresses, and each pod
//   with a hostname under `<hostname>.<service FQDN>` (StatefulSet pods);
// - a ServiceEntry host: the IPs of its `addresses` (CIDR blocks are no answer), else the addresses
//   DNS auto-allocation gave it; a wildcard host with addresses answers every name it covers, the most
//   specific wildcard first; without addresses it is not answered (its names are forwarded);
// - a host both a Service and a ServiceEntry name: the Service's addresses.
// Only services exported to the proxy's namespace count. Names are matched without case and
// without the trailing dot.
// As Istio's agent does, each answered name is also known with the pod's first search domain after
// it (`www.example.com.default.svc.cluster.local`), the name a resolver with `ndots:5` asks first: it
// is answered with a CNAME to the name itself and that name's addresses, so the resolver stops there
// instead of sending every expansion of the search list upstream first.

import { isIP } from 'node:net';
import type { Resource } from '../model/resource.js';
import { isRecord } from '../config/load.js';
import { exportedTo } from '../routing/gateway-binding.js';
import type { AllocatedAddresses } from '../registry/auto-allocate.js';
import type { Registry, Service } from '../registry/types.js';

export interface NameRecords {
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
  /** Set when the name asked was a search-list expansion: the name the addresses belong to (a CNAME). */
  readonly canonical?: string;
}

export interface NameTable {
  /** The addresses for `name`, or undefined when the mesh does not know it (then it is forwarded). */
  lookup(name: string): NameRecords | undefined;
  /** How many names (short forms included) are answered. */
  readonly size: number;
}

export interface NameTableInput {
  readonly registry: Registry;
  readonly resources: readonly Resource[];
  readonly autoAllocated?: AllocatedAddresses;
  /** The proxy's namespace: its Services answer to their bare name. */
  readonly namespace: string;
  /** The cluster domain (default cluster.local). */
  readonly domain?: string;
  /** The pod's first search domain (resolv.conf), whose expansions are answered with a CNAME. */
  readonly searchDomain?: string;
}

export function buildNameTable(input: NameTableInput): NameTable {
  const domain = (input.domain ?? 'cluster.local').toLowerCase();
  const entryAddresses = serviceEntryAddresses(input.resources);
  const names = new Map<string, string[]>();
  const put = (name: string, ips: readonly string[], replace: boolean): void => {
    const known = names.get(name);
    if (!known || replace) names.set(name, [...ips]);
    else for (const ip of ips) if (!known.includes(ip)) known.push(ip);
  };

  for (const [host, s] of input.registry.services) {
    if (!exportedTo(s.exportTo, s.namespace, input.namespace)) continue;
    if (s.kind === 'Service') {
      const ips = s.headless ? readyEndpointIps(s) : (s.addresses ?? []).filter((a) => isIP(a) !== 0);
      if (s.headless) for (const e of s.endpoints) if (e.hostname && e.ready && isIP(e.address) !== 0) put(`${e.hostname}.${host}`, [e.address], false);
      if (ips.length === 0) continue;
      for (const name of kubernetesNames(host, input.namespace, domain)) put(name, ips, true);
      continue;
    }
    const declared = entryAddresses.get(`${s.namespace}/${host}`);
    const ips = declared ?? input.autoAllocated?.get(host) ?? [];
    if (ips.length > 0) put(host, ips, false);
  }

  const wildcards = [...names.keys()].filter((n) => n.startsWith('*.'));
  const split = (ips: readonly string[]): NameRecords => Object.freeze({ ipv4: ips.filter((a) => isIP(a) === 4), ipv6: ips.filter((a) => isIP(a) === 6) });
  const records = new Map<string, NameRecords>([...names].map(([n, ips]) => [n, split(ips)]));
  const search = input.searchDomain?.toLowerCase().replace(/\.$/, '');
  if (search) {
    for (const [n, r] of [...records]) {
      const expanded = `${n}.${search}`;
      if (!n.startsWith('*.') && !records.has(expanded)) records.set(expanded, Object.freeze({ ...r, canonical: n }));
    }
  }
  return Object.freeze({
    size: records.size,
    lookup(name: string): NameRecords | undefined {
      const n = name.toLowerCase().replace(/\.$/, '');
      const exact = records.get(n);
      if (exact || wildcards.length === 0) return exact;
      // `*.example.com` covers `a.example.com` and `a.b.example.com`; the longest suffix wins.
      for (let dot = n.indexOf('.'); dot >= 0; dot = n.indexOf('.', dot + 1)) {
        const found = records.get(`*${n.slice(dot)}`);
        if (found) return found;
      }
      return undefined;
    },
  });
}

/** The FQDN and the short forms a pod's resolver may send unexpanded. */
function kubernetesNames(host: string, proxyNamespace: string, domain: string): string[] {
  const suffix = `.svc.${domain}`;
  if (!host.endsWith(suffix)) return [host];
  const [name, ns] = host.slice(0, -suffix.length).split('.');
  if (!name || !ns) return [host];
  return [host, `${name}.${ns}`, `${name}.${ns}.svc`, ...(ns === proxyNamespace ? [name] : [])];
}

function readyEndpointIps(s: Service): string[] {
  return [...new Set(s.endpoints.filter((e) => e.ready && isIP(e.address) !== 0).map((e) => e.address))];
}

/** `namespace/host` → the IPs of the `addresses` of the ServiceEntries naming that host there (CIDR blocks left out). */
function serviceEntryAddresses(resources: readonly Resource[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of resources) {
    const spec = r.spec;
    if (r.kind !== 'ServiceEntry' || !isRecord(spec) || !Array.isArray(spec.addresses) || !Array.isArray(spec.hosts)) continue;
    const ips = spec.addresses.filter((a): a is string => typeof a === 'string' && isIP(a) !== 0);
    for (const h of spec.hosts) {
      if (typeof h !== 'string') continue;
      const key = `${r.metadata.namespace}/${h.toLowerCase()}`;
      out.set(key, [...new Set([...(out.get(key) ?? []), ...ips])]);
    }
  }
  return out;
}
