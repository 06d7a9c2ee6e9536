// buildSnapshot(): loaded resources in, one frozen snapshot out, for one proxy role. It validates,
// keeps the last good version of anything broken, builds the registry and the clusters, and
// compiles the routes: the Gateway servers of a gateway, or the outbound mesh routes of a sidecar.
// It never throws for bad input: problems come back as values.

import { autoAllocateAddresses } from '../registry/auto-allocate.js';
import type { Problem } from '../config/problem.js';
import { validateAll } from '../config/validate.js';
import type { LoadResult } from '../config/load.js';
import type { GatewaySpec, VirtualServiceSpec } from '../model/istio.js';
import type { RateLimitPolicySpec } from '../model/rate-limit.js';
import type { Resource } from '../model/resource.js';
import { indexDestinationRules } from '../policy/destination-rules.js';
import { buildCluster, type ClusterDeps } from '../policy/cluster.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, meshConnectTimeoutMs } from '../policy/connection-limits.js';
import { DEFAULT_ROOT_NAMESPACE, meshConfigOf } from '../telemetry/telemetry-policy.js';
import { meshTrustDomains } from '../pki/trust-domain.js';
import { compileMeshTcp } from '../routing/mesh-tcp-routes.js';
import { LiveClusters } from '../policy/live-clusters.js';
import { peerAuthenticationIndex } from '../policy/peer-authentication.js';
import { compileRateLimits } from '../policy/rate-limit-table.js';
import { compileExtAuthzProviders } from '../policy/ext-authz-providers.js';
import type { Cluster, EndpointLoad } from '../policy/types.js';
import { clusterName } from '../policy/types.js';
import { buildRegistry } from '../registry/build.js';
import { workloadServicePorts } from '../registry/workload-port-protocol.js';
import { compileGateway, type CompiledGateway } from '../routing/compile.js';
import { compileMesh } from '../routing/compile-mesh.js';
import { deferredFindings, withProblems } from './deferred-findings.js';
import { emptiedFileProblems } from './emptied-files.js';
import type { GatewayApiTranslation } from '../gateway-api/translate.js';
import { ROUTE_KINDS } from '../model/gateway-api.js';
import { whenNeeded } from '../runtime/when-needed.js';
import { keepLastGood } from './last-good.js';
import { clusterDeps as reuseDeps, reuseCluster } from './cluster-reuse.js';
import { destinationRulePass, keepPasses, registryPass, sameClusterInputs } from './pass-reuse.js';
import type { ProxyRole, Snapshot } from './snapshot.js';

// What only some builds run, loaded with the first build that does (runtime/when-needed.ts): a
// sidecar translates Gateway API routes only when it is sent some (those attached to the Services it
// calls), and never checks a gateway's ACME credentials.
const gatewayApiModule = whenNeeded<typeof import('../gateway-api/translate.js')>('../gateway-api/translate.js', import.meta.url);
const acmeModule = whenNeeded<typeof import('./acme-credentials.js')>('./acme-credentials.js', import.meta.url);
// Ingresses are translated only by a gateway given some.
const ingressModule = whenNeeded<typeof import('../ingress/translate.js')>('../ingress/translate.js', import.meta.url);
// BackendTLSPolicies become DestinationRules for gateways and sidecars alike, when there are any.
const backendTlsModule = whenNeeded<typeof import('../gateway-api/backend-tls-rules.js')>('../gateway-api/backend-tls-rules.js', import.meta.url);
const MESH_ROUTE_KINDS: ReadonlySet<string> = new Set(ROUTE_KINDS);
/** What the translation gives a sidecar for a set without routes (test/gateway-api-units.test.ts holds it to that). */
export const NO_MESH_ROUTES: GatewayApiTranslation = Object.freeze({ gateways: [], virtualServices: [], meshVirtualServices: [], status: Object.freeze({ gatewayClasses: [], gateways: [], routes: [], policies: [] }), problems: [] });

export interface SnapshotDeps {
  readonly random: () => number;
  readonly load: EndpointLoad;
  /** Circuit-breaker and outlier-detection state that must survive reloads (one per proxy). */
  readonly live?: LiveClusters;
  readonly domain?: string;
  readonly now?: () => Date;
}

export interface BuildResult {
  readonly snapshot: Snapshot;
  /** Everything found, parse problems included. */
  readonly problems: readonly Problem[];
  /**
   * What the analyzers of src/core/analyze/ found across resources (IST codes); none for a sidecar.
   * Kept apart from `problems`: they are reported and listed (snapshot.problems) but never refuse a
   * configuration.
   * Computed on first read (of this or of snapshot.problems), so that a snapshot serves before the
   * analyzers have run.
   */
  readonly findings: readonly Problem[];
}

export function buildSnapshot(loaded: LoadResult, role: ProxyRole, deps: SnapshotDeps, previous?: Snapshot, version = (previous?.version ?? 0) + 1): BuildResult {
  const domain = deps.domain ?? 'cluster.local';
  const { valid, problems: validationProblems } = validateAll(loaded.resources);
  const validSet = new Set(valid);
  const invalid = loaded.resources.filter((r) => !validSet.has(r));
  const reconciled = keepLastGood(previous?.resources, valid, invalid, loaded.problems);
  const resources = reconciled.resources;

  const registryKept = registryPass(previous, resources, domain, () => buildRegistry(resources, { domain }));
  const { registry, problems: registryProblems } = registryKept.result;
  // The rules BackendTLSPolicies stand for go first: their TLS is what a Service they target gets.
  const withPolicyRules = resources.some((r) => r.kind === 'BackendTLSPolicy') ? [...backendTlsModule().backendTlsDestinationRules(resources, domain), ...resources] : resources;
  const rulesKept = destinationRulePass(previous, withPolicyRules, domain, () => indexDestinationRules(withPolicyRules, { domain }));
  const rules = rulesKept.result;
  const clusters = new Map<string, Cluster>();
  const peerAuthentication = peerAuthenticationIndex(resources);
  const connectTimeoutMs = meshConnectTimeoutMs(meshConfigOf(resources));
  const meshDomains = meshTrustDomains(resources);
  const trustDomainAliases = [...new Set([...(meshDomains.trustDomain ? [meshDomains.trustDomain] : []), ...meshDomains.aliases])];
  const clusterDeps: ClusterDeps = {
    ...deps,
    ...(connectTimeoutMs !== DEFAULT_CONNECT_TIMEOUT_MS ? { meshConnectTimeoutMs: connectTimeoutMs } : {}),
    ...(trustDomainAliases.length > 0 ? { trustDomainAliases } : {}),
    live: deps.live ?? new LiveClusters(),
    proxy: { locality: role.locality ?? '', labels: role.labels },
    ...(peerAuthentication ? { peerAuthentication } : {}),
  };
  const missing = new Set<string>();
  const sameDeps = reuseDeps(clusterDeps, peerAuthentication ? ofKind(resources, 'PeerAuthentication') : []);
  // Built from the same registry, rules, proxy and deps as the snapshot before: a cluster it had is
  // the one reuseCluster() would give again, without a registry and a rule lookup per destination.
  const kept = previous && sameClusterInputs(previous, registryKept, rulesKept, role.namespace, sameDeps) ? previous.clusters : undefined;
  const cluster = (host: string, port: number, subset: string): Cluster | undefined => {
    const name = clusterName(port, subset, host);
    const known = clusters.get(name);
    if (known || missing.has(name)) return known;
    const carried = kept?.get(name);
    if (carried) {
      clusters.set(name, carried);
      return carried;
    }
    const service = registry.lookup(host);
    const servicePort = service?.ports.find((p) => p.number === port);
    let built: Cluster | undefined;
    if (service && servicePort) {
      const dr = rules.forHost(service.hostname, role.namespace, service.namespace, role.labels);
      built = reuseCluster(service, servicePort, subset, dr, sameDeps, () => buildCluster(service, servicePort, subset, dr, clusterDeps));
    }
    if (built) clusters.set(name, built);
    else missing.add(name);
    return built;
  };

  // Gateway API resources join as the Istio Gateways and VirtualServices they stand for: a gateway
  // takes the routes attached to its Gateways, a sidecar those attached to Services (mesh-bound).
  // A sidecar's translation takes only routes; with none in the set it is NO_MESH_ROUTES.
  const gatewayApi =
    role.kind === 'gateway'
      ? gatewayApiModule().translateGatewayApi({ resources, registry, domain, ...(role.ports ? { servicePorts: role.ports } : {}), ...(role.gatewayNames ? { only: role.gatewayNames } : {}) })
      : resources.some((r) => MESH_ROUTE_KINDS.has(r.kind))
        ? gatewayApiModule().translateGatewayApi({ resources, registry, domain, scope: 'mesh' })
        : NO_MESH_ROUTES;
  // Kubernetes Ingresses join the same way, as the Gateways and VirtualServices istiod makes of them.
  const ingress = role.kind === 'gateway' && resources.some((r) => r.kind === 'Ingress') ? ingressModule().translateIngress({ resources, registry, domain }) : undefined;
  const gateways = [...ofKind<GatewaySpec>(resources, 'Gateway'), ...gatewayApi.gateways, ...(ingress?.gateways ?? [])];
  const virtualServices = [
    ...ofKind<VirtualServiceSpec>(resources, 'VirtualService'),
    ...(role.kind === 'gateway' ? gatewayApi.virtualServices : gatewayApi.meshVirtualServices),
    ...(ingress?.virtualServices ?? []),
  ];
  const routing = { virtualServices, registry, proxyLabels: role.labels, proxyNamespace: role.namespace, domain, cluster };
  const subsetsOf = (host: string, serviceNamespace: string): string[] => rules.forHost(host, role.namespace, serviceNamespace, role.labels)?.subsets.map((s) => s.name) ?? [];
  // A sidecar has no Gateway listeners: its route configs are looked up by the port the app called.
  const compiled: CompiledGateway = role.kind === 'sidecar' ? { listeners: new Map(), ...compileMesh(routing) } : compileGateway({ ...routing, gateways, servicePorts: role.ports, subsetsOf });
  const autoAllocated = role.kind === 'sidecar' && role.dnsAutoAllocate ? autoAllocateAddresses(resources, registry) : undefined;
  const meshTcp = role.kind === 'sidecar' ? compileMeshTcp({ ...routing, resources, ...(autoAllocated ? { autoAllocated } : {}) }) : undefined;

  const rateLimits = compileRateLimits({
    policies: ofKind<RateLimitPolicySpec>(resources, 'RateLimitPolicy'),
    virtualServices,
    gateways,
    listeners: compiled.listeners,
    routeConfigs: compiled.routeConfigs,
    envoyFilters: ofKind(resources, 'EnvoyFilter'),
    role,
    rootNamespace: rootNamespaceOf(resources),
    ...(role.kind === 'sidecar' ? { servicePorts: (ports: readonly number[]) => workloadServicePorts(registry, role, ports) } : {}),
  });

  // A CUSTOM policy's authorizer is reached through a cluster of its own, as a route's destination is.
  const extAuthz = compileExtAuthzProviders(resources, (host, port) => cluster(host, port, ''));

  const acme = role.kind === 'gateway' ? acmeModule().acmeProblems(compiled.listeners, resources) : [];
  const emptied = emptiedFileProblems(loaded, previous?.resources);
  const problems = [...reconciled.loadProblems, ...emptied, ...validationProblems, ...reconciled.problems, ...registryProblems, ...gatewayApi.problems, ...compiled.problems, ...rateLimits.problems, ...acme];
  // The analyzers run when their findings are first read (the Reloader reads them right after the swap).
  // Not in a sidecar: as Envoy does not, it takes its set from a control plane that analyzes the whole
  // mesh (a sidecar's set is its scoped part of it) and logs the findings; what protects the proxy,
  // validation, still refuses a set here.
  const analysis = deferredFindings(resources, role.kind === 'gateway' ? { domain, registry, gatewayLabels: [role.labels] } : undefined, problems);
  const snapshot = withProblems(
    {
      version,
      createdAt: deps.now?.() ?? new Date(),
      resources,
      registry,
      clusters,
      listeners: compiled.listeners,
      routeConfigs: compiled.routeConfigs,
      ...(meshTcp ? { meshTcp } : {}),
      ...(autoAllocated ? { autoAllocated } : {}),
      role,
      rateLimits: rateLimits.table,
      ...(extAuthz.size > 0 ? { extAuthz } : {}),
      ...(connectTimeoutMs !== DEFAULT_CONNECT_TIMEOUT_MS ? { connectTimeoutMs } : {}),
      gatewayApi: gatewayApi.status,
    },
    analysis.all,
  );
  keepPasses(snapshot, { registry: registryKept, rules: rulesKept, namespace: role.namespace, clusterDeps: sameDeps });
  return {
    snapshot,
    problems,
    get findings() {
      return analysis.findings();
    },
  };
}

/** The mesh config's rootNamespace: its policies (an EnvoyFilter among them) apply to every namespace. */
function rootNamespaceOf(resources: readonly Resource[]): string {
  const root = meshConfigOf(resources)?.['rootNamespace'];
  return typeof root === 'string' ? root : DEFAULT_ROOT_NAMESPACE;
}

export function ofKind<S>(resources: readonly Resource[], kind: string): Resource<S>[] {
  return resources.filter((r) => r.kind === kind) as Resource<S>[];
}
