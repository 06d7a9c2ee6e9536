// The address of the client a request came from, as Envoy decides it at an edge with
// use_remote_address: the peer of the connection, or, behind N trusted proxies (a cloud load
// balancer, a CDN), the N-th address from the right of the x-forwarded-for header those proxies
// appended to (Envoy's xff_num_trusted_hops). Entries further left were written by the client and
// prove nothing.

import { isIP } from 'node:net';
import type { Exchange } from './stages/exchange.js';
import { trustedHopsFor } from './trusted-hops.js';

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) → `10.0.0.1`, so one client has one address. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * `trustedHops` 0: the peer. N > 0: the N-th entry from the right of x-forwarded-for (several
 * headers count as one list, in order); with fewer entries than N, or an entry that is not an IP
 * address, the peer, as Envoy falls back.
 */
export function trustedClientAddress(peer: string, forwardedFor: string | readonly string[] | undefined, trustedHops: number): string {
  const direct = plainAddress(peer);
  if (trustedHops <= 0 || forwardedFor === undefined) return direct;
  const text = typeof forwardedFor === 'string' ? forwardedFor : forwardedFor.join(',');
  let end = text.length;
  // Walk from the right without splitting the whole header: only N entries are ever looked at.
  for (let hop = 1; end >= 0; hop++) {
    const comma = text.lastIndexOf(',', end - 1);
    if (hop === trustedHops) {
      const entry = text.slice(comma + 1, end).trim();
      return isIP(entry) !== 0 ? plainAddress(entry) : direct;
    }
    if (comma < 0) break;
    end = comma;
  }
  return direct;
}

/**
 * The client address of one request, worked out the first time a stage asks for it (authorize's
 * `remoteIpBlocks`, a rate-limit key, act's x-envoy-external-address) and kept on the exchange, so
 * that every stage sees one answer. Read from x-forwarded-for as it arrived, before this hop appends.
 */
export function clientAddressOf(ex: Exchange): string {
  return (ex.clientAddress ??= trustedClientAddress(ex.remoteAddress, ex.req.headers['x-forwarded-for'], trustedHopsFor(ex.snapshot, ex.ctx.trustedProxies)));
}
