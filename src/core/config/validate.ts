// Entry point of configuration validation: one resource in, its problems out, dispatched by kind.
// validateAll() splits a loaded set into what may be used and what may not: a resource with any
// error is left out, one with only warnings is kept. Neither function throws, whatever the input.

import type { Resource } from '../model/resource.js';
import { resourceRef } from '../model/resource.js';
import { hasErrors, type Problem } from './problem.js';
import { Checker, describe, isDnsLabel, isDnsSubdomain, isObj, type Obj } from './validate-common.js';
import { validatePod } from './validate-kube.js';
import { whenNeeded } from '../runtime/when-needed.js';

export { parseDuration } from './validate-common.js';

type SpecValidator = (c: Checker, spec: Obj) => void;

/**
 * Each kind's validator: its module (`validate-<file>.js`) and export. A module is loaded with the
 * first resource of a kind it validates (runtime/when-needed.ts), so a process holds only the
 * validators of the kinds it is given: the control plane sends a sidecar no Gateway, Issuer or
 * Certificate, and Gateway API routes only when a Service it calls has them.
 */
type ValidatorAt = readonly [file: string, name: string];

const BY_KIND: Readonly<Record<string, ValidatorAt>> = {
  Gateway: ['gateway', 'validateGateway'],
  VirtualService: ['virtual-service', 'validateVirtualService'],
  DestinationRule: ['destination-rule', 'validateDestinationRule'],
  ServiceEntry: ['service-entry', 'validateServiceEntry'],
  WorkloadEntry: ['service-entry', 'validateWorkloadEntry'],
  Sidecar: ['sidecar', 'validateSidecar'],
  PeerAuthentication: ['peer-authentication', 'validatePeerAuthentication'],
  AuthorizationPolicy: ['authorization-policy', 'validateAuthorizationPolicy'],
  RequestAuthentication: ['request-authentication', 'validateRequestAuthentication'],
  Service: ['kube', 'validateService'],
  Issuer: ['cert-manager', 'validateIssuer'],
  ClusterIssuer: ['cert-manager', 'validateIssuer'],
  Certificate: ['cert-manager', 'validateCertificate'],
  RateLimitPolicy: ['rate-limit', 'validateRateLimitPolicy'],
  EnvoyFilter: ['envoy-filter', 'validateEnvoyFilter'],
  Telemetry: ['telemetry', 'validateTelemetry'],
  GatewayClass: ['gateway-api', 'validateGatewayClass'],
  KubernetesGateway: ['gateway-api', 'validateK8sGateway'],
  HTTPRoute: ['gateway-api', 'validateHTTPRoute'],
  GRPCRoute: ['gateway-api', 'validateGRPCRoute'],
  TLSRoute: ['gateway-api', 'validateL4Route'],
  TCPRoute: ['gateway-api', 'validateL4Route'],
  ReferenceGrant: ['gateway-api', 'validateReferenceGrant'],
  BackendTLSPolicy: ['backend-tls', 'validateBackendTLSPolicy'],
  Ingress: ['ingress', 'validateIngress'],
  IngressClass: ['ingress', 'validateIngressClass'],
};

/** Kinds whose payload sits beside `metadata` rather than under `spec`. */
const TOP_LEVEL: Readonly<Record<string, ValidatorAt>> = {
  EndpointSlice: ['kube', 'validateEndpointSlice'],
  Endpoints: ['kube', 'validateEndpoints'],
  ConfigMap: ['telemetry', 'validateConfigMap'],
};

// Every validator module is named here, as this module loads; each is loaded when first asked for.
const modules = new Map<string, () => Readonly<Record<string, SpecValidator>>>(
  [...new Set([...Object.values(BY_KIND), ...Object.values(TOP_LEVEL)].map(([file]) => file))].map((file) => [file, whenNeeded(`./validate-${file}.js`, import.meta.url)]),
);

function validatorAt(at: ValidatorAt | undefined): SpecValidator | undefined {
  if (!at) return undefined;
  const [file, name] = at;
  const load = modules.get(file);
  if (!load) throw new Error(`no validator module validate-${file}.js`);
  const validator = load()[name];
  if (typeof validator !== 'function') throw new Error(`validate-${file}.js has no ${name}`);
  return validator;
}

/** Kinds whose names are checked here (Istio's rules; meshgate's own kinds follow them). */
const ISTIO_KINDS = new Set(['Gateway', 'VirtualService', 'DestinationRule', 'ServiceEntry', 'WorkloadEntry', 'Sidecar', 'PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication', 'RateLimitPolicy', 'Telemetry', 'EnvoyFilter']);

export function validateResource(r: Resource): Problem[] {
  let c: Checker | undefined;
  try {
    c = new Checker(r);
    checkMetadata(c, r);
    const byKind = validatorAt(BY_KIND[r.kind]);
    const topLevel = validatorAt(TOP_LEVEL[r.kind]);
    if (byKind) {
      if (isObj(r.spec)) byKind(c, r.spec);
      else c.error(['spec'], `spec must be a mapping, not ${describe(r.spec)}`);
    } else if (topLevel) {
      topLevel(c, isObj(r.raw) ? r.raw : {});
    } else if (r.kind === 'Pod') {
      validatePod(c, isObj(r.spec) ? r.spec : {}, isObj(r.raw) ? r.raw : {});
    }
    // Secret is not validated yet.
    // File order reads best; the sort is stable, so problems on one line keep their order.
    return c.problems.sort((a, b) => a.line - b.line);
  } catch (err) {
    // A validator bug must not take the process down; the resource is reported and left out.
    return [...(c?.problems ?? []), internalProblem(r, err)];
  }
}

/**
 * What validateResource() said about each resource object. A resource is frozen and its problems
 * depend on it alone, so a reload that keeps a file's resources (the same objects) does not
 * validate them again: an edit re-validates what it changed, not the whole folder.
 */
const validated = new WeakMap<Resource, readonly Problem[]>();

function validateOnce(r: Resource): readonly Problem[] {
  let found = validated.get(r);
  if (!found) validated.set(r, (found = validateResource(r)));
  return found;
}

export function validateAll(resources: readonly Resource[]): { valid: Resource[]; problems: Problem[] } {
  const valid: Resource[] = [];
  const problems: Problem[] = [];
  const first = new Map<string, Resource>();
  for (const r of Array.isArray(resources) ? resources : []) {
    // Two objects with one kind, namespace and name cannot both exist in a cluster; the API server
    // would keep the later write. Here the first stands and the later one is refused, by name.
    const key = `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
    const earlier = first.get(key);
    if (earlier) {
      problems.push({
        severity: 'error',
        file: r.origin.file,
        line: r.origin.line,
        resource: resourceRef(r),
        field: 'metadata.name',
        code: 'MG0001',
        message: `duplicate: ${resourceRef(r)} is already defined at ${earlier.origin.file}:${earlier.origin.line}; this one is left out (rename one, or delete one)`,
      });
      continue;
    }
    first.set(key, r);
    const found = validateOnce(r);
    problems.push(...found);
    if (!hasErrors(found)) valid.push(r);
  }
  return { valid, problems };
}

function checkMetadata(c: Checker, r: Resource): void {
  const { name, namespace } = r.metadata;
  if (!isDnsLabel(namespace)) c.error(['metadata', 'namespace'], `namespace ${JSON.stringify(namespace)} may use only a-z, 0-9 and '-' (at most 63)`);
  if (!ISTIO_KINDS.has(r.kind)) return;
  // Gateways are referenced as namespace/name, so Istio wants a name without dots.
  if (r.kind === 'Gateway' ? !isDnsLabel(name) : !isDnsSubdomain(name)) {
    c.error(['metadata', 'name'], `name ${JSON.stringify(name)} may use only a-z, 0-9 and '-'${r.kind === 'Gateway' ? '' : " and '.'"}`);
  }
}

function internalProblem(r: Resource, err: unknown): Problem {
  let line = 0;
  let file = '';
  let resource = '';
  try {
    file = r.origin.file;
    line = r.origin.line;
    resource = resourceRef(r);
  } catch {
    // nothing more to say about where it came from
  }
  const why = err instanceof Error ? err.message : String(err);
  return { severity: 'error', file, line, resource, field: '', message: `could not be validated (${why}); left out` };
}
