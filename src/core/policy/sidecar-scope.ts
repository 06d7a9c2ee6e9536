// Istio's `Sidecar` resource: which one applies to a workload, and which hosts its `egress[].hosts`
// import (the control plane narrows what it sends a sidecar by them). The applicable Sidecar is the one in the workload's
// namespace whose `workloadSelector` selects it, else the one of that namespace without a selector,
// else the root namespace's one without a selector (the mesh-wide default). Egress hosts are
// `namespace/dnsName`: the namespace `*` (every namespace), `.` (the workload's namespace, also when
// the Sidecar is the root namespace's default), `~` (none) or a name; the dnsName `*`, `*.suffix` or
// a host. No applicable Sidecar, or one without egress listeners, imports everything visible.

import { isRecord } from '../config/load.js';
import { compareByCreation, type Resource } from '../model/resource.js';
import { hostMatches } from '../registry/hostname.js';
import { selectorMatches } from '../registry/labels.js';

export interface EgressHost {
  /** A namespace name, `*`, or `~` (matches nothing). `.` is already replaced by the workload's namespace. */
  readonly namespace: string;
  /** `*`, `*.suffix` or a host. */
  readonly dnsName: string;
}

/** What a workload imports: undefined = everything its namespace can see (no Sidecar narrows it). */
export type EgressScope = readonly EgressHost[] | undefined;

/** The Sidecars of one configuration, by namespace, ready to answer for any workload. */
export class SidecarIndex {
  readonly #byNamespace = new Map<string, Resource[]>();

  constructor(
    sidecars: readonly Resource[],
    private readonly rootNamespace: string,
  ) {
    for (const s of [...sidecars].sort(compareByCreation)) {
      const list = this.#byNamespace.get(s.metadata.namespace) ?? [];
      list.push(s);
      this.#byNamespace.set(s.metadata.namespace, list);
    }
  }

  /** The Sidecar that applies to a workload, or undefined. */
  applicable(namespace: string, labels: Readonly<Record<string, string>>): Resource | undefined {
    const own = this.#byNamespace.get(namespace) ?? [];
    // Among several that select it Istio's behaviour is undefined; the oldest is the stable choice.
    const selecting = own.find((s) => {
      const sel = workloadSelector(s);
      return sel !== undefined && selectorMatches(sel, labels);
    });
    if (selecting) return selecting;
    const nsDefault = own.find((s) => workloadSelector(s) === undefined);
    if (nsDefault) return nsDefault;
    if (namespace === this.rootNamespace) return undefined;
    return (this.#byNamespace.get(this.rootNamespace) ?? []).find((s) => workloadSelector(s) === undefined);
  }

  /** The egress hosts of the Sidecar applying to a workload (see EgressScope). */
  egressOf(namespace: string, labels: Readonly<Record<string, string>>): EgressScope {
    const sidecar = this.applicable(namespace, labels);
    if (!sidecar) return undefined;
    const spec = isRecord(sidecar.spec) ? sidecar.spec : {};
    const egress = Array.isArray(spec.egress) ? spec.egress : [];
    if (egress.length === 0) return undefined;
    const hosts: EgressHost[] = [];
    for (const listener of egress) {
      if (!isRecord(listener) || !Array.isArray(listener.hosts)) continue;
      for (const h of listener.hosts) {
        if (typeof h !== 'string') continue;
        const slash = h.indexOf('/');
        if (slash <= 0) continue;
        const ns = h.slice(0, slash);
        hosts.push({ namespace: ns === '.' ? namespace : ns, dnsName: h.slice(slash + 1) });
      }
    }
    return hosts;
  }
}

/** Istio's outboundTrafficPolicy modes: pass unknown hosts through, or refuse them. */
export type OutboundTrafficMode = 'ALLOW_ANY' | 'REGISTRY_ONLY';

/** `{ mode: ... }` of a Sidecar's or the mesh config's outboundTrafficPolicy; undefined when unset or not a mode. */
export function outboundModeIn(policy: unknown): OutboundTrafficMode | undefined {
  const mode = isRecord(policy) ? policy.mode : undefined;
  return mode === 'ALLOW_ANY' || mode === 'REGISTRY_ONLY' ? mode : undefined;
}

/** Whether `host` of namespace `namespace` (a service's, or a VirtualService's) is imported. */
export function imports(scope: EgressScope, namespace: string, host: string): boolean {
  if (!scope) return true;
  for (const e of scope) {
    if (e.namespace === '~') continue;
    if (e.namespace !== '*' && e.namespace !== namespace) continue;
    if (e.dnsName === '*' || hostMatches(e.dnsName, host)) return true;
  }
  return false;
}

function workloadSelector(s: Resource): Record<string, string> | undefined {
  const spec = isRecord(s.spec) ? s.spec : {};
  const ws = spec.workloadSelector;
  if (!isRecord(ws) || !isRecord(ws.labels) || Object.keys(ws.labels).length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(ws.labels)) if (typeof v === 'string') out[k] = v;
  return out;
}
