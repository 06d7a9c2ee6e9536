// Kubernetes RBAC as the API server applies it, over the manifests in deploy/: which request
// attributes (verb, API group, resource/subresource, namespace, name) a service account may use, from
// the ClusterRoleBindings (everywhere) and RoleBindings (in their namespace) naming it. And the
// attributes of a request the API stand-in received, worked out from its method, path and query the
// way the API server's request-info resolver does, so that a test can check every call the code
// really made against what the manifests grant.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { SeenRequest } from './kube-api.js';

export interface RbacAttributes {
  readonly verb: string;
  readonly group: string;
  /** `gateways` or, for a subresource, `gateways/status`. */
  readonly resource: string;
  readonly namespace?: string;
  /** Known for get/update/patch/delete, and for list/watch with a `metadata.name=` field selector. */
  readonly name?: string;
}

interface Rule {
  readonly apiGroups?: string[];
  readonly resources?: string[];
  readonly verbs: string[];
  readonly resourceNames?: string[];
}

type Doc = Record<string, any>;

const NAMESPACED_RBAC = new Set(['Role', 'RoleBinding', 'ServiceAccount']);

/** The objects `kubectl apply -k deploy/` makes (the kustomization's files, its namespace set). */
export async function deployObjects(): Promise<Doc[]> {
  const root = fileURLToPath(new URL('../../../deploy/', import.meta.url));
  const kustomization = parseAllDocuments(await readFile(`${root}kustomization.yaml`, 'utf8'))[0]!.toJS() as Doc;
  const out: Doc[] = [];
  for (const file of kustomization.resources as string[]) {
    for (const d of parseAllDocuments(await readFile(root + file, 'utf8'))) {
      const o = d.toJS() as Doc | null;
      if (!o) continue;
      if (NAMESPACED_RBAC.has(o.kind)) o.metadata = { ...o.metadata, namespace: kustomization.namespace };
      out.push(o);
    }
  }
  return out;
}

/** The rules that apply to `sa` for a request in `namespace` (undefined: cluster-scoped or all namespaces). */
function rulesFor(objects: readonly Doc[], sa: { namespace: string; name: string }, namespace: string | undefined): Rule[] {
  const names = (b: Doc): boolean => (b.subjects ?? []).some((s: Doc) => s.kind === 'ServiceAccount' && s.name === sa.name && s.namespace === sa.namespace);
  const role = (kind: string, name: string, ns?: string): Doc | undefined => objects.find((o) => o.kind === kind && o.metadata?.name === name && (ns === undefined || o.metadata?.namespace === ns));
  const rules: Rule[] = [];
  for (const b of objects) {
    if (!names(b)) continue;
    if (b.kind === 'ClusterRoleBinding') rules.push(...(role('ClusterRole', b.roleRef.name)?.rules ?? []));
    // A RoleBinding grants only in its own namespace, whatever role it binds.
    if (b.kind === 'RoleBinding' && namespace !== undefined && b.metadata.namespace === namespace) {
      rules.push(...(role(b.roleRef.kind, b.roleRef.name, b.roleRef.kind === 'Role' ? namespace : undefined)?.rules ?? []));
    }
  }
  return rules;
}

const has = (list: readonly string[] | undefined, value: string): boolean => (list ?? []).includes(value) || (list ?? []).includes('*');

export function allowed(objects: readonly Doc[], sa: { namespace: string; name: string }, a: RbacAttributes): boolean {
  return rulesFor(objects, sa, a.namespace).some(
    (r) => has(r.apiGroups, a.group) && has(r.resources, a.resource) && has(r.verbs, a.verb) && (!r.resourceNames?.length || (a.name !== undefined && r.resourceNames.includes(a.name))),
  );
}

/** The RBAC attributes of a request the stand-in received (undefined for what is not an API path). */
export function attributesOf(r: SeenRequest): RbacAttributes | undefined {
  const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/(.*)$/.exec(r.path);
  if (!m) return undefined;
  const group = m[1] ?? '';
  let parts = m[2]!.split('/').map(decodeURIComponent);
  let namespace: string | undefined;
  // `namespaces/NAME/<resource>…` is inside a namespace; `namespaces/NAME` alone is the Namespace.
  if (parts[0] === 'namespaces' && parts.length >= 3) {
    namespace = parts[1];
    parts = parts.slice(2);
  }
  const [resource, name, subresource] = parts as [string, string | undefined, string | undefined];
  const byField = /^metadata\.name=([^,]+)$/.exec(r.query.fieldSelector ?? '')?.[1];
  const verb =
    r.method === 'GET' ? (name !== undefined ? 'get' : r.query.watch === 'true' ? 'watch' : 'list') : ({ POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' } as Record<string, string>)[r.method];
  if (!verb) return undefined;
  const named = name ?? (verb === 'list' || verb === 'watch' ? byField : undefined);
  return { verb, group, resource: subresource ? `${resource}/${subresource}` : resource, ...(namespace !== undefined ? { namespace } : {}), ...(named !== undefined ? { name: named } : {}) };
}

/** `verb group/resource in namespace (name)`: one line per call, for messages. */
export function describeCall(a: RbacAttributes): string {
  return `${a.verb} ${a.group ? `${a.group}/` : ''}${a.resource}${a.namespace ? ` in ${a.namespace}` : ' (cluster)'}${a.name ? ` name=${a.name}` : ''}`;
}

/** The distinct calls among `requests` that `sa` is not allowed to make. */
export function uncoveredCalls(objects: readonly Doc[], sa: { namespace: string; name: string }, requests: readonly SeenRequest[]): string[] {
  const out = new Set<string>();
  for (const r of requests) {
    const a = attributesOf(r);
    if (a && !allowed(objects, sa, a)) out.add(describeCall(a));
  }
  return [...out].sort();
}
