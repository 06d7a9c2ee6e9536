// The envelope every configuration object travels in, whatever its kind, plus where it came from,
// so that any problem found later can point at file, line, resource and field.

export type FieldPath = ReadonlyArray<string | number>;

/** Where a resource was read from; `lineOf` maps a field path inside the document to its line. */
export interface Origin {
  readonly file: string;
  /** 1-based line of the document's first line. */
  readonly line: number;
  /** Position of the document among everything loaded (file order, then document order). */
  readonly order: number;
  lineOf(path: FieldPath): number;
  /**
   * Where the text of a string field that is itself YAML (the mesh config, config/embedded-yaml.ts)
   * starts in the source, when the source can say: its first line there, and how far its lines are
   * indented. Undefined where the text's lines are not the source's (a folded or quoted scalar).
   */
  textStart?(path: FieldPath): TextStart | undefined;
}

/** Line `n` of an embedded text is line `line + n - 1` of the source, its column `c` column `indent + c`. */
export interface TextStart {
  readonly line: number;
  readonly indent: number;
}

export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly creationTimestamp?: string;
  readonly resourceVersion?: string;
}

export interface Resource<S = unknown> {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
  readonly spec: S;
  readonly origin: Origin;
  /** Objects whose payload is not under `spec` (Endpoints' `subsets`, EndpointSlice's `endpoints`/`ports`, Secret's `data`). */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** `kind namespace/name`, the way problems and logs name a resource. */
export function resourceRef(r: Pick<Resource, 'kind' | 'metadata'>): string {
  // The Gateway API's Gateway travels as KubernetesGateway; people know it by kubectl's name.
  const kind = r.kind === 'KubernetesGateway' ? 'Gateway.gateway.networking.k8s.io' : r.kind;
  return `${kind} ${r.metadata.namespace}/${r.metadata.name}`;
}

/**
 * Istio's config ordering: creationTimestamp, then name, then namespace. Resources read from files
 * usually carry no timestamp; then their file order stands in for it.
 */
export function compareByCreation(a: Resource, b: Resource): number {
  const ta = Date.parse(a.metadata.creationTimestamp ?? '');
  const tb = Date.parse(b.metadata.creationTimestamp ?? '');
  if (Number.isNaN(ta) || Number.isNaN(tb)) return a.origin.order - b.origin.order;
  if (ta !== tb) return ta - tb;
  if (a.metadata.name !== b.metadata.name) return a.metadata.name < b.metadata.name ? -1 : 1;
  if (a.metadata.namespace !== b.metadata.namespace) return a.metadata.namespace < b.metadata.namespace ? -1 : 1;
  return a.origin.order - b.origin.order;
}
