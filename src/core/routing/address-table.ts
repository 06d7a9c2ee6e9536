// The addresses a sidecar's app may dial, each naming the mesh hosts behind it: Kubernetes cluster
// IPs, a headless Service's pod addresses, and ServiceEntry `addresses`, exact IPs or CIDR blocks
// (`192.168.10.0/24`). A destination IP is looked up as Istio's listeners match it: an exact address
// first, then the blocks that contain it from the longest prefix to the shortest, so a /28 inside a
// /24 takes the addresses it covers. The caller takes the first host that serves the dialled port.

import { ipMatcher, toIpAddress, type IpTest } from '../policy/authz-match.js';

interface Block {
  readonly family: 'ipv4' | 'ipv6';
  /** Prefix length in its family (an IPv4-mapped IPv6 block counts in IPv4 bits). */
  readonly bits: number;
  readonly contains: IpTest;
  readonly hosts: string[];
}

export class AddressTable {
  readonly #exact = new Map<string, string[]>();
  readonly #blocks = new Map<string, Block>();
  /** Longest prefix first; made by `seal()`, once every address is in. */
  #ordered: readonly Block[] = [];

  /** `address` is an IP or a CIDR block; anything else (validation refuses it) is ignored. */
  add(address: string, host: string): void {
    const slash = address.indexOf('/');
    if (slash < 0) {
      const list = this.#exact.get(address) ?? [];
      list.push(host);
      this.#exact.set(address, list);
      return;
    }
    const known = this.#blocks.get(address);
    if (known) return void known.hosts.push(host);
    const base = toIpAddress(address.slice(0, slash));
    const written = Number(address.slice(slash + 1));
    if (!base || !Number.isInteger(written)) return;
    const mappedV4 = base.family === 'ipv4' && address.includes(':');
    this.#blocks.set(address, { family: base.family, bits: mappedV4 ? written - 96 : written, contains: ipMatcher([address]), hosts: [host] });
  }

  /** Orders the blocks for lookups (at build time, so a connection only looks up). */
  seal(): this {
    this.#ordered = [...this.#blocks.values()].sort((a, b) => b.bits - a.bits);
    return this;
  }

  /** The hosts behind `ip`, most specific address first. */
  *hostsFor(ip: string): Iterable<string> {
    yield* this.#exact.get(ip) ?? [];
    if (this.#ordered.length === 0) return;
    const parsed = toIpAddress(ip);
    if (!parsed) return;
    // An IPv4 peer seen as `::ffff:a.b.c.d` is also known by its plain address.
    if (parsed.address !== ip) yield* this.#exact.get(parsed.address) ?? [];
    for (const block of this.#ordered) if (block.family === parsed.family && block.contains(parsed)) yield* block.hosts;
  }
}
