// The pod's resolver configuration, /etc/resolv.conf: its `nameserver` lines are where DNS capture
// sends what the mesh does not answer (and, by default, the only DNS destinations the init
// container's rules capture); its `search` list is how the app's resolver expands short names.
// Read with no DNS library: the init container needs it too, and it loads nothing else of DNS.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';

export interface ResolvConf {
  /** Nameserver addresses in file order (IPv4 and IPv6; a scope suffix `%eth0` is dropped). */
  readonly nameservers: readonly string[];
  /** The search domains, lower case, without a trailing dot. */
  readonly search: readonly string[];
}

export function parseResolvConf(text: string): ResolvConf {
  const nameservers: string[] = [];
  let search: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, ...rest] = line.split(/\s+/);
    if (key === 'nameserver' && rest[0]) {
      const address = rest[0].replace(/%.*$/, '');
      if (isIP(address) !== 0 && !nameservers.includes(address)) nameservers.push(address);
    } else if (key === 'search' || key === 'domain') {
      // The last search or domain line wins, as the resolver reads them.
      search = rest.map((d) => d.toLowerCase().replace(/\.$/, '')).filter((d) => d !== '');
    }
  }
  return { nameservers, search };
}

/** The file at `path`; a file that cannot be read is an error the caller reports. */
export function readResolvConf(path: string = DEFAULT_RESOLV_CONF): ResolvConf {
  return parseResolvConf(readFileSync(path, 'utf8'));
}
