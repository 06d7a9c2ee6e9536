// Addresses for ServiceEntries that declare none, as Istio allocates them when a proxy's metadata
// says ISTIO_META_DNS_AUTO_ALLOCATE: one IPv4 address from the Class E block 240.240.0.0/16 (never
// routed outside the pod) and one IPv6 address from the benchmarking block 2001:2::/48 (RFC 5180)
// per host. The sidecar answers DNS for the host with them, and a connection the app then makes to
// one is known by that address, so TCP ServiceEntries on the same port are told apart without a
// Host header. Hosts that get none, as in Istio: wildcards, `resolution: NONE` (the app's own
// destination is forwarded, so a stand-in address would be dialled for real), and hosts some entry
// gives addresses.
//
// The allocation depends only on the set of hosts: each `namespace/host` is hashed (FNV-1a, 32 bits)
// to a slot, taken in sorted order, a taken slot passed on to the next free one; adding an entry
// moves no other entry's address unless their slots collide.

import type { Resource } from '../model/resource.js';
import { isWildcardHost } from './hostname.js';
import { isRecord } from './pods.js';
import type { Registry } from './types.js';

/** Slots: the third octet 0–255 by the fourth 1–254 (no .0 or .255 addresses). */
const SLOTS = 256 * 254;

/** host (lower case) → [IPv4, IPv6]. */
export type AllocatedAddresses = ReadonlyMap<string, readonly string[]>;

export function autoAllocateAddresses(resources: readonly Resource[], registry: Registry): AllocatedAddresses {
  const addressed = new Set<string>();
  for (const r of resources) {
    const spec = r.spec;
    if (r.kind !== 'ServiceEntry' || !isRecord(spec) || !Array.isArray(spec.addresses) || spec.addresses.length === 0 || !Array.isArray(spec.hosts)) continue;
    for (const h of spec.hosts) if (typeof h === 'string') addressed.add(h.toLowerCase());
  }
  const wanted: Array<{ key: string; host: string }> = [];
  for (const [host, s] of registry.services) {
    if (s.kind !== 'ServiceEntry' || s.resolution === 'NONE' || isWildcardHost(host) || addressed.has(host)) continue;
    wanted.push({ key: `${s.namespace}/${host}`, host });
  }
  wanted.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const taken = new Set<number>();
  const out = new Map<string, readonly string[]>();
  for (const { key, host } of wanted) {
    if (taken.size >= SLOTS) break;
    let slot = fnv1a32(key) % SLOTS;
    while (taken.has(slot)) slot = (slot + 1) % SLOTS;
    taken.add(slot);
    const third = Math.floor(slot / 254);
    const fourth = (slot % 254) + 1;
    out.set(host, Object.freeze([`240.240.${third}.${fourth}`, `2001:2::f0f0:${((third << 8) | fourth).toString(16)}`]));
  }
  return out;
}

function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
