// The TLS servers of one listener as an SNI index, compiled once per snapshot (a snapshot's
// Listener objects are frozen, so the index is cached by the object): exact names in a map,
// wildcard suffixes in a map probed from the longest suffix down, then `*`. A connection's server is
// then a few map lookups, and gives exactly what serverForSni's scoring would: exact, the longest
// wildcard, then `*`, the first server in order on a tie.

import type { Listener, ServerConfig } from './types.js';
import { isTlsServer, serverForSni } from './server-hosts.js';

export interface SniIndex {
  /** The listener's HTTPS and TLS servers, in order. */
  readonly servers: readonly ServerConfig[];
  /** The server an SNI (or a Host, for the 421 check) selects; without SNI only a `*` server. */
  lookup(sni: string | undefined): ServerConfig | undefined;
}

const EMPTY: SniIndex = Object.freeze({ servers: [], lookup: () => undefined });
const cache = new WeakMap<Listener, SniIndex>();

export function sniIndexOf(listener: Listener | undefined): SniIndex {
  if (!listener) return EMPTY;
  let index = cache.get(listener);
  if (!index) {
    index = compileSniIndex(listener.servers.filter(isTlsServer));
    cache.set(listener, index);
  }
  return index;
}

export function compileSniIndex(servers: readonly ServerConfig[]): SniIndex {
  if (servers.length === 0) return EMPTY;
  const exact = new Map<string, ServerConfig>();
  const suffixes = new Map<string, ServerConfig>();
  /** Wildcards that are not `*.` + a name (`*foo.com`): rare, kept to the general scoring. */
  const odd: ServerConfig[] = [];
  let star: ServerConfig | undefined;
  for (const s of servers) {
    for (const h of s.hosts) {
      if (h === '*') star ??= s;
      else if (h.startsWith('*.')) {
        if (!suffixes.has(h.slice(1))) suffixes.set(h.slice(1), s);
      } else if (h.startsWith('*')) odd.push(s);
      else if (!exact.has(h)) exact.set(h, s);
    }
  }
  if (odd.length > 0) return { servers, lookup: (sni) => serverForSni(servers, sni) };
  // Only `*` servers (a single-certificate gateway): every name gets the first, and the 421 check on
  // every HTTPS request need not cut the Host into suffixes to learn that.
  if (exact.size === 0 && suffixes.size === 0) return { servers, lookup: () => star };
  return {
    servers,
    lookup: (sni) => {
      if (sni === undefined) return star;
      const hit = exact.get(sni);
      if (hit) return hit;
      // `a.b.example.com` tries `.b.example.com`, then `.example.com`, then `.com`: longest first.
      for (let dot = sni.indexOf('.', 1); dot > 0; dot = sni.indexOf('.', dot + 1)) {
        const s = suffixes.get(sni.slice(dot));
        if (s) return s;
      }
      return star;
    },
  };
}
