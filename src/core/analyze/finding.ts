// What an analyzer reports: a Problem (file, line, resource, field, message) with Istio's message
// code and name (IST0101 ReferencedResourceNotFound …) where Istio has one, and meshgate's own
// (MG…) where it does not, so findings can be searched for, suppressed and scripted against.

import type { FieldPath, Resource } from '../model/resource.js';
import { problemAt, type Problem, type Severity } from '../config/problem.js';

export interface MessageType {
  readonly code: string;
  readonly name: string;
  readonly severity: Severity;
}

/** The message types meshgate reports, by code; the codes and names are Istio's where it has one. */
export const MESSAGES = {
  ReferencedResourceNotFound: { code: 'IST0101', name: 'ReferencedResourceNotFound', severity: 'error' },
  SchemaValidationError: { code: 'IST0106', name: 'SchemaValidationError', severity: 'error' },
  ConflictingMeshGatewayVirtualServiceHosts: { code: 'IST0109', name: 'ConflictingMeshGatewayVirtualServiceHosts', severity: 'error' },
  PortNameIsNotUnderNamingConvention: { code: 'IST0118', name: 'PortNameIsNotUnderNamingConvention', severity: 'info' },
  ConflictingSidecarWorkloadSelectors: { code: 'IST0110', name: 'ConflictingSidecarWorkloadSelectors', severity: 'error' },
  MultipleSidecarsWithoutWorkloadSelectors: { code: 'IST0111', name: 'MultipleSidecarsWithoutWorkloadSelectors', severity: 'error' },
  VirtualServiceDestinationPortSelectorRequired: { code: 'IST0112', name: 'VirtualServiceDestinationPortSelectorRequired', severity: 'error' },
  JwtFailureDueToInvalidServicePortPrefix: { code: 'IST0119', name: 'JwtFailureDueToInvalidServicePortPrefix', severity: 'warning' },
  NoMatchingWorkloadsFound: { code: 'IST0127', name: 'NoMatchingWorkloadsFound', severity: 'warning' },
  NoServerCertificateVerificationDestinationLevel: { code: 'IST0128', name: 'NoServerCertificateVerificationDestinationLevel', severity: 'warning' },
  NoServerCertificateVerificationPortLevel: { code: 'IST0129', name: 'NoServerCertificateVerificationPortLevel', severity: 'warning' },
  VirtualServiceUnreachableRule: { code: 'IST0130', name: 'VirtualServiceUnreachableRule', severity: 'warning' },
  VirtualServiceIneffectiveMatch: { code: 'IST0131', name: 'VirtualServiceIneffectiveMatch', severity: 'info' },
  VirtualServiceHostNotFoundInGateway: { code: 'IST0132', name: 'VirtualServiceHostNotFoundInGateway', severity: 'warning' },
  SchemaWarning: { code: 'IST0133', name: 'SchemaWarning', severity: 'warning' },
  ServiceEntryAddressesRequired: { code: 'IST0134', name: 'ServiceEntryAddressesRequired', severity: 'warning' },
  GatewayDuplicateCertificate: { code: 'IST0138', name: 'GatewayDuplicateCertificate', severity: 'warning' },
  ConflictingGateways: { code: 'IST0145', name: 'ConflictingGateways', severity: 'error' },
  InvalidTelemetryProvider: { code: 'IST0157', name: 'InvalidTelemetryProvider', severity: 'warning' },
  ConflictingTelemetryWorkloadSelectors: { code: 'IST0159', name: 'ConflictingTelemetryWorkloadSelectors', severity: 'error' },
  MultipleTelemetriesWithoutWorkloadSelectors: { code: 'IST0160', name: 'MultipleTelemetriesWithoutWorkloadSelectors', severity: 'error' },
  JwtClaimBasedRoutingWithoutRequestAuthN: { code: 'IST0149', name: 'JwtClaimBasedRoutingWithoutRequestAuthN', severity: 'error' },
  GatewayPortNotDefinedOnService: { code: 'IST0162', name: 'GatewayPortNotDefinedOnService', severity: 'warning' },
  DuplicateResource: { code: 'MG0001', name: 'DuplicateResource', severity: 'error' },
  ReferenceNotPermitted: { code: 'MG0002', name: 'ReferenceNotPermitted', severity: 'error' },
  EmptyConfigFile: { code: 'MG0003', name: 'EmptyConfigFile', severity: 'warning' },
  NoRoutes: { code: 'MG0004', name: 'NoRoutes', severity: 'warning' },
  InvalidExtAuthzProvider: { code: 'MG0005', name: 'InvalidExtAuthzProvider', severity: 'error' },
  GatewayApiCondition: { code: 'MG0006', name: 'GatewayApiCondition', severity: 'warning' },
  IngressNotServed: { code: 'MG0007', name: 'IngressNotServed', severity: 'warning' },
  SidecarIngressTlsIgnored: { code: 'MG0008', name: 'SidecarIngressTlsIgnored', severity: 'warning' },
  PrincipalOutsideTrustDomain: { code: 'MG0009', name: 'PrincipalOutsideTrustDomain', severity: 'warning' },
} as const satisfies Record<string, MessageType>;

/** A finding on one field of one resource; `fix` says what to do, in a sentence. */
export function finding(type: MessageType, resource: Resource, path: FieldPath, message: string, fix: string): Problem {
  return { ...problemAt(resource, path, `${message}; ${fix}`, type.severity), code: type.code };
}
