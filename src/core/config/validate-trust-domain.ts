// The mesh config's trust domain fields (docs/tasks/trust-domain-migration.md): `trustDomain` and
// `trustDomainAliases`, checked as Istio's mesh config validation does (dot-separated DNS-1123
// labels, so no `*`, no upper case, no scheme or path), plus warnings for aliases that do nothing.
// An error rejects the mesh config, which keeps the last good one, as istiod refuses an invalid
// mesh config: a migration half-applied never silently widens or narrows whom a sidecar accepts.

import { trustDomainProblem } from '../pki/trust-domain.js';
import { asList, asString, type Checker, type Obj } from './validate-common.js';

export function checkTrustDomains(c: Checker, mesh: Obj, at: readonly (string | number)[]): void {
  const tdPath = [...at, 'trustDomain'];
  const td = mesh['trustDomain'] === undefined ? undefined : asString(c, mesh['trustDomain'], tdPath);
  // An empty string is proto3's unset: the default (cluster.local) stays.
  const tdProblem = td ? trustDomainProblem(td) : undefined;
  if (tdProblem) c.error(tdPath, tdProblem);
  const aliasesPath = [...at, 'trustDomainAliases'];
  const seen = new Set<string>();
  for (const [i, alias] of (asList(c, mesh['trustDomainAliases'], aliasesPath) ?? []).entries()) {
    const name = asString(c, alias, [...aliasesPath, i]);
    if (name === undefined) continue;
    const problem = trustDomainProblem(name);
    if (problem) c.error([...aliasesPath, i], `${problem}; an alias is a whole trust domain, without spiffe://, path or wildcard`);
    else if (name === (td || 'cluster.local')) c.warn([...aliasesPath, i], `${JSON.stringify(name)} is the trust domain itself; the alias changes nothing`);
    else if (seen.has(name)) c.warn([...aliasesPath, i], `${JSON.stringify(name)} is listed twice`);
    seen.add(name);
  }
}
