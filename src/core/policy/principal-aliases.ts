// AuthorizationPolicy principals across trust domains (docs/tasks/trust-domain-migration.md): a
// principal (`principals`, `notPrincipals`, a `source.principal` condition) written for the current
// trust domain, one of its aliases, or `cluster.local` stands for the same workload in every one of
// them, so a policy written before a migration keeps matching after it. Istio rewrites each such
// principal into one per trust domain; this does the same, by these rules:
//   - only a principal of the SPIFFE form `<td>/ns/<ns>/sa/<sa>` (five '/'-separated parts) is
//     rewritten; any other principal, and one whose trust domain is exactly `*`, stays as written;
//   - its trust domain counts when it is `cluster.local` (a pointer to the current domain and its
//     aliases, whatever the current domain is), or matches one of the domains: equal, or either
//     side a `prefix*` or `*suffix` pattern of the other;
//   - it then becomes one principal per domain (current first): the same text where the principal's
//     `*suffix` pattern matches that domain, else that domain put in place of the first part;
//     duplicates dropped. A trust domain that does not count keeps the principal unchanged.
// Istio applies this with no alias too: `cluster*/ns/a/sa/b` then means the current domain's only.
// It runs when a policy is compiled, never per request.

import { DEFAULT_TRUST_DOMAIN } from '../pki/spiffe.js';
import type { TrustDomains } from '../pki/trust-domain.js';

/** The principals a policy's list stands for under these trust domains, in Istio's order. */
export function withTrustDomainAliases(tds: TrustDomains, principals: readonly string[]): readonly string[] {
  const domains = [tds.trustDomain, ...tds.aliases];
  const out: string[] = [];
  for (const principal of principals) {
    const td = principalTrustDomain(principal);
    if (td === undefined || td === '*' || outsideTrustDomains(tds, principal) !== undefined) {
      out.push(principal);
      continue;
    }
    const rest = principal.slice(td.length + 1);
    const forDomains: string[] = [];
    for (const d of domains) {
      const p = suffixPattern(td, d) ? principal : `${d}/${rest}`;
      if (!forDomains.includes(p)) forDomains.push(p);
    }
    out.push(...forDomains);
  }
  return out;
}

/** The trust domain part of a principal of the SPIFFE form `<td>/ns/<ns>/sa/<sa>`; undefined for any other form. */
export function principalTrustDomain(principal: string): string | undefined {
  const parts = principal.split('/');
  return parts.length === 5 ? parts[0] : undefined;
}

/**
 * Whether a principal can match no peer a sidecar accepts: of the SPIFFE form, in a trust domain
 * that is neither `*`, cluster.local, the current one nor an alias (nor a pattern of one of them).
 */
export function outsideTrustDomains(tds: TrustDomains, principal: string): string | undefined {
  const td = principalTrustDomain(principal);
  if (td === undefined || td === '*' || td === DEFAULT_TRUST_DOMAIN) return undefined;
  return [tds.trustDomain, ...tds.aliases].some((d) => sameDomain(td, d)) ? undefined : td;
}

/** `a` equals `b`, or one is a `prefix*` / `*suffix` pattern the other matches. */
function sameDomain(a: string, b: string): boolean {
  return a === b || b === '*' || prefixPattern(a, b) || prefixPattern(b, a) || suffixPattern(a, b) || suffixPattern(b, a);
}

function prefixPattern(pattern: string, value: string): boolean {
  return pattern.endsWith('*') && value.startsWith(pattern.slice(0, -1));
}

function suffixPattern(pattern: string, value: string): boolean {
  return pattern.startsWith('*') && value.endsWith(pattern.slice(1));
}
