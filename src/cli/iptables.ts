// `meshgate iptables`: the capture init container's command. Installs Istio's REDIRECT rules in the
// pod's network namespace through iptables-restore (a child process), and lets the sidecar find
// the original destination of raw TCP by opening the namespace's conntrack table to it. `--dry-run`
// prints the rules instead.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { chmod } from 'node:fs/promises';
import { CONNTRACK_TABLE } from '../core/capture/original-destination.js';
import { captureRules, DEFAULT_CAPTURE, DNS_CAPTURE_PORT, ipv6InboundRefusal, parseCidrList, parsePortList, SIDECAR_OWN_PORTS, type CaptureOptions } from '../core/capture/iptables-rules.js';
import { DEFAULT_RESOLV_CONF, readResolvConf } from '../core/dns/resolv-conf.js';
import { parse, parsePort } from './options.js';
import { CommandError, UsageError } from './main.js';

export const IPTABLES_HELP = `usage: meshgate iptables [options] [--dry-run]

Installs transparent traffic capture in the current network namespace (the pod's), as Istio's
istio-init does: inbound TCP is redirected to the sidecar's inbound port, outbound TCP to its
outbound port; the proxy's own traffic (uid/gid 1337) is never captured. Needs NET_ADMIN and NET_RAW
(root in the init container). Short flags are istio-iptables' own.

  -p, --outbound-port N           outbound redirect target (default 15001)
  -z, --inbound-port N            inbound redirect target (default 15006)
  -u, --proxy-uid N               the proxy's uid, exempt from capture (default 1337)
  -g, --proxy-gid N               the proxy's gid, exempt from capture (default: the uid)
  -i, --include-outbound-ip-ranges LIST
                                  CIDRs whose outbound traffic is captured; '*' all (default), '' none
  -x, --exclude-outbound-ip-ranges LIST
                                  CIDRs never captured outbound
  -b, --include-inbound-ports LIST
                                  inbound ports captured; '*' all (default), '' none
  -d, --exclude-inbound-ports LIST
                                  inbound ports never captured (${SIDECAR_OWN_PORTS.join(', ')} always are)
  -o, --exclude-outbound-ports LIST
                                  destination ports never captured outbound
  --redirect-dns                  DNS capture: UDP and TCP port 53 to the sidecar's DNS port (${DNS_CAPTURE_PORT});
                                  on when ISTIO_META_DNS_CAPTURE or REDIRECT_DNS is "true" (injection
                                  sets it from proxyMetadata)
  --capture-all-dns               capture DNS to any address, not only to the nameservers of
                                  --resolv-conf (also CAPTURE_ALL_DNS=true)
  --resolv-conf FILE              the pod's resolver configuration (default ${DEFAULT_RESOLV_CONF})
  --keep-conntrack-private        leave ${CONNTRACK_TABLE} root-only (the sidecar then cannot
                                  find the original destination of raw TCP; HTTP still routes by Host)
  --dry-run                       print the rules (iptables-restore format) and change nothing

IPv6 is not captured: where the namespace has IPv6, inbound IPv6 other than loopback is refused
(ip6tables), as istio-iptables does when inbound IPv6 is not enabled, so that nothing reaches the
app past the sidecar's policies; the pod then has no IPv6 beyond loopback.

The annotations traffic.sidecar.istio.io/includeOutboundIPRanges, excludeOutboundIPRanges,
excludeInboundPorts and excludeOutboundPorts become these flags at injection.`;

export function captureOptionsFromFlags(values: Record<string, string | boolean | undefined>): CaptureOptions {
  const ok = <T>(r: { ok: true; value: T } | { ok: false; message: string }): T => {
    if (!r.ok) throw new UsageError(r.message);
    return r.value;
  };
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const uid = str('proxy-uid') === undefined ? DEFAULT_CAPTURE.proxyUid : parseId(str('proxy-uid')!, '--proxy-uid');
  const include = str('include-outbound-ip-ranges');
  const inbound = str('include-inbound-ports');
  return {
    outboundPort: parsePort(str('outbound-port'), DEFAULT_CAPTURE.outboundPort, '--outbound-port'),
    inboundPort: parsePort(str('inbound-port'), DEFAULT_CAPTURE.inboundPort, '--inbound-port'),
    proxyUid: uid,
    proxyGid: str('proxy-gid') === undefined ? uid : parseId(str('proxy-gid')!, '--proxy-gid'),
    includeOutboundIpRanges: include === undefined || include.trim() === '*' ? '*' : ok(parseCidrList(include, '--include-outbound-ip-ranges')),
    excludeOutboundIpRanges: ok(parseCidrList(str('exclude-outbound-ip-ranges') ?? '', '--exclude-outbound-ip-ranges')),
    includeInboundPorts: inbound === undefined || inbound.trim() === '*' ? '*' : ok(parsePortList(inbound, '--include-inbound-ports')),
    excludeInboundPorts: ok(parsePortList(str('exclude-inbound-ports') ?? '', '--exclude-inbound-ports')),
    excludeOutboundPorts: ok(parsePortList(str('exclude-outbound-ports') ?? '', '--exclude-outbound-ports')),
  };
}

export async function runIptablesCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    'outbound-port': { type: 'string', short: 'p' },
    'inbound-port': { type: 'string', short: 'z' },
    'proxy-uid': { type: 'string', short: 'u' },
    'proxy-gid': { type: 'string', short: 'g' },
    'include-outbound-ip-ranges': { type: 'string', short: 'i' },
    'exclude-outbound-ip-ranges': { type: 'string', short: 'x' },
    'include-inbound-ports': { type: 'string', short: 'b' },
    'exclude-inbound-ports': { type: 'string', short: 'd' },
    'exclude-outbound-ports': { type: 'string', short: 'o' },
    'redirect-dns': { type: 'boolean' },
    'capture-all-dns': { type: 'boolean' },
    'resolv-conf': { type: 'string' },
    'keep-conntrack-private': { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(IPTABLES_HELP);
    return 0;
  }
  const rules = captureRules({ ...captureOptionsFromFlags(values), ...dnsOptions(values) });
  if (values['dry-run']) {
    console.log(`${rules}\n# ip6tables-restore, where the namespace has IPv6:\n${ipv6InboundRefusal()}`.trimEnd());
    return 0;
  }
  await restore('iptables-restore', rules);
  // A namespace without IPv6 (disabled in the kernel) has nothing for IPv6 to come in by.
  if (existsSync('/proc/net/if_inet6')) await restore('ip6tables-restore', ipv6InboundRefusal());
  if (!values['keep-conntrack-private']) {
    // The table of this namespace holds only this pod's connections; the sidecar (uid 1337, no
    // capabilities) reads it to find where redirected raw TCP was going.
    await chmod(CONNTRACK_TABLE, 0o444).catch((err: NodeJS.ErrnoException) => {
      console.error(`meshgate iptables: ${CONNTRACK_TABLE} could not be opened to the sidecar (${err.code ?? err.message}); raw TCP capture will not know its destination`);
    });
  }
  console.log('meshgate iptables: capture rules installed');
  return 0;
}

/**
 * DNS capture as istio-iptables decides it: the flag or the environment the injected init container
 * gets from proxyMetadata; the nameservers from resolv.conf unless every DNS destination is captured.
 * IPv6 nameservers are left out (IPv6 is not captured).
 */
function dnsOptions(values: Record<string, string | boolean | undefined>): Pick<CaptureOptions, 'redirectDns' | 'dnsServers' | 'captureAllDns'> {
  const env = (name: string): boolean => process.env[name]?.toLowerCase() === 'true';
  const redirectDns = values['redirect-dns'] === true || env('ISTIO_META_DNS_CAPTURE') || env('REDIRECT_DNS');
  if (!redirectDns) return {};
  const captureAllDns = values['capture-all-dns'] === true || env('CAPTURE_ALL_DNS');
  if (captureAllDns) return { redirectDns, captureAllDns };
  const file = typeof values['resolv-conf'] === 'string' ? values['resolv-conf'] : DEFAULT_RESOLV_CONF;
  let servers: readonly string[];
  try {
    servers = readResolvConf(file).nameservers;
  } catch (err) {
    throw new CommandError(`DNS capture: cannot read ${file}: ${(err as Error).message}`);
  }
  const v4 = servers.filter((s) => isIP(s) === 4);
  if (v4.length === 0) console.error(`meshgate iptables: DNS capture is on, but ${file} names no IPv4 nameserver and --capture-all-dns is off: DNS is not captured`);
  return { redirectDns, dnsServers: v4 };
}

function parseId(text: string, flag: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 0x7fffffff) throw new UsageError(`${flag}: '${text}' is not a numeric id`);
  return n;
}

/** `iptables-restore --noflush` (or ip6tables'): the tables' other rules (the runtime's) stay as they are. */
function restore(command: 'iptables-restore' | 'ip6tables-restore', rules: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, ['--noflush'], { stdio: ['pipe', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => reject(new CommandError(`cannot run ${command}: ${err.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new CommandError(`${command} failed (exit ${code}): ${stderr.trim()}`))));
    child.stdin.end(rules);
  });
}
