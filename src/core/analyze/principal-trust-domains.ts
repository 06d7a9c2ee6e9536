// AuthorizationPolicy principals in a trust domain the mesh does not accept. MG0009
// PrincipalOutsideTrustDomain: a principal `<td>/ns/<ns>/sa/<sa>` (in `principals`,
// `notPrincipals` or a `source.principal` condition) whose trust domain is neither the mesh
// config's trustDomain (cluster.local when unset), one of its trustDomainAliases, `cluster.local`
// nor a wildcard. Sidecars refuse mutual TLS from any other trust domain, so such a principal
// matches no caller: the usual cause is a trust domain migration without the old domain as an
// alias (docs/tasks/trust-domain-migration.md). Only when the mesh config names a trust domain or
// aliases: the control plane's --trust-domain flag is not in the configuration analyzed.

import type { Problem } from '../config/problem.js';
import type { FieldPath } from '../model/resource.js';
import { meshTrustDomains } from '../pki/trust-domain.js';
import { DEFAULT_TRUST_DOMAIN } from '../pki/spiffe.js';
import { outsideTrustDomains } from '../policy/principal-aliases.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export function principalTrustDomains(ctx: AnalysisContext): Problem[] {
  const policies = ctx.resources.filter((r) => r.kind === 'AuthorizationPolicy' && isObj(r.spec));
  if (policies.length === 0) return [];
  const mesh = meshTrustDomains(ctx.resources);
  // A mesh config silent on trust domains says nothing: the control plane's --trust-domain may name one.
  if (mesh.trustDomain === undefined && mesh.aliases.length === 0) return [];
  const tds = { trustDomain: mesh.trustDomain ?? DEFAULT_TRUST_DOMAIN, aliases: mesh.aliases };
  const known = [tds.trustDomain, ...tds.aliases].join(', ');
  const out: Problem[] = [];
  for (const p of policies) {
    const check = (values: unknown, path: FieldPath): void => {
      for (const [i, v] of list(values).entries()) {
        const td = typeof v === 'string' ? outsideTrustDomains(tds, v) : undefined;
        if (td === undefined) continue;
        out.push(finding(MESSAGES.PrincipalOutsideTrustDomain, p, [...path, i], `principal "${v}" is in trust domain ${td}, which is not the mesh's (${known}); sidecars refuse peers of that domain, so it matches no caller`, `add ${td} to trustDomainAliases in the mesh config, or write the principal with cluster.local (the current trust domain and its aliases)`));
      }
    };
    for (const [r, rule] of list((p.spec as Obj)['rules']).entries()) {
      if (!isObj(rule)) continue;
      for (const [f, from] of list(rule['from']).entries()) {
        const source = isObj(from) && isObj(from['source']) ? from['source'] : undefined;
        for (const field of ['principals', 'notPrincipals']) check(source?.[field], ['spec', 'rules', r, 'from', f, 'source', field]);
      }
      for (const [w, when] of list(rule['when']).entries()) {
        if (!isObj(when) || when['key'] !== 'source.principal') continue;
        for (const field of ['values', 'notValues']) check(when[field], ['spec', 'rules', r, 'when', w, field]);
      }
    }
  }
  return out;
}
