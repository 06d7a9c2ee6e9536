// Offline injection of a whole manifest, like `istioctl kube-inject`: every Pod and every workload
// with a pod template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob,
// ReplicationController) gets the sidecar in its pod; everything else passes through unchanged.
// Multi-document YAML in, multi-document YAML out, in the same order.

import { parseAllDocuments, stringify } from 'yaml';
import { injectPod, type InjectOptions } from './inject-pod.js';
import { injectionDecision } from './selection.js';
import { InjectionError } from './proxy-config.js';

type Json = Record<string, unknown>;

export interface InjectedDocument {
  readonly kind: string;
  readonly name: string;
  /** Undefined when the document was injected; otherwise why not (passed through). */
  readonly skipped?: string;
}

export interface KubeInjectResult {
  readonly yaml: string;
  readonly documents: InjectedDocument[];
  readonly problems: string[];
}

/** Where a kind keeps its pod template. */
function templateOf(doc: Json): Json | undefined {
  const spec = doc.spec as Json | undefined;
  switch (doc.kind) {
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
    case 'ReplicationController':
      return spec?.template as Json | undefined;
    case 'CronJob':
      return ((spec?.jobTemplate as Json | undefined)?.spec as Json | undefined)?.template as Json | undefined;
    default:
      return undefined;
  }
}

export function kubeInject(text: string, opts: InjectOptions, source = 'input'): KubeInjectResult {
  const out: string[] = [];
  const documents: InjectedDocument[] = [];
  const problems: string[] = [];
  for (const d of parseAllDocuments(text)) {
    if (d.errors.length > 0) {
      problems.push(`${source}: ${d.errors[0]!.message}`);
      continue;
    }
    const doc = d.toJS() as unknown;
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      out.push(stringify(doc));
      continue;
    }
    const obj = doc as Json;
    const meta = (obj.metadata ?? {}) as Json;
    const kind = String(obj.kind ?? '');
    const name = String(meta.name ?? '');
    const namespace = typeof meta.namespace === 'string' ? meta.namespace : 'default';
    if (kind === 'Pod') {
      const decision = injectionDecision(obj, { namespace });
      const injected = decision.inject ? injectOrReport(obj, { ...opts, workloadName: opts.workloadName ?? name }, `${source}: Pod ${name}`, problems) : undefined;
      out.push(stringify(injected ?? obj));
      documents.push({ kind, name, ...(decision.inject ? {} : { skipped: decision.reason }) });
      continue;
    }
    const template = templateOf(obj);
    if (!template) {
      out.push(stringify(obj));
      documents.push({ kind, name, skipped: 'no pod template' });
      continue;
    }
    const decision = injectionDecision(template, { namespace });
    if (!decision.inject) {
      out.push(stringify(obj));
      documents.push({ kind, name, skipped: decision.reason });
      continue;
    }
    const owner = { apiVersion: String(obj.apiVersion ?? 'apps/v1'), kind, name, namespace };
    const injected = injectOrReport(template, { ...opts, owner }, `${source}: ${kind} ${name}`, problems);
    if (!injected) continue;
    const copy = structuredClone(obj);
    const spec = copy.spec as Json;
    if (kind === 'CronJob') ((spec.jobTemplate as Json).spec as Json).template = injected;
    else spec.template = injected;
    out.push(stringify(copy));
    documents.push({ kind, name });
  }
  return { yaml: out.join('---\n'), documents, problems };
}

/** The injected pod, or undefined with the reason in `problems` when the pod cannot be injected. */
function injectOrReport(pod: Json, opts: InjectOptions, where: string, problems: string[]): Json | undefined {
  try {
    return injectPod(pod, opts);
  } catch (err) {
    if (!(err instanceof InjectionError)) throw err;
    problems.push(`${where}: ${err.message}`);
    return undefined;
  }
}
