// Which DestinationRule applies to a service as seen from a proxy (docs/concepts/resilience.md): host short names
// resolved in the rule's namespace, exportTo visibility, the lookup order proxy namespace → service
// namespace → root namespace with the most specific host winning at each step, and the merge of
// several rules for one host (subsets concatenated, the oldest top-level trafficPolicy kept).

import type { DestinationRuleSpec, Labels, Subset, TrafficPolicy } from '../model/istio.js';
import type { Resource } from '../model/resource.js';
import { compareByCreation, resourceRef } from '../model/resource.js';
import { compareHostSpecificity, isWildcardHost, mostSpecificHost, resolveShortName } from '../registry/hostname.js';
import { labelsEqual, selectorMatches } from '../registry/labels.js';

export interface MergedDestinationRule {
  /** The resolved, lower-case host the rule(s) were written for (may be a wildcard). */
  readonly host: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets: readonly Subset[];
  /** `DestinationRule ns/name` of every rule merged in, oldest first. */
  readonly sources: readonly string[];
  /** The rule whose top-level trafficPolicy was kept. */
  readonly trafficPolicySource?: string;
  /** Subset name → the rule that defined it. */
  readonly subsetSources: ReadonlyMap<string, string>;
  /** Present when the rules apply only to proxies with these labels (in the rules' namespace). */
  readonly workloadSelector?: Labels;
}

export interface DestinationRuleIndex {
  /**
   * The rule for `hostname` (a registry host) used by a proxy in `proxyNamespace`. The service's
   * namespace is taken from a `<name>.<ns>.svc.<domain>` host when not given; `proxyLabels` decide
   * whether rules with a workloadSelector apply.
   */
  forHost(hostname: string, proxyNamespace: string, serviceNamespace?: string, proxyLabels?: Labels): MergedDestinationRule | undefined;
}

export interface DestinationRuleIndexOptions {
  readonly rootNamespace?: string;
  readonly domain?: string;
}

/** Rules being merged for one host within one scope; mutable only while the index is built. */
interface Consolidated {
  readonly host: string;
  readonly exportTo: ReadonlySet<string>;
  readonly selector?: Labels;
  trafficPolicy?: TrafficPolicy;
  trafficPolicySource?: string;
  subsets: Subset[];
  readonly subsetSources: Map<string, string>;
  sources: string[];
}

/** All rules visible from one scope (a namespace's own, a namespace's exported, the root's private), by host. */
class Scope {
  readonly byHost = new Map<string, Consolidated[]>();
  wildcards: Array<readonly [string, Consolidated[]]> = [];

  finish(): void {
    // Each list copied to exactly its length: filled by push, it kept room for 17 (a list of one,
    // twice per rule at 10,000 rules, was a few MB of the gateway's heap).
    for (const list of this.byHost.values()) {
      for (const c of list) {
        c.subsets = c.subsets.slice();
        c.sources = c.sources.slice();
      }
    }
    this.wildcards = [...this.byHost.entries()].filter(([h]) => isWildcardHost(h)).sort((a, b) => compareHostSpecificity(a[0], b[0]));
  }

  match(hostname: string): Consolidated[] | undefined {
    return mostSpecificHost(hostname, this.byHost, this.wildcards);
  }
}

interface Rule {
  readonly resource: Resource;
  readonly spec: DestinationRuleSpec;
  readonly host: string;
  readonly selector?: Labels;
  readonly exportTo: ReadonlySet<string>;
}

export function indexDestinationRules(resources: readonly Resource[], opts: DestinationRuleIndexOptions = {}): DestinationRuleIndex {
  const root = opts.rootNamespace ?? 'istio-system';
  const domain = opts.domain ?? 'cluster.local';
  const namespaceLocal = new Map<string, Scope>();
  const exported = new Map<string, Scope>();
  const rootLocal = new Scope();
  const scope = (m: Map<string, Scope>, ns: string): Scope => {
    let s = m.get(ns);
    if (!s) m.set(ns, (s = new Scope()));
    return s;
  };

  for (const rule of orderedRules(resources, domain)) {
    const ns = rule.resource.metadata.namespace;
    const ex = rule.exportTo;
    // The rule's own namespace sees it unless it is exported to nobody (`~`) or only elsewhere.
    if (ex.size === 0 || ex.has('*') || ex.has('.') || ex.has(ns)) merge(scope(namespaceLocal, ns), rule);
    const privateOnly = ex.size === 1 && (ex.has('.') || ex.has(ns));
    if (!privateOnly) merge(scope(exported, ns), rule);
    else if (ns === root) merge(rootLocal, rule);
  }
  for (const s of [...namespaceLocal.values(), ...exported.values(), rootLocal]) s.finish();

  const exportedFrom = (owner: string, hostname: string, client: string): Consolidated[] => {
    const found = exported.get(owner)?.match(hostname);
    if (!found) return [];
    return found.filter((c) => c.exportTo.size === 0 || c.exportTo.has('*') || c.exportTo.has(client));
  };

  const candidates = (hostname: string, proxyNs: string, serviceNs: string | undefined): Consolidated[] => {
    const local = proxyNs !== root ? namespaceLocal.get(proxyNs)?.match(hostname) : rootLocal.match(hostname);
    if (local) return local;
    if (serviceNs) {
      const fromService = exportedFrom(serviceNs, hostname, proxyNs);
      if (fromService.length > 0) return fromService;
    }
    return exportedFrom(root, hostname, proxyNs);
  };

  return {
    forHost(hostname, proxyNamespace, serviceNamespace, proxyLabels) {
      const host = hostname.toLowerCase();
      const list = candidates(host, proxyNamespace, serviceNamespace ?? namespaceOfServiceHost(host, domain));
      // A rule whose selector picks this proxy wins; otherwise the last rule without a selector.
      let catchAll: Consolidated | undefined;
      for (const c of list) {
        if (!c.selector) catchAll = c;
        else if (proxyLabels && selectorMatches(c.selector, proxyLabels)) return freeze(c);
      }
      return catchAll ? freeze(catchAll) : undefined;
    },
  };
}

/** `reviews.default.svc.cluster.local` → `default`; undefined for hosts of any other shape. */
export function namespaceOfServiceHost(hostname: string, domain = 'cluster.local'): string | undefined {
  const suffix = `.svc.${domain}`;
  if (!hostname.endsWith(suffix)) return undefined;
  const parts = hostname.slice(0, -suffix.length).split('.');
  return parts.length === 2 && parts[0] !== '' && parts[1] !== '' ? parts[1] : undefined;
}

/** Rules with a workloadSelector first, then creation order, so merges keep the oldest policy. */
function orderedRules(resources: readonly Resource[], domain: string): Rule[] {
  const rules: Rule[] = [];
  for (const r of resources) {
    if (r.kind !== 'DestinationRule' || !isRecord(r.spec)) continue;
    const spec = r.spec as unknown as DestinationRuleSpec;
    if (typeof spec.host !== 'string' || spec.host === '') continue;
    const selector = isRecord(spec.workloadSelector) ? (isRecord(spec.workloadSelector.matchLabels) ? spec.workloadSelector.matchLabels : {}) : undefined;
    // A rule that selects workloads never leaves its namespace.
    const exportTo = selector ? new Set(['.']) : new Set(Array.isArray(spec.exportTo) ? spec.exportTo.filter((e) => typeof e === 'string') : []);
    const host = resolveShortName(spec.host, r.metadata.namespace, domain).toLowerCase();
    rules.push({ resource: r, spec, host, ...(selector ? { selector } : {}), exportTo });
  }
  return rules.sort((a, b) => {
    if (!!a.selector !== !!b.selector) return a.selector ? -1 : 1;
    return compareByCreation(a.resource, b.resource);
  });
}

/**
 * Istio's merge of a rule into the rules already held for its host in one scope. Rules with the
 * same exportTo and compatible selectors merge; a rule that is exported more widely than an existing
 * one, or whose selector differs, is merged into it and also kept on its own.
 */
function merge(scope: Scope, rule: Rule): void {
  const list = scope.byHost.get(rule.host);
  if (!list) {
    scope.byHost.set(rule.host, [fresh(rule)]);
    return;
  }
  let separately = true;
  for (const c of list) {
    const bothWithout = !rule.selector && !c.selector;
    const bothWith = !!rule.selector && !!c.selector;
    const selectorsMatch = labelsEqual(rule.selector, c.selector);
    if (setsEqual(rule.exportTo, c.exportTo)) {
      separately = !(bothWithout || (bothWith && selectorsMatch));
    } else if (c.exportTo.size > 0 && isSuperset(rule.exportTo, c.exportTo)) {
      separately = true;
    } else {
      separately = true;
      continue;
    }
    if (bothWith && !selectorsMatch) {
      separately = true;
      continue;
    }
    if (bothWithout || (bothWith && selectorsMatch)) separately = false;
    absorb(c, rule);
  }
  if (separately) list.push(fresh(rule));
}

function fresh(rule: Rule): Consolidated {
  const ref = resourceRef(rule.resource);
  const c: Consolidated = {
    host: rule.host,
    exportTo: rule.exportTo,
    ...(rule.selector ? { selector: rule.selector } : {}),
    subsets: [],
    subsetSources: new Map(),
    sources: [],
  };
  absorb(c, rule, ref);
  return c;
}

function absorb(c: Consolidated, rule: Rule, ref = resourceRef(rule.resource)): void {
  c.sources.push(ref);
  for (const s of Array.isArray(rule.spec.subsets) ? rule.spec.subsets : []) {
    // A later rule's subset with a name already taken is ignored.
    if (typeof s !== 'object' || s === null || typeof s.name !== 'string' || c.subsetSources.has(s.name)) continue;
    c.subsets.push(s);
    c.subsetSources.set(s.name, ref);
  }
  if (c.trafficPolicy === undefined && isRecord(rule.spec.trafficPolicy)) {
    c.trafficPolicy = rule.spec.trafficPolicy;
    c.trafficPolicySource = ref;
  }
}

function freeze(c: Consolidated): MergedDestinationRule {
  return {
    host: c.host,
    ...(c.trafficPolicy ? { trafficPolicy: c.trafficPolicy } : {}),
    ...(c.trafficPolicySource ? { trafficPolicySource: c.trafficPolicySource } : {}),
    subsets: c.subsets,
    subsetSources: c.subsetSources,
    sources: c.sources,
    ...(c.selector ? { workloadSelector: c.selector } : {}),
  };
}

function setsEqual(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && isSuperset(a, b);
}

function isSuperset(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const x of b) if (!a.has(x)) return false;
  return true;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
