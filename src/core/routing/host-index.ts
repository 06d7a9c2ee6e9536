// Virtual-host lookup by Host header in Envoy's order: exact, then the longest suffix wildcard
// (`*.example.com`), then prefix wildcards (`foo.*`), then `*`. Built once; a lookup is one map
// probe in the common case.

import type { RouteConfig, VirtualHost } from './types.js';

export function indexVirtualHosts(name: string, virtualHosts: readonly VirtualHost[]): RouteConfig {
  const exact = new Map<string, VirtualHost>();
  const suffixes: Array<[string, VirtualHost]> = []; // ('.example.com', vh) for `*.example.com`
  const prefixes: Array<[string, VirtualHost]> = []; // ('foo.', vh) for `foo.*`
  let star: VirtualHost | undefined;
  for (const vh of virtualHosts) {
    const d = vh.domain;
    if (d === '*') star ??= vh;
    else if (d.startsWith('*')) suffixes.push([d.slice(1), vh]);
    else if (d.endsWith('*')) prefixes.push([d.slice(0, -1), vh]);
    else if (!exact.has(d)) exact.set(d, vh);
  }
  suffixes.sort((a, b) => b[0].length - a[0].length);
  prefixes.sort((a, b) => b[0].length - a[0].length);

  // A wildcard never matches the empty string: `*.a.com` needs at least one character before `.a.com`.
  const findVirtualHost = (host: string): VirtualHost | undefined => {
    const hit = exact.get(host);
    if (hit) return hit;
    for (const [suffix, vh] of suffixes) if (host.length > suffix.length && host.endsWith(suffix)) return vh;
    for (const [prefix, vh] of prefixes) if (host.length > prefix.length && host.startsWith(prefix)) return vh;
    return star;
  };
  return { name, virtualHosts, findVirtualHost };
}

/**
 * `Host: Example.COM:8080` → `example.com`; IPv6 literals keep their brackets. A trailing dot is
 * not dropped here: the parse stage drops one (stripTrailingHostDot), and a name that still ends in
 * a dot (`example.com..`) is another name, which no route matches, as in Envoy. Dropping a second
 * dot here routed such a name to `example.com` while AuthorizationPolicy `hosts` saw `example.com.`.
 */
export function normalizeHost(authority: string): string {
  let host = authority;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    host = end > 0 ? host.slice(0, end + 1) : host;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) host = host.slice(0, colon);
  }
  return host.toLowerCase();
}

/**
 * Envoy's strip_trailing_host_dot: `example.com.` → `example.com`, `example.com.:8080` →
 * `example.com:8080`; one dot only. IP literals and `.` alone stay.
 */
export function stripTrailingHostDot(authority: string): string {
  const m = /^([^[\]:]+)\.(:\d*)?$/.exec(authority);
  return m ? m[1]! + (m[2] ?? '') : authority;
}
