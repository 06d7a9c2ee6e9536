// The mTLS mode a workload accepts on each of its ports, composed from PeerAuthentication the way
// Istio does it (docs/security.md): mesh (root namespace, no selector) < namespace (no selector) <
// workload (selector, own namespace only), each level's oldest policy alone counting, UNSET inheriting
// from the level above, and the workload policy's portLevelMtls on top. It governs what a sidecar's
// inbound side accepts; clients read it too, for auto mTLS: a workload whose mode is DISABLE on a
// port is sent plaintext there, as Istio's client proxies do.

import type { Resource } from '../model/resource.js';
import { compareByCreation, resourceRef } from '../model/resource.js';
import { selectorMatches } from '../registry/labels.js';

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface WorkloadRef {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface PeerAuthenticationPolicy {
  /** Effective mode for a workload (container) port: portLevelMtls > workload > namespace > mesh > PERMISSIVE. */
  modeFor(port: number): MtlsMode;
  /** `PeerAuthentication ns/name` that decided the mode for that port, or undefined when none applies. */
  sourceFor(port: number): string | undefined;
}

interface Decided {
  readonly mode: MtlsMode;
  readonly source?: string;
}

const DEFAULT: Decided = Object.freeze({ mode: 'PERMISSIVE' });

export function compilePeerAuthentication(resources: readonly Resource[], workload: WorkloadRef, rootNamespace = 'istio-system'): PeerAuthenticationPolicy {
  let mesh: Resource | undefined;
  let namespace: Resource | undefined;
  let workloadLevel: Resource | undefined;
  const older = (a: Resource, b: Resource | undefined): boolean => b === undefined || compareByCreation(a, b) < 0;
  for (const r of resources) {
    if (r.kind !== 'PeerAuthentication') continue;
    const ns = r.metadata.namespace;
    if (ns !== workload.namespace && ns !== rootNamespace) continue;
    const selector = matchLabelsOf(r.spec);
    if (selector === undefined) {
      if (ns === rootNamespace) {
        if (older(r, mesh)) mesh = r;
      } else if (older(r, namespace)) namespace = r;
    } else if (ns !== rootNamespace && selectorMatches(selector, workload.labels)) {
      // Selector policies in the root namespace are ignored: the root namespace has no workload level.
      if (older(r, workloadLevel)) workloadLevel = r;
    }
  }

  let base = DEFAULT;
  for (const r of [mesh, namespace, workloadLevel]) {
    const mode = r ? modeOf(obj(r.spec).mtls) : undefined;
    if (r && mode) base = { mode, source: resourceRef(r) };
  }
  const perPort = new Map<number, Decided>();
  const ports = workloadLevel ? obj(workloadLevel.spec).portLevelMtls : undefined;
  if (workloadLevel && isObj(ports)) {
    const source = resourceRef(workloadLevel);
    for (const [key, value] of Object.entries(ports)) {
      const port = Number(key);
      if (!Number.isInteger(port) || port < 1 || port > 65535) continue;
      const mode = modeOf(value);
      // An UNSET port entry inherits the workload-level result, wherever that came from.
      perPort.set(port, mode ? { mode, source } : base);
    }
  }
  const at = (port: number): Decided => perPort.get(port) ?? base;
  return {
    modeFor: (port) => at(port).mode,
    sourceFor: (port) => at(port).source,
  };
}

/**
 * The effective mode of any workload, for clients deciding auto mTLS at snapshot build: the
 * PeerAuthentication resources are picked out once, and each distinct workload (namespace + labels)
 * is composed once. Undefined when there is no PeerAuthentication at all (everything is PERMISSIVE).
 */
export function peerAuthenticationIndex(resources: readonly Resource[], rootNamespace = 'istio-system'): ((workload: WorkloadRef) => PeerAuthenticationPolicy) | undefined {
  const policies = resources.filter((r) => r.kind === 'PeerAuthentication');
  if (policies.length === 0) return undefined;
  const composed = new Map<string, PeerAuthenticationPolicy>();
  return (workload) => {
    const key = JSON.stringify([workload.namespace, Object.entries(workload.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
    let policy = composed.get(key);
    if (!policy) composed.set(key, (policy = compilePeerAuthentication(policies, workload, rootNamespace)));
    return policy;
  };
}

/** Non-empty matchLabels, or undefined for a mesh- or namespace-wide policy (no selector, or no labels in it). */
function matchLabelsOf(spec: unknown): Record<string, string> | undefined {
  const selector = obj(spec).selector;
  const labels = isObj(selector) ? selector.matchLabels : undefined;
  if (!isObj(labels) || Object.keys(labels).length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) out[k] = typeof v === 'string' ? v : String(v);
  return out;
}

/** The mode a `{mode}` block sets, or undefined when it inherits (UNSET, or no block). */
function modeOf(mtls: unknown): MtlsMode | undefined {
  const mode = isObj(mtls) ? mtls.mode : undefined;
  return mode === 'STRICT' || mode === 'PERMISSIVE' || mode === 'DISABLE' ? mode : undefined;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown): Record<string, unknown> {
  return isObj(v) ? v : {};
}
