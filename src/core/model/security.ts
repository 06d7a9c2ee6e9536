// Readonly shapes of the security.istio.io resources meshgate accepts (PeerAuthentication and
// AuthorizationPolicy), field names exactly as Istio's API spells them. Validation (core/config)
// guarantees these shapes before anything reads them.

import type { Labels } from './istio.js';

export interface WorkloadSelector {
  readonly matchLabels?: Labels;
}

// ---------------------------------------------------------------- PeerAuthentication

/** UNSET inherits from the level above (PERMISSIVE when there is none). */
export type PeerAuthenticationMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface MutualTls {
  readonly mode?: PeerAuthenticationMode;
}

export interface PeerAuthenticationSpec {
  readonly selector?: WorkloadSelector;
  readonly mtls?: MutualTls;
  /** Keyed by the workload (container) port, written as a number; YAML map keys arrive as strings. */
  readonly portLevelMtls?: Readonly<Record<string, MutualTls>>;
}

// ---------------------------------------------------------------- AuthorizationPolicy

export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface PolicyTargetReference {
  readonly group?: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

/** Fields are ANDed; the values of one field are ORed; `not*` fields must match none of their values. */
export interface AuthorizationSource {
  readonly principals?: readonly string[];
  readonly notPrincipals?: readonly string[];
  readonly requestPrincipals?: readonly string[];
  readonly notRequestPrincipals?: readonly string[];
  readonly namespaces?: readonly string[];
  readonly notNamespaces?: readonly string[];
  readonly serviceAccounts?: readonly string[];
  readonly notServiceAccounts?: readonly string[];
  readonly trustDomains?: readonly string[];
  readonly ipBlocks?: readonly string[];
  readonly notIpBlocks?: readonly string[];
  readonly remoteIpBlocks?: readonly string[];
  readonly notRemoteIpBlocks?: readonly string[];
}

export interface AuthorizationOperation {
  readonly hosts?: readonly string[];
  readonly notHosts?: readonly string[];
  /** Port numbers written as strings, as Istio's API has them. */
  readonly ports?: readonly string[];
  readonly notPorts?: readonly string[];
  readonly methods?: readonly string[];
  readonly notMethods?: readonly string[];
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
}

export interface AuthorizationCondition {
  readonly key: string;
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
}

/** Matches when one `from`, one `to` and every `when` match; a missing `from` or `to` means any. */
export interface AuthorizationRule {
  readonly from?: ReadonlyArray<{ readonly source: AuthorizationSource }>;
  readonly to?: ReadonlyArray<{ readonly operation: AuthorizationOperation }>;
  readonly when?: readonly AuthorizationCondition[];
}

export interface AuthorizationPolicySpec {
  readonly selector?: WorkloadSelector;
  readonly targetRef?: PolicyTargetReference;
  readonly targetRefs?: readonly PolicyTargetReference[];
  /** ALLOW when omitted. */
  readonly action?: AuthorizationAction;
  readonly provider?: { readonly name?: string };
  /** Omitted or empty: an ALLOW policy matches nothing, so it denies everything in its scope. */
  readonly rules?: readonly AuthorizationRule[];
}

/** Annotation that turns an AuthorizationPolicy into a dry run: evaluated for show, never enforced. */
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

// ---------------------------------------------------------------- RequestAuthentication

/** A header a token is read from; the prefix (`Bearer `) is cut off, and a value without it holds no token. */
export interface JwtHeader {
  readonly name: string;
  readonly prefix?: string;
}

/** `outputClaimToHeaders`: a verified token's claim copied into a request header for the upstream. */
export interface ClaimToHeader {
  readonly header: string;
  readonly claim: string;
}

/** One issuer a workload accepts tokens from (Istio's JWTRule). */
export interface JwtRule {
  readonly issuer: string;
  readonly audiences?: readonly string[];
  readonly jwksUri?: string;
  /** A JSON Web Key Set written inline, as a JSON string. */
  readonly jwks?: string;
  readonly fromHeaders?: readonly JwtHeader[];
  readonly fromParams?: readonly string[];
  readonly fromCookies?: readonly string[];
  readonly outputPayloadToHeader?: string;
  readonly outputClaimToHeaders?: readonly ClaimToHeader[];
  readonly forwardOriginalToken?: boolean;
  /** How long a JWKS fetch may take (a duration, default 5s). */
  readonly timeout?: string;
}

export interface RequestAuthenticationSpec {
  readonly selector?: WorkloadSelector;
  readonly targetRef?: PolicyTargetReference;
  readonly targetRefs?: readonly PolicyTargetReference[];
  readonly jwtRules?: readonly JwtRule[];
}
