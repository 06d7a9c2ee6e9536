// The fields a controller owns in an object it shares with people and other controllers: whether
// the object as stored already holds them (`covers`: then nothing is written), and the object to
// write back when it does not (`withOwned`: the stored object with our fields put back, everything
// else — a user's edits, the API server's defaults, other controllers' labels — left as it is).
// Lists of named things (containers, env, volumes, ports) are matched element by element by their
// key, so what the API server adds to an element (a Service port's nodePort and targetPort) stays.

type Obj = Record<string, unknown>;

/** Lists that hold exactly our elements; in any other keyed list, elements we do not name are kept. */
const EXACT_LISTS = new Set(['ports', 'args', 'command', 'subjects']);

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** How the elements of a list are told apart: owner references by uid, ports by number, others by name. */
function keyOf(field: string, e: unknown): string | undefined {
  if (!isObj(e)) return undefined;
  if (field === 'ownerReferences') return typeof e.uid === 'string' ? e.uid : undefined;
  if (field === 'ports') return String(e.port ?? e.containerPort);
  if (field === 'subjects') return `${String(e.kind)}/${String(e.namespace ?? '')}/${String(e.name)}`;
  return typeof e.name === 'string' ? e.name : undefined;
}

function keyed(field: string, list: readonly unknown[]): boolean {
  return list.length > 0 && list.every((e) => keyOf(field, e) !== undefined);
}

/** True when `live` holds every field of `wanted` with the same value. */
export function covers(live: unknown, wanted: unknown, field = ''): boolean {
  if (Array.isArray(wanted)) {
    if (!Array.isArray(live)) return false;
    if (!keyed(field, wanted)) return live.length === wanted.length && wanted.every((w, i) => covers(live[i], w, field));
    if (EXACT_LISTS.has(field) && live.length !== wanted.length) return false;
    return wanted.every((w) => {
      const match = live.find((l) => keyOf(field, l) === keyOf(field, w));
      return match !== undefined && covers(match, w, field);
    });
  }
  if (isObj(wanted)) return isObj(live) && Object.entries(wanted).every(([k, v]) => covers(live[k], v, k));
  return live === wanted;
}

/** `live` with every field of `wanted` written over it. */
export function withOwned(live: unknown, wanted: unknown, field = ''): unknown {
  if (Array.isArray(wanted)) {
    if (!Array.isArray(live) || !keyed(field, wanted)) return wanted;
    const merged = wanted.map((w) => withOwned(live.find((l) => keyOf(field, l) === keyOf(field, w)), w, field));
    if (EXACT_LISTS.has(field)) return merged;
    const ours = new Set(wanted.map((w) => keyOf(field, w)));
    return [...merged, ...live.filter((l) => !ours.has(keyOf(field, l)))];
  }
  if (isObj(wanted)) {
    const out: Obj = isObj(live) ? { ...live } : {};
    for (const [k, v] of Object.entries(wanted)) out[k] = withOwned(out[k], v, k);
    return out;
  }
  return wanted;
}
