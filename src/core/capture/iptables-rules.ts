// Istio's traffic capture as iptables rules (nat table), the rules `istio-iptables` writes for the
// REDIRECT interception mode, printed in iptables-restore format: `meshgate iptables` feeds them to
// iptables-restore in the pod's network namespace, `--dry-run` prints them.
//
//   PREROUTING → ISTIO_INBOUND: the sidecar's own ports (and excluded ones) RETURN, every other TCP
//                port goes to ISTIO_IN_REDIRECT (REDIRECT to the inbound port, 15006).
//   OUTPUT → ISTIO_OUTPUT: excluded outbound ports RETURN; the sidecar's inbound side talking to the
//                app from 127.0.0.6 RETURNs; the proxy (uid/gid 1337) calling its own pod through
//                lo goes to ISTIO_IN_REDIRECT (a pod calling itself through its Service still meets
//                the inbound policy); other lo traffic and everything else of the proxy RETURNs
//                (never recaptured); 127.0.0.1 RETURNs; excluded CIDRs RETURN; included CIDRs (or
//                all, `*`) go to ISTIO_REDIRECT (REDIRECT to the outbound port, 15001).

import { isIP } from 'node:net';

export interface CaptureOptions {
  /** Where outbound TCP is redirected (-p, default 15001). */
  readonly outboundPort: number;
  /** Where inbound TCP is redirected (-z, default 15006). */
  readonly inboundPort: number;
  /** The proxy's uid and gid, whose traffic is never captured (-u/-g, default 1337). */
  readonly proxyUid: number;
  readonly proxyGid: number;
  /** Outbound destinations captured (-i): `*` for all, a list of CIDRs, or empty for none. */
  readonly includeOutboundIpRanges: '*' | readonly string[];
  /** Outbound destinations never captured (-x). */
  readonly excludeOutboundIpRanges: readonly string[];
  /** Inbound ports captured (-b): `*` for all, or a list; empty captures no inbound traffic. */
  readonly includeInboundPorts: '*' | readonly number[];
  /** Inbound ports never captured (-d); the sidecar's 15090, 15021, 15020 are always among them. */
  readonly excludeInboundPorts: readonly number[];
  /** Outbound destination ports never captured (-o). */
  readonly excludeOutboundPorts: readonly number[];
}

/** Istio's HBONE port: never captured inbound (a tunnel that carries its own mTLS). */
const HBONE_PORT = 15008;
/** The sidecar's own ports: Prometheus, health, and the rewritten application probes. */
export const SIDECAR_OWN_PORTS: readonly number[] = [15090, 15021, 15020];
/** The address the inbound side connects to the app from, so its own traffic is not captured again. */
export const INBOUND_PASSTHROUGH_ADDRESS = '127.0.0.6';

export const DEFAULT_CAPTURE: CaptureOptions = Object.freeze({
  outboundPort: 15001,
  inboundPort: 15006,
  proxyUid: 1337,
  proxyGid: 1337,
  includeOutboundIpRanges: '*',
  excludeOutboundIpRanges: [],
  includeInboundPorts: '*',
  excludeInboundPorts: [],
  excludeOutboundPorts: [],
});

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** A comma-separated port list as the annotations write it (`""` is none). */
export function parsePortList(text: string, what: string): Parsed<number[]> {
  const out: number[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const n = Number(part);
    if (!/^\d+$/.test(part) || n < 1 || n > 65535) return { ok: false, message: `${what}: '${part}' is not a port` };
    if (!out.includes(n)) out.push(n);
  }
  return { ok: true, value: out };
}

/**
 * IPv6 is not captured (the rules above are IPv4's). Left open, a pod's IPv6 address would reach the
 * app past its sidecar, and so past PeerAuthentication and AuthorizationPolicy. As istio-iptables does
 * when inbound IPv6 is not enabled, the filter table lets in only loopback and what belongs to an
 * established connection, and refuses the rest (neighbour discovery too: the pod then has no IPv6
 * beyond loopback). For ip6tables-restore.
 */
export function ipv6InboundRefusal(): string {
  return ['* filter', '-A INPUT -m state --state ESTABLISHED -j ACCEPT', '-A INPUT -i lo -d ::1/128 -j ACCEPT', '-A INPUT -j REJECT', 'COMMIT', ''].join('\n');
}

/** A comma-separated CIDR list (an address alone means /32); IPv6 is not captured, so it is refused. */
export function parseCidrList(text: string, what: string): Parsed<string[]> {
  const out: string[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([^/]+)(?:\/(\d{1,2}))?$/.exec(part);
    if (!m || isIP(m[1]!) !== 4 || (m[2] !== undefined && Number(m[2]) > 32)) return { ok: false, message: `${what}: '${part}' is not an IPv4 CIDR` };
    const cidr = `${m[1]}/${m[2] ?? '32'}`;
    if (!out.includes(cidr)) out.push(cidr);
  }
  return { ok: true, value: out };
}

/** The rules for iptables-restore (nat table only; `--noflush` keeps the table's other chains). */
export function captureRules(o: CaptureOptions): string {
  const lines: string[] = ['* nat', '-N ISTIO_INBOUND', '-N ISTIO_REDIRECT', '-N ISTIO_IN_REDIRECT', '-N ISTIO_OUTPUT'];
  lines.push(`-A ISTIO_INBOUND -p tcp --dport ${HBONE_PORT} -j RETURN`);
  lines.push(`-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports ${o.outboundPort}`);
  lines.push(`-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports ${o.inboundPort}`);

  // Inbound.
  const excludedIn = [...new Set([...SIDECAR_OWN_PORTS, ...o.excludeInboundPorts])];
  if (o.includeInboundPorts === '*') {
    lines.push('-A PREROUTING -p tcp -j ISTIO_INBOUND');
    for (const p of excludedIn) lines.push(`-A ISTIO_INBOUND -p tcp --dport ${p} -j RETURN`);
    lines.push('-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT');
  } else if (o.includeInboundPorts.length > 0) {
    lines.push('-A PREROUTING -p tcp -j ISTIO_INBOUND');
    for (const p of o.includeInboundPorts) if (!excludedIn.includes(p)) lines.push(`-A ISTIO_INBOUND -p tcp --dport ${p} -j ISTIO_IN_REDIRECT`);
  }

  // Outbound.
  lines.push('-A OUTPUT -j ISTIO_OUTPUT');
  if (o.excludeOutboundPorts.length > 0) lines.push(`-A ISTIO_OUTPUT -p tcp -m multiport --dports ${o.excludeOutboundPorts.join(',')} -j RETURN`);
  lines.push(`-A ISTIO_OUTPUT -o lo -s ${INBOUND_PASSTHROUGH_ADDRESS}/32 -j RETURN`);
  for (const [kind, id] of [['uid', o.proxyUid], ['gid', o.proxyGid]] as const) {
    const owner = `-m owner --${kind}-owner ${id}`;
    const notOwner = `-m owner ! --${kind}-owner ${id}`;
    lines.push(`-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport ${HBONE_PORT} ${owner} -j ISTIO_IN_REDIRECT`);
    lines.push(`-A ISTIO_OUTPUT -o lo ${notOwner} -j RETURN`);
    lines.push(`-A ISTIO_OUTPUT ${owner} -j RETURN`);
  }
  lines.push('-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN');
  for (const cidr of o.excludeOutboundIpRanges) lines.push(`-A ISTIO_OUTPUT -d ${cidr} -j RETURN`);
  if (o.includeOutboundIpRanges === '*') lines.push('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
  else if (o.includeOutboundIpRanges.length > 0) {
    for (const cidr of o.includeOutboundIpRanges) lines.push(`-A ISTIO_OUTPUT -d ${cidr} -j ISTIO_REDIRECT`);
    lines.push('-A ISTIO_OUTPUT -j RETURN');
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}
