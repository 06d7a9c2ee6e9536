// Which pods get a sidecar, by Istio's rules:
//   namespace label `istio-injection: enabled|disabled` (it wins over `istio.io/rev` on the same
//   namespace), or `istio.io/rev: <revision>`; pod label `sidecar.istio.io/inject: "true"|"false"`
//   (the annotation of the same name is read when there is no label, as Istio still does).
//   If either the namespace or the pod says disabled, no sidecar; else if either says enabled, a
//   sidecar; else none. hostNetwork pods, pods already injected and pods in the cluster's own
//   namespaces never get one.
// In the cluster the API server applies the namespace half through the MutatingWebhookConfiguration's
// selectors (deploy/sidecar-injector.yaml); the webhook and `meshgate inject` apply the pod half.

export const INJECT_KEY = 'sidecar.istio.io/inject';
export const STATUS_ANNOTATION = 'sidecar.istio.io/status';
export const NAMESPACE_INJECTION_LABEL = 'istio-injection';
export const REVISION_LABEL = 'istio.io/rev';
export const DEFAULT_REVISION = 'default';
/** Istio's ignored namespaces: the cluster's own machinery never gets a sidecar. */
export const IGNORED_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage'];

export type Decision = { readonly inject: true } | { readonly inject: false; readonly reason: string };

type Json = Record<string, unknown>;

export interface SelectionContext {
  readonly namespace?: string;
  /**
   * The namespace's labels, when known. Undefined means the namespace was already selected (the API
   * server's selectors did it, or `meshgate inject` was asked to inject): only the pod can opt out.
   */
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  readonly revision?: string;
}

type Vote = 'enabled' | 'disabled' | undefined;

export function injectionDecision(pod: Json, ctx: SelectionContext = {}): Decision {
  const meta = (pod.metadata ?? {}) as Json;
  const spec = (pod.spec ?? {}) as Json;
  const labels = (meta.labels ?? {}) as Record<string, string>;
  const annotations = (meta.annotations ?? {}) as Record<string, string>;
  if (annotations[STATUS_ANNOTATION] !== undefined) return { inject: false, reason: `already injected (${STATUS_ANNOTATION} is set)` };
  if (spec.hostNetwork === true) return { inject: false, reason: 'hostNetwork pod: capture would take over the node' };
  if (ctx.namespace && IGNORED_NAMESPACES.includes(ctx.namespace)) return { inject: false, reason: `namespace ${ctx.namespace} is never injected` };
  const revision = ctx.revision ?? DEFAULT_REVISION;

  const podVote = voteOf(labels[INJECT_KEY] ?? annotations[INJECT_KEY]);
  const podRev = labels[REVISION_LABEL];
  const ns = ctx.namespaceLabels;
  let nsVote: Vote;
  if (ns) {
    const injection = ns[NAMESPACE_INJECTION_LABEL];
    if (injection !== undefined) nsVote = injection === 'enabled' ? 'enabled' : injection === 'disabled' ? 'disabled' : undefined;
    else if (ns[REVISION_LABEL] !== undefined) nsVote = ns[REVISION_LABEL] === revision ? 'enabled' : 'disabled';
  } else nsVote = 'enabled';

  if (podVote === 'disabled') return { inject: false, reason: `pod ${INJECT_KEY}: "false"` };
  if (nsVote === 'disabled') return { inject: false, reason: 'namespace disables injection (or names another revision)' };
  if (podVote === 'enabled' || nsVote === 'enabled') return { inject: true };
  if (podRev !== undefined) return podRev === revision ? { inject: true } : { inject: false, reason: `pod names revision ${podRev}` };
  return { inject: false, reason: `neither the namespace (${NAMESPACE_INJECTION_LABEL}=enabled) nor the pod (${INJECT_KEY}: "true") asks for a sidecar` };
}

function voteOf(value: string | undefined): Vote {
  if (value === undefined) return undefined;
  const v = value.toLowerCase();
  if (v === 'true' || v === 'yes' || v === 'y' || v === 'on') return 'enabled';
  if (v === 'false' || v === 'no' || v === 'n' || v === 'off') return 'disabled';
  return undefined;
}
