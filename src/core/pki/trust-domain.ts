// The mesh's trust domain and the trust domains it treats as its own (docs/tasks/trust-domain-migration.md).
// The mesh config (`trustDomain`, `trustDomainAliases` in the istio ConfigMap's `data.mesh`) names
// them; a proxy's own workload certificate names the domain its CA signs for now. Two questions are
// answered from them: which peers the inbound side accepts (the domain and its aliases, as Istio's
// inbound SAN check: `spiffe://<domain>/` prefixes), and which domains an AuthorizationPolicy
// principal is rewritten into (core/policy/principal-aliases.ts).

import type { Resource } from '../model/resource.js';
import { meshConfigOf } from '../telemetry/telemetry-policy.js';
import { DEFAULT_TRUST_DOMAIN, parseSpiffeId } from './spiffe.js';

/** The current trust domain first, then its aliases (no duplicates, the current one never among them). */
export interface TrustDomains {
  readonly trustDomain: string;
  readonly aliases: readonly string[];
  /** PILOT_SKIP_VALIDATE_TRUST_DOMAIN: a verified peer of any trust domain is accepted. */
  readonly anyPeer?: true;
}

/**
 * Istio's PILOT_SKIP_VALIDATE_TRUST_DOMAIN: istiod then writes no trust-domain check into the
 * proxies' inbound TLS, so a peer whose certificate chains to the mesh root is accepted whatever
 * trust domain it names. meshgate's proxies make that check themselves, so each reads the variable
 * from its own environment. True as Go's ParseBool reads it (`1`, `t`, `true`, `TRUE`, `True`, `T`);
 * anything else is false, as Istio's default.
 */
export const SKIP_VALIDATE_TRUST_DOMAIN_ENV = 'PILOT_SKIP_VALIDATE_TRUST_DOMAIN';

export function skipValidateTrustDomain(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(env[SKIP_VALIDATE_TRUST_DOMAIN_ENV] ?? '');
}

export const DEFAULT_TRUST_DOMAINS: TrustDomains = Object.freeze({ trustDomain: DEFAULT_TRUST_DOMAIN, aliases: Object.freeze([]) as readonly string[] });

// A DNS-1123 label: what Istio's mesh config validation asks of each dot-separated part.
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Why `name` is not a trust domain Istio's mesh config accepts (dot-separated DNS-1123 labels, a
 * trailing dot allowed), or undefined when it is one.
 */
export function trustDomainProblem(name: string): string | undefined {
  if (name === '') return 'an empty trust domain is not allowed';
  const labels = name.endsWith('.') ? name.slice(0, -1).split('.') : name.split('.');
  if (labels.some((l) => l.length > 63 || !LABEL.test(l))) return `trust domain ${JSON.stringify(name)} is not a domain name (lower-case letters, digits and '-' between dots)`;
  return undefined;
}

const usable = (v: unknown): v is string => typeof v === 'string' && trustDomainProblem(v) === undefined;

/** What the mesh config says: its trust domain when it names a valid one, and its valid aliases. */
export function meshTrustDomains(resources: readonly Resource[]): { readonly trustDomain?: string; readonly aliases: readonly string[] } {
  const mesh = meshConfigOf(resources);
  const td = mesh?.['trustDomain'];
  const aliases = mesh?.['trustDomainAliases'];
  return { ...(usable(td) ? { trustDomain: td } : {}), aliases: Array.isArray(aliases) ? aliases.filter(usable) : [] };
}

/**
 * A proxy's trust domains. The current one is its own certificate's: the CA wrote it, so the
 * control plane's choice (its --trust-domain, else the mesh config's) reaches every proxy the same
 * way and a proxy never disagrees with the certificate it presents. A proxy without a workload
 * certificate takes the mesh config's, else cluster.local. The aliases are the mesh config's; its
 * trustDomain counts as one when it differs from the certificate's, so a proxy not yet renewed
 * into the domain the mesh moved to still accepts the peers that were.
 */
export function trustDomainsOf(resources: readonly Resource[], ownSpiffeId: string | undefined, anyPeer = skipValidateTrustDomain()): TrustDomains {
  const mesh = meshTrustDomains(resources);
  const own = ownSpiffeId ? parseSpiffeId(ownSpiffeId)?.trustDomain : undefined;
  const trustDomain = own ?? mesh.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const aliases = [...new Set([...(mesh.trustDomain ? [mesh.trustDomain] : []), ...mesh.aliases])].filter((a) => a !== trustDomain);
  if (trustDomain === DEFAULT_TRUST_DOMAIN && aliases.length === 0 && !anyPeer) return DEFAULT_TRUST_DOMAINS;
  return Object.freeze({ trustDomain, aliases: Object.freeze(aliases), ...(anyPeer ? { anyPeer: true as const } : {}) });
}

/**
 * Whether a verified peer's SPIFFE id names a workload of the trust domain or one of its aliases
 * (of any trust domain under PILOT_SKIP_VALIDATE_TRUST_DOMAIN; it must still be a SPIFFE id).
 */
export function acceptsPeer(tds: TrustDomains, spiffeId: string | undefined): boolean {
  const td = spiffeId ? parseSpiffeId(spiffeId)?.trustDomain : undefined;
  return td !== undefined && (tds.anyPeer === true || td === tds.trustDomain || tds.aliases.includes(td));
}
