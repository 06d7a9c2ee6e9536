// Which resources of the control plane's set concern one proxy: the configuration it is sent is
// this subset, never the whole set. What decides it is what the proxy is (a sidecar or a gateway),
// its namespace (from the identity its token proved, never from what it says), and its labels.
//
// A sidecar receives the services it imports (exportTo visible to its namespace, narrowed by the
// applicable Sidecar's egress.hosts), the services its own labels select (its inbound), the
// VirtualServices bound to the mesh that it imports and the services they route to, the
// DestinationRules, endpoints and pods of those services, and the security and telemetry policies
// that select it (its namespace and the root namespace, by selector), plus the PeerAuthentications
// of the namespaces it sends to (whether a destination takes mutual TLS is decided by them), and
// the Sidecar resource that applies to it (it reads outboundTrafficPolicy there), and the HTTPRoutes
// and GRPCRoutes attached to Services it imports that apply to it (mesh-route-scope.ts).
// A gateway receives the Istio Gateways that select its labels, the VirtualServices bound to them,
// the Gateway API, Ingress and cert-manager kinds, every service exported to its namespace with its
// endpoints and rules, and the policies that select it.
// Nobody receives Secrets (proxies read TLS material through their own credential store), another
// namespace's AuthorizationPolicy/RequestAuthentication/Telemetry that does not select it, the
// Sidecars of other workloads, ConfigMaps other than the mesh config and the CAs of the
// BackendTLSPolicies of the Services it sends to (sent with those policies), or any kind not listed
// here: what is not known to be needed is not sent. A Pod that is sent is cut down to what makes it
// an endpoint (pod-for-proxies.ts).

import { isRecord } from '../core/config/load.js';
import { policyCaConfigMapNames } from '../core/model/gateway-api.js';
import { SERVICE_NAME_LABEL } from '../core/model/kube.js';
import type { Resource } from '../core/model/resource.js';
import { appliesTo } from '../core/policy/authorization.js';
import { hostMatches, isWildcardHost, resolveShortName } from '../core/registry/hostname.js';
import { selectorMatches } from '../core/registry/labels.js';
import { exportedTo, MESH_GATEWAY, selectsProxy, vsGateways } from '../core/routing/gateway-binding.js';
import { DEFAULT_ROOT_NAMESPACE } from '../core/telemetry/telemetry-policy.js';
import type { GatewaySpec, VirtualServiceSpec } from '../core/model/istio.js';
import { imports, SidecarIndex, type EgressScope } from '../core/policy/sidecar-scope.js';
import { envoyFilterSelects } from '../core/policy/envoy-filter-limits.js';
import { meshRoutesFor } from './mesh-route-scope.js';

export type ProxyRole = 'sidecar' | 'gateway';

/** What the control plane knows of a proxy for scoping. */
export interface ProxyMeta {
  readonly role: ProxyRole;
  /** The namespace of the proxy's authenticated identity. */
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** `role|namespace|labels`: proxies with the same key receive the same subset. */
export function scopeKey(p: ProxyMeta): string {
  const labels = Object.keys(p.labels).sort().map((k) => `${k}=${p.labels[k]}`).join(',');
  return `${p.role}|${p.namespace}|${labels}`;
}

const MESH_CONFIG_MAP = 'istio';
const GATEWAY_ONLY_KINDS = new Set(['GatewayClass', 'KubernetesGateway', 'HTTPRoute', 'GRPCRoute', 'TLSRoute', 'TCPRoute', 'ReferenceGrant', 'Issuer', 'ClusterIssuer', 'Certificate', 'Ingress', 'IngressClass']);
const WORKLOAD_POLICIES = new Set(['AuthorizationPolicy', 'RequestAuthentication', 'Telemetry']);

interface ServiceLike {
  readonly resource: Resource;
  readonly namespace: string;
  readonly hosts: readonly string[];
  readonly exportTo: readonly string[] | undefined;
}

/** One configuration, indexed once per push so that each proxy's subset is a pass over it. */
export class ScopeIndex {
  readonly rootNamespace: string;
  readonly sidecars: SidecarIndex;
  readonly #services: ServiceLike[] = [];
  readonly #byKind = new Map<string, Resource[]>();

  constructor(
    readonly resources: readonly Resource[],
    readonly domain = 'cluster.local',
  ) {
    for (const r of resources) {
      const list = this.#byKind.get(r.kind);
      if (list) list.push(r);
      else this.#byKind.set(r.kind, [r]);
    }
    this.rootNamespace = rootNamespaceOf(this.kind('ConfigMap'));
    this.sidecars = new SidecarIndex(this.kind('Sidecar'), this.rootNamespace);
    for (const r of this.kind('Service')) {
      const ann = r.metadata.annotations['networking.istio.io/exportTo'];
      const exportTo = ann ? ann.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
      this.#services.push({ resource: r, namespace: r.metadata.namespace, hosts: [`${r.metadata.name}.${r.metadata.namespace}.svc.${domain}`], exportTo });
    }
    for (const r of this.kind('ServiceEntry')) {
      const spec = isRecord(r.spec) ? r.spec : {};
      const hosts = Array.isArray(spec.hosts) ? spec.hosts.filter((h): h is string => typeof h === 'string') : [];
      this.#services.push({ resource: r, namespace: r.metadata.namespace, hosts, exportTo: stringList(spec.exportTo) });
    }
  }

  kind(kind: string): readonly Resource[] {
    return this.#byKind.get(kind) ?? [];
  }

  /** The hosts of ServiceEntry `namespace/name` (a mesh route's parent). */
  entryHosts(namespace: string, name: string): readonly string[] {
    const entry = this.#services.find((s) => s.resource.kind === 'ServiceEntry' && s.namespace === namespace && s.resource.metadata.name === name);
    return entry ? entry.hosts.map((h) => h.toLowerCase()) : [];
  }

  /** The subset of the configuration that concerns `p`. */
  scope(p: ProxyMeta): Set<Resource> {
    const out = new Set<Resource>();
    const egress: EgressScope = p.role === 'sidecar' ? this.sidecars.egressOf(p.namespace, p.labels) : undefined;
    const workload = { namespace: p.namespace, labels: p.labels };
    // Its own Sidecar resource, for what the sidecar reads of it itself (outboundTrafficPolicy).
    const sidecar = p.role === 'sidecar' ? this.sidecars.applicable(p.namespace, p.labels) : undefined;
    if (sidecar) out.add(sidecar);

    // Routes first: a sidecar's imported VirtualServices pull in the services they route to.
    const wantedHosts: string[] = [];
    const boundGateways = new Set<string>();
    if (p.role === 'gateway') {
      for (const g of this.kind('Gateway')) {
        if (selectsProxy(g as Resource<GatewaySpec>, p.labels)) {
          out.add(g);
          boundGateways.add(`${g.metadata.namespace}/${g.metadata.name}`);
        }
      }
    }
    for (const vs of this.kind('VirtualService')) {
      const spec = (isRecord(vs.spec) ? vs.spec : {}) as VirtualServiceSpec;
      const ns = vs.metadata.namespace;
      if (!exportedTo(spec.exportTo, ns, p.namespace)) continue;
      const hosts = Array.isArray(spec.hosts) ? spec.hosts.filter((h): h is string => typeof h === 'string') : [];
      // A VirtualService without hosts is a delegate: whoever delegates to it may need it.
      let wanted = hosts.length === 0;
      if (!wanted) {
        const bound = vsGateways(spec, ns);
        if (p.role === 'sidecar') wanted = bound.has(MESH_GATEWAY) && hosts.some((h) => imports(egress, ns, resolveShortName(h, ns, this.domain)));
        else wanted = [...bound].some((g) => boundGateways.has(g));
      }
      if (!wanted) continue;
      out.add(vs);
      if (p.role === 'sidecar') for (const d of destinationHosts(spec)) wantedHosts.push(resolveShortName(d, ns, this.domain));
    }

    // Routes attached to Services (Gateway API mesh support) are the sidecar's VirtualServices too;
    // a cross-namespace backendRef needs the ReferenceGrants to be judged.
    if (p.role === 'sidecar') {
      const mesh = meshRoutesFor([...this.kind('HTTPRoute'), ...this.kind('GRPCRoute'), ...this.kind('TCPRoute'), ...this.kind('TLSRoute')], p.namespace, (ns, h) => imports(egress, ns, h), this.domain, (ns, name) => this.entryHosts(ns, name));
      for (const r of mesh.routes) out.add(r);
      wantedHosts.push(...mesh.backendHosts);
      if (mesh.routes.length > 0) for (const g of this.kind('ReferenceGrant')) out.add(g);
    }

    // Services: visible to the proxy's namespace and imported, routed to, or selecting the proxy itself.
    const hosts = new Set<string>();
    const wildcardHosts: string[] = [];
    const serviceNamespaces = new Set<string>([p.namespace]);
    const kubeServices = new Set<string>();
    const entryNamespaces = new Set<string>();
    for (const s of this.#services) {
      const own = s.resource.kind === 'Service' && s.namespace === p.namespace && selectsWorkload(s.resource, p.labels);
      if (!own) {
        if (!exportedTo(s.exportTo, s.namespace, p.namespace)) continue;
        if (!s.hosts.some((h) => imports(egress, s.namespace, h) || wantedHosts.some((w) => hostMatches(w, h)))) continue;
      }
      out.add(s.resource);
      serviceNamespaces.add(s.namespace);
      for (const h of s.hosts) {
        if (isWildcardHost(h)) wildcardHosts.push(h);
        else hosts.add(h);
      }
      if (s.resource.kind === 'Service') kubeServices.add(`${s.namespace}/${s.resource.metadata.name}`);
      else entryNamespaces.add(s.namespace);
    }
    const hostIncluded = (h: string): boolean => {
      if (!isWildcardHost(h) && hosts.has(h)) return true;
      for (const w of wildcardHosts) if (hostMatches(w, h)) return true;
      if (isWildcardHost(h)) for (const x of hosts) if (hostMatches(h, x)) return true;
      return false;
    };

    const caConfigMaps = new Set<string>();
    for (const r of this.resources) {
      const ns = r.metadata.namespace;
      switch (r.kind) {
        case 'EndpointSlice':
          if (kubeServices.has(`${ns}/${r.metadata.labels[SERVICE_NAME_LABEL] ?? ''}`)) out.add(r);
          break;
        case 'Endpoints':
          if (kubeServices.has(`${ns}/${r.metadata.name}`)) out.add(r);
          break;
        case 'Pod':
          if (serviceNamespaces.has(ns)) out.add(r);
          break;
        case 'WorkloadEntry':
          if (entryNamespaces.has(ns)) out.add(r);
          break;
        case 'DestinationRule':
          if (destinationRuleWanted(r, p, hostIncluded, this.domain)) out.add(r);
          break;
        case 'PeerAuthentication':
          // Its own (by selector), the mesh-wide ones, and those of namespaces it sends to.
          if (appliesTo(r, workload, this.rootNamespace) || ns === this.rootNamespace || (serviceNamespaces.has(ns) && ns !== p.namespace)) out.add(r);
          break;
        case 'ConfigMap':
          if (r.metadata.name === MESH_CONFIG_MAP && ns === DEFAULT_ROOT_NAMESPACE) out.add(r);
          break;
        case 'BackendTLSPolicy':
          // Gateways and sidecars alike originate TLS by it, to the Services they send to.
          if (policyTargets(r).some((t) => kubeServices.has(`${ns}/${t}`))) {
            out.add(r);
            for (const ca of policyCaConfigMapNames(r.spec)) caConfigMaps.add(`${ns}/${ca}`);
          }
          break;
        case 'EnvoyFilter':
          // Its own namespace's, or the root namespace's, when the selector picks this proxy.
          if (envoyFilterSelects(r, { namespace: p.namespace, labels: p.labels }, this.rootNamespace)) out.add(r);
          break;
        case 'Namespace':
        case 'RateLimitPolicy':
          out.add(r);
          break;
        default:
          if (WORKLOAD_POLICIES.has(r.kind)) {
            if (appliesTo(r, workload, this.rootNamespace)) out.add(r);
          } else if (GATEWAY_ONLY_KINDS.has(r.kind)) {
            if (p.role === 'gateway') out.add(r);
          }
        // Secret, other workloads' Sidecars, and kinds not named here: never sent.
      }
    }
    // The CA ConfigMaps of the BackendTLSPolicies sent, and no other.
    for (const cm of caConfigMaps.size > 0 ? this.kind('ConfigMap') : []) if (caConfigMaps.has(`${cm.metadata.namespace}/${cm.metadata.name}`)) out.add(cm);
    return out;
  }
}

function destinationRuleWanted(r: Resource, p: ProxyMeta, hostIncluded: (h: string) => boolean, domain: string): boolean {
  const spec = isRecord(r.spec) ? r.spec : {};
  const ns = r.metadata.namespace;
  const ws = isRecord(spec.workloadSelector) && isRecord(spec.workloadSelector.matchLabels) ? (spec.workloadSelector.matchLabels as Record<string, string>) : undefined;
  if (ws) {
    // A rule with a workloadSelector is its own namespace's, for the workloads it selects.
    if (ns !== p.namespace || !selectorMatches(ws, p.labels)) return false;
  } else if (!exportedTo(stringList(spec.exportTo), ns, p.namespace)) return false;
  return typeof spec.host === 'string' && hostIncluded(resolveShortName(spec.host, ns, domain));
}

/** The Services (names, in the policy's namespace) a BackendTLSPolicy targets. */
function policyTargets(r: Resource): string[] {
  const refs = isRecord(r.spec) && Array.isArray(r.spec.targetRefs) ? (r.spec.targetRefs as unknown[]) : [];
  return refs.flatMap((t) => (isRecord(t) && t.group === '' && t.kind === 'Service' && typeof t.name === 'string' ? [t.name] : []));
}

function selectsWorkload(service: Resource, labels: Readonly<Record<string, string>>): boolean {
  const spec = isRecord(service.spec) ? service.spec : {};
  if (!isRecord(spec.selector) || Object.keys(spec.selector).length === 0) return false;
  return selectorMatches(spec.selector as Record<string, string>, labels);
}

/** Every host a VirtualService sends traffic to (routes and mirrors of http, tls and tcp). */
function destinationHosts(spec: VirtualServiceSpec): string[] {
  const out: string[] = [];
  const add = (d: unknown): void => {
    if (isRecord(d) && typeof d.host === 'string') out.push(d.host);
  };
  for (const section of [spec.http, spec.tls, spec.tcp] as unknown[]) {
    if (!Array.isArray(section)) continue;
    for (const rule of section) {
      if (!isRecord(rule)) continue;
      if (Array.isArray(rule.route)) for (const rt of rule.route) if (isRecord(rt)) add(rt.destination);
      add(rule.mirror);
      if (Array.isArray(rule.mirrors)) for (const m of rule.mirrors) if (isRecord(m)) add(m.destination);
    }
  }
  return out;
}

function stringList(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : undefined;
}

/** The mesh config's rootNamespace (ConfigMap istio in istio-system, `data.mesh`), default istio-system. */
function rootNamespaceOf(configMaps: readonly Resource[]): string {
  const cm = configMaps.find((r) => r.metadata.name === MESH_CONFIG_MAP && r.metadata.namespace === DEFAULT_ROOT_NAMESPACE);
  const data = cm && isRecord(cm.raw.data) ? cm.raw.data : undefined;
  const mesh = data && typeof data.mesh === 'string' ? data.mesh : '';
  const m = /^rootNamespace:\s*["']?([a-z0-9-]+)["']?\s*$/m.exec(mesh);
  return m?.[1] ?? DEFAULT_ROOT_NAMESPACE;
}
