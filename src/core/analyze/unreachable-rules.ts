// IST0130 VirtualServiceUnreachableRule and IST0131 VirtualServiceIneffectiveMatch: HTTP rules are
// tried in order and the first match wins, so a rule after a catch-all (a rule with no match) can
// never be used, nor one whose every match an earlier rule already has; a single match that repeats
// an earlier one is dead weight.

import type { HTTPMatchRequest, VirtualServiceSpec } from '../model/istio.js';
import type { Resource } from '../model/resource.js';
import type { Problem } from '../config/problem.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

/** Findings by VirtualService: they depend on its own rules alone, so an unchanged one (the same frozen object) is not looked at again on a reload. */
const byVirtualService = new WeakMap<Resource, readonly Problem[]>();

export function unreachableRules(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  for (const vs of ctx.virtualServices) {
    const known = byVirtualService.get(vs);
    if (known) {
      out.push(...known);
      continue;
    }
    const first = out.length;
    unreachableIn(vs, out);
    byVirtualService.set(vs, out.slice(first));
  }
  return out;
}

function unreachableIn(vs: Resource<VirtualServiceSpec>, out: Problem[]): void {
  const rules = Array.isArray(vs.spec.http) ? vs.spec.http : [];
  const seen = new Map<string, number>();
  let catchAll: number | undefined;
  rules.forEach((rule, i) => {
    if (!rule || typeof rule !== 'object') return;
    const at = ['spec', 'http', i];
    const label = rule.name ? `${i} ("${rule.name}")` : String(i);
    if (catchAll !== undefined) {
      out.push(finding(MESSAGES.VirtualServiceUnreachableRule, vs, at, `http rule ${label} is never used: rule ${catchAll} before it has no match and takes every request`, 'move the rule without match to the end, or give it a match'));
      return;
    }
    const matches: readonly HTTPMatchRequest[] = Array.isArray(rule.match) ? rule.match : [];
    if (matches.length === 0 || matches.some(isEmptyMatch)) {
      catchAll = i;
      return;
    }
    const keys: string[] = matches.map(matchKey);
    const repeats = keys.map((k) => seen.get(k));
    if (repeats.every((r) => r !== undefined)) {
      out.push(finding(MESSAGES.VirtualServiceUnreachableRule, vs, at, `http rule ${label} is never used: each of its matches is already in an earlier rule (${[...new Set(repeats)].join(', ')})`, 'remove the rule or change its matches'));
    } else {
      repeats.forEach((r, m) => {
        if (r !== undefined) out.push(finding(MESSAGES.VirtualServiceIneffectiveMatch, vs, [...at, 'match', m], `match ${m} of http rule ${label} is never used: rule ${r} has the same match`, 'remove this match'));
      });
    }
    keys.forEach((k) => seen.has(k) || seen.set(k, i));
  });
}

function isEmptyMatch(m: HTTPMatchRequest): boolean {
  return !m || Object.keys(m).filter((k) => k !== 'name').length === 0;
}

/** A match as comparable text: its name does not change what it matches; key order does not either. */
function matchKey(m: HTTPMatchRequest): string {
  const { name: _name, ...rest } = m ?? {};
  return stable(rest);
}

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}
