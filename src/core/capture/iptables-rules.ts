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
//   DNS capture (ISTIO_META_DNS_CAPTURE), as istio-iptables writes it: after the proxy's own traffic
//                has RETURNed (so the sidecar's forwarded queries escape), ISTIO_OUTPUT jumps to
//                ISTIO_OUTPUT_DNS, which redirects UDP and TCP port 53 to the sidecar's DNS port
//                (15053): only towards the nameservers of the pod's resolv.conf by default, or any
//                destination with capture-all. The loopback rules then RETURN only non-DNS TCP, so a
//                resolver on localhost is captured too. In the raw table the app's queries and the
//                sidecar's answers get conntrack zone 2, the sidecar's upstream queries and their
//                answers zone 1: the two legs of one lookup never share a conntrack entry.

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
  /** DNS capture: port 53 to the sidecar's DNS port (istio-iptables' --redirect-dns). */
  readonly redirectDns?: boolean;
  /** The pod's IPv4 nameservers (its resolv.conf): only DNS to them is captured, unless `captureAllDns`. */
  readonly dnsServers?: readonly string[];
  /** Capture DNS to any address (istio-iptables' --capture-all-dns). */
  readonly captureAllDns?: boolean;
}

/** Where the sidecar answers DNS (Istio's agent DNS port). */
export const DNS_CAPTURE_PORT = 15053;

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
  const lines: string[] = ['* nat', '-N ISTIO_INBOUND', '-N ISTIO_REDIRECT', '-N ISTIO_IN_REDIRECT', '-N ISTIO_OUTPUT', ...(dnsCapture(o) ? ['-N ISTIO_OUTPUT_DNS'] : [])];
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
  const dns = dnsCapture(o);
  for (const [kind, id] of [['uid', o.proxyUid], ['gid', o.proxyGid]] as const) {
    const owner = `-m owner --${kind}-owner ${id}`;
    const notOwner = `-m owner ! --${kind}-owner ${id}`;
    // With DNS capture, the proxy's own TCP DNS over lo is not sent to its inbound side (istio-iptables
    // does this for the uid rule only), and the app's lo traffic RETURNs only when it is not TCP DNS.
    const selfPorts = dns && kind === 'uid' ? `-m multiport ! --dports 53,${HBONE_PORT}` : `! --dport ${HBONE_PORT}`;
    lines.push(`-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ${selfPorts} ${owner} -j ISTIO_IN_REDIRECT`);
    lines.push(dns ? `-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 ${notOwner} -j RETURN` : `-A ISTIO_OUTPUT -o lo ${notOwner} -j RETURN`);
    lines.push(`-A ISTIO_OUTPUT ${owner} -j RETURN`);
  }
  if (dns) lines.push(...dnsNatRules(dns));
  lines.push('-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN');
  for (const cidr of o.excludeOutboundIpRanges) lines.push(`-A ISTIO_OUTPUT -d ${cidr} -j RETURN`);
  if (o.includeOutboundIpRanges === '*') lines.push('-A ISTIO_OUTPUT -j ISTIO_REDIRECT');
  else if (o.includeOutboundIpRanges.length > 0) {
    for (const cidr of o.includeOutboundIpRanges) lines.push(`-A ISTIO_OUTPUT -d ${cidr} -j ISTIO_REDIRECT`);
    lines.push('-A ISTIO_OUTPUT -j RETURN');
  }
  lines.push('COMMIT');
  if (dns) lines.push(...dnsRawRules(o, dns));
  lines.push('');
  return lines.join('\n');
}

/** The DNS destinations captured: `*` (any) or the nameservers; undefined when DNS capture is off or has nothing to capture. */
function dnsCapture(o: CaptureOptions): '*' | readonly string[] | undefined {
  if (!o.redirectDns) return undefined;
  if (o.captureAllDns) return '*';
  // As istio-iptables: DNS capture with no nameserver to capture is no DNS capture.
  return o.dnsServers && o.dnsServers.length > 0 ? o.dnsServers : undefined;
}

/** nat: the jump from ISTIO_OUTPUT (after the proxy's own traffic returned) and the redirects to the DNS port. */
function dnsNatRules(dns: '*' | readonly string[]): string[] {
  const to = (proto: 'tcp' | 'udp', flag: string): string[] =>
    dns === '*' ? [`-A ISTIO_OUTPUT_DNS -p ${proto} --dport 53 -j REDIRECT ${flag} ${DNS_CAPTURE_PORT}`] : dns.map((s) => `-A ISTIO_OUTPUT_DNS -p ${proto} --dport 53 -d ${s}/32 -j REDIRECT ${flag} ${DNS_CAPTURE_PORT}`);
  return ['-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS', ...to('tcp', '--to-ports'), ...to('udp', '--to-port')];
}

/**
 * raw: conntrack zones for UDP DNS. The app's query and the sidecar's answer (from the DNS port) are
 * zone 2, the sidecar's query upstream and the upstream's answer zone 1, so that a lookup's two legs,
 * which share addresses and ports once redirected, are never taken for one another. The first CT
 * rule a packet meets sets its zone, so the proxy's own rules come first.
 */
function dnsRawRules(o: CaptureOptions, dns: '*' | readonly string[]): string[] {
  const lines = ['* raw', '-N ISTIO_OUTPUT_DNS', '-N ISTIO_INBOUND', '-A OUTPUT -j ISTIO_OUTPUT_DNS'];
  for (const [kind, id] of [['uid', o.proxyUid], ['gid', o.proxyGid]] as const) {
    lines.push(`-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --${kind}-owner ${id} -j CT --zone 1`);
    lines.push(`-A ISTIO_OUTPUT_DNS -p udp --sport ${DNS_CAPTURE_PORT} -m owner --${kind}-owner ${id} -j CT --zone 2`);
  }
  lines.push('-A PREROUTING -j ISTIO_INBOUND');
  if (dns === '*') {
    lines.push('-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j CT --zone 2', '-A ISTIO_INBOUND -p udp --sport 53 -j CT --zone 1');
  } else {
    for (const s of dns) lines.push(`-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d ${s}/32 -j CT --zone 2`, `-A ISTIO_INBOUND -p udp --sport 53 -s ${s}/32 -j CT --zone 1`);
  }
  lines.push('COMMIT');
  return lines;
}
