// The list of analyzers `meshgate analyze`, hot reload and the control plane run. To add one: write
// `src/core/analyze/<name>.ts` exporting `(ctx: AnalysisContext) => Problem[]` (build each finding
// with `finding()` and a message type from `MESSAGES` in finding.ts, adding the type there if it is
// new), and add it to this list. Each analyzer reads only the context; none may throw for bad input
// (a throw is caught and reported as an internal error of that analyzer).

import type { Problem } from '../config/problem.js';
import type { AnalysisContext } from './context.js';
import { conflictingGateways } from './conflicting-gateways.js';
import { conflictingMeshHosts } from './conflicting-mesh-hosts.js';
import { duplicateCertificate } from './duplicate-certificate.js';
import { extAuthzProviders } from './ext-authz-providers.js';
import { gatewayApiReferences } from './gateway-api-references.js';
import { gatewayPortOnService } from './gateway-port-on-service.js';
import { hostNotInGateway } from './host-not-in-gateway.js';
import { ingressReferences } from './ingress-references.js';
import { jwtClaimRouting } from './jwt-claim-routing.js';
import { noMatchingWorkloads } from './no-matching-workloads.js';
import { portNaming } from './port-naming.js';
import { portSelectorRequired } from './port-selector-required.js';
import { principalTrustDomains } from './principal-trust-domains.js';
import { referencedResourceNotFound } from './referenced-resource-not-found.js';
import { serverCertificateVerification } from './server-certificate-verification.js';
import { serviceEntryAddresses } from './service-entry-addresses.js';
import { sidecarSelectors } from './sidecar-selectors.js';
import { sidecarIngressTls } from './sidecar-ingress-tls.js';
import { jwtServicePorts } from './jwt-service-ports.js';
import { telemetryProviders } from './telemetry-providers.js';
import { unreachableRules } from './unreachable-rules.js';

export interface Analyzer {
  readonly name: string;
  run(ctx: AnalysisContext): Problem[];
}

export const ANALYZERS: readonly Analyzer[] = [
  { name: 'referenced-resource-not-found', run: referencedResourceNotFound },
  { name: 'no-matching-workloads', run: noMatchingWorkloads },
  { name: 'conflicting-mesh-hosts', run: conflictingMeshHosts },
  { name: 'port-selector-required', run: portSelectorRequired },
  { name: 'unreachable-rules', run: unreachableRules },
  { name: 'host-not-in-gateway', run: hostNotInGateway },
  { name: 'conflicting-gateways', run: conflictingGateways },
  { name: 'server-certificate-verification', run: serverCertificateVerification },
  { name: 'service-entry-addresses', run: serviceEntryAddresses },
  { name: 'duplicate-certificate', run: duplicateCertificate },
  { name: 'gateway-api-references', run: gatewayApiReferences },
  { name: 'ingress-references', run: ingressReferences },
  { name: 'telemetry-providers', run: telemetryProviders },
  { name: 'gateway-port-on-service', run: gatewayPortOnService },
  { name: 'port-naming', run: portNaming },
  { name: 'jwt-claim-routing', run: jwtClaimRouting },
  { name: 'jwt-service-ports', run: jwtServicePorts },
  { name: 'sidecar-selectors', run: sidecarSelectors },
  { name: 'sidecar-ingress-tls', run: sidecarIngressTls },
  { name: 'ext-authz-providers', run: extAuthzProviders },
  { name: 'principal-trust-domains', run: principalTrustDomains },
];
