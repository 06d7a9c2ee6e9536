// The JSONPatch (RFC 6902) an admission webhook answers with: from the pod the API server sent to the
// injected pod. Each field injection touches (labels, annotations, containers, init containers,
// volumes) is written whole with `add`, which per RFC 6902 §4.1 replaces a member that exists; a
// field injection leaves alone gets no operation.

type Json = Record<string, unknown>;

export interface PatchOp {
  readonly op: 'add';
  readonly path: string;
  readonly value: unknown;
}

const FIELDS: ReadonlyArray<readonly [string, string]> = [
  ['metadata', 'labels'],
  ['metadata', 'annotations'],
  ['spec', 'initContainers'],
  ['spec', 'containers'],
  ['spec', 'volumes'],
];

export function podPatch(original: Json, injected: Json): PatchOp[] {
  const ops: PatchOp[] = [];
  for (const [parent, field] of FIELDS) {
    const before = (original[parent] as Json | undefined)?.[field];
    const after = (injected[parent] as Json | undefined)?.[field];
    if (after === undefined || JSON.stringify(before) === JSON.stringify(after)) continue;
    if (original[parent] === undefined) ops.push({ op: 'add', path: `/${parent}`, value: {} });
    ops.push({ op: 'add', path: `/${escape(parent)}/${escape(field)}`, value: after });
  }
  return ops;
}

/** Applies `add` operations to a copy (tests and the offline path check what the API server would do). */
export function applyPatch(doc: Json, ops: readonly PatchOp[]): Json {
  const out = structuredClone(doc);
  for (const op of ops) {
    const parts = op.path.split('/').slice(1).map(unescape);
    let at: Json = out;
    for (const p of parts.slice(0, -1)) at = (at[p] ??= {}) as Json;
    at[parts[parts.length - 1]!] = structuredClone(op.value);
  }
  return out;
}

function escape(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescape(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}
