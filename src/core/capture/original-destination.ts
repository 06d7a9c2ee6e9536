// Where a redirected connection was going. iptables REDIRECT rewrites the destination to the proxy's
// port; the kernel keeps the original in its connection-tracking entry, which C programs read with
// getsockopt(SO_ORIGINAL_DST). Node has no such call, so this reads the network namespace's
// conntrack table, `/proc/net/nf_conntrack`: the entry whose reply tuple goes from the proxy's port
// back to the peer's address and port is this connection, and its original tuple names the
// destination the client asked for.
//
// Limits (docs/sidecar-injection.md): the table is root-readable only unless `meshgate iptables`
// opened it (it makes it world-readable in the pod's namespace, which holds only that pod's
// connections); it exists only when the kernel has CONFIG_NF_CONNTRACK_PROCFS; IPv4 only; each
// lookup reads the whole table, so its cost grows with the pod's open connections.

import { readFile } from 'node:fs/promises';

export const CONNTRACK_TABLE = '/proc/net/nf_conntrack';

export interface Destination {
  readonly address: string;
  readonly port: number;
}

export interface OriginalDestinationLookup {
  /** The original destination of the connection from `peer` that arrived on `localPort`, if known. */
  lookup(peer: Destination, localPort: number): Promise<Destination | undefined>;
}

/** One tuple pair of a conntrack line: [original, reply]. */
interface Tuples {
  readonly original: { src: string; dst: string; sport: number; dport: number };
  readonly reply: { src: string; dst: string; sport: number; dport: number };
}

/** Parses one line of /proc/net/nf_conntrack (TCP only); undefined for anything else. */
export function parseConntrackLine(line: string): Tuples | undefined {
  const fields = line.trim().split(/\s+/);
  if (fields[0] !== 'ipv4' || fields[2] !== 'tcp') return undefined;
  const seen: Record<string, string[]> = { src: [], dst: [], sport: [], dport: [] };
  for (const f of fields) {
    const eq = f.indexOf('=');
    if (eq < 0) continue;
    const key = f.slice(0, eq);
    if (key in seen) seen[key]!.push(f.slice(eq + 1));
  }
  if (seen.src!.length < 2 || seen.dst!.length < 2 || seen.sport!.length < 2 || seen.dport!.length < 2) return undefined;
  const tuple = (i: number) => ({ src: seen.src![i]!, dst: seen.dst![i]!, sport: Number(seen.sport![i]), dport: Number(seen.dport![i]) });
  return { original: tuple(0), reply: tuple(1) };
}

/** Finds the connection in a table's text. */
export function findOriginalDestination(table: string, peer: Destination, localPort: number): Destination | undefined {
  const address = unmapped(peer.address);
  for (const line of table.split('\n')) {
    if (!line.includes(`dport=${peer.port}`)) continue;
    const t = parseConntrackLine(line);
    if (!t) continue;
    if (t.reply.dst === address && t.reply.dport === peer.port && t.reply.sport === localPort) {
      return { address: t.original.dst, port: t.original.dport };
    }
  }
  return undefined;
}

export class ConntrackLookup implements OriginalDestinationLookup {
  constructor(private readonly path: string = CONNTRACK_TABLE) {}

  async lookup(peer: Destination, localPort: number): Promise<Destination | undefined> {
    let table: string;
    try {
      table = await readFile(this.path, 'utf8');
    } catch {
      return undefined;
    }
    return findOriginalDestination(table, peer, localPort);
  }

  /** Whether this process can read the table at all (said once at start, not per connection). */
  async readable(): Promise<boolean> {
    try {
      await readFile(this.path, 'utf8');
      return true;
    } catch {
      return false;
    }
  }
}

/** `::ffff:10.0.0.1` (a dual-stack socket's view of an IPv4 peer) → `10.0.0.1`. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
