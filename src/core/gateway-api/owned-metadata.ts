// The labels and annotations a Gateway hands to its generated objects (spec.infrastructure, or
// the Gateway's own) are recorded on each object, so that one removed from the Gateway is removed
// from the objects too. Istio gets this from server-side apply (its field manager owns the keys
// it set); meshgate writes with plain replace, so it keeps the list of keys it set in an
// annotation and takes away only those no longer wanted: a key someone else set is never in the
// list, and never touched.

type Obj = Record<string, unknown>;

/** `{"labels":[…],"annotations":[…]}`: the keys meshgate set from the Gateway, sorted. */
export const OWNED_KEYS_ANNOTATION = 'gateway.meshgate.io/owned-metadata';

export interface OwnedKeys {
  readonly labels: readonly string[];
  readonly annotations: readonly string[];
}

export function ownedKeysValue(keys: OwnedKeys): string {
  return JSON.stringify({ labels: [...keys.labels].sort(), annotations: [...keys.annotations].sort() });
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((k): k is string => typeof k === 'string') : [];
}

/** The keys recorded on an object; none when the record is missing or unreadable (nothing is removed then). */
export function ownedKeysOf(obj: unknown): OwnedKeys {
  const annotations = isObj(obj) && isObj(obj.metadata) && isObj(obj.metadata.annotations) ? obj.metadata.annotations : {};
  const text = annotations[OWNED_KEYS_ANNOTATION];
  if (typeof text !== 'string') return { labels: [], annotations: [] };
  try {
    const parsed = JSON.parse(text) as unknown;
    return isObj(parsed) ? { labels: strings(parsed.labels), annotations: strings(parsed.annotations) } : { labels: [], annotations: [] };
  } catch {
    return { labels: [], annotations: [] };
  }
}

/** Where the handed-down keys are: the object's metadata, and a Deployment's pod template. */
function metadataHolders(obj: Obj): Obj[] {
  const out: Obj[] = [];
  if (isObj(obj.metadata)) out.push(obj.metadata);
  const template = isObj(obj.spec) && isObj(obj.spec.template) ? obj.spec.template : undefined;
  if (template && isObj(template.metadata)) out.push(template.metadata);
  return out;
}

/**
 * `live` without the keys it records as meshgate's that `wanted` no longer records; `live` itself
 * when there are none (so a caller can tell nothing was removed).
 */
export function withoutStaleKeys(live: Obj, wanted: Obj): Obj {
  const had = ownedKeysOf(live);
  const keep = ownedKeysOf(wanted);
  const stale = {
    labels: had.labels.filter((k) => !keep.labels.includes(k)),
    annotations: had.annotations.filter((k) => !keep.annotations.includes(k)),
  };
  if (stale.labels.length === 0 && stale.annotations.length === 0) return live;
  const copy = structuredClone(live);
  let removed = false;
  for (const meta of metadataHolders(copy)) {
    for (const which of ['labels', 'annotations'] as const) {
      const map = meta[which];
      if (!isObj(map)) continue;
      for (const k of stale[which]) {
        if (k in map) {
          delete map[k];
          removed = true;
        }
      }
    }
  }
  return removed ? copy : live;
}
