// The sidecar's DNS proxy (Istio's DNS capture, ISTIO_META_DNS_CAPTURE): the pod's DNS, redirected
// by the init container's rules, arrives on 127.0.0.1:15053 over UDP and TCP. A/AAAA questions for
// names the mesh knows (core/dns/name-table.ts, rebuilt whenever the snapshot changes) are answered
// here, authoritatively, with a 30 s TTL: a known name with no address of the asked family answers
// NOERROR with no record (NXDOMAIN would make a client that asks A and AAAA at once give up on the
// name). Everything else (other names, other record types) is forwarded to the pod's nameservers
// (upstream.ts) and their answer returned as it came; when none answers, SERVFAIL. A query that
// cannot be read is answered FORMERR when its header can be, else dropped, and logged either way;
// no query stops the proxy. Wire format: dns-packet.

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import * as packet from 'dns-packet';
import type { Logger } from 'pino';
import type { Snapshot } from '../../core/snapshot/snapshot.js';
import { buildNameTable, type NameRecords, type NameTable } from '../../core/dns/name-table.js';
import { listenOn } from '../../core/proxy/listen.js';
import { FrameReader, frame } from './tcp-frames.js';
import type { Upstream } from './upstream.js';

/** Istio's TTL for the answers it gives itself: short, so that clients that cache follow changes. */
export const ANSWER_TTL_SECONDS = 30;
/** RFC 1035's UDP limit when the query carries no EDNS payload size. */
const PLAIN_UDP_LIMIT = 512;
const RCODE = { FORMERR: 1, SERVFAIL: 2 } as const;
/** A TCP client that sends nothing for this long is closed (RFC 7766 suggests seconds). */
const TCP_IDLE_MS = 10_000;

export interface DnsProxyOptions {
  readonly snapshot: () => Snapshot | undefined;
  readonly upstream: Upstream;
  /** The proxy's namespace (its Services answer to their bare name) and the cluster domain. */
  readonly namespace: string;
  readonly domain?: string;
  /** The pod's first search domain (resolv.conf): its expansions of mesh names are answered with a CNAME. */
  readonly searchDomain?: string;
  readonly log: Logger;
}

export interface DnsProxy {
  /** Listens on `port` (0 = any free port) over UDP and TCP, the same port for both; resolves to it. */
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

export function createDnsProxy(opts: DnsProxyOptions): DnsProxy {
  const tables = new WeakMap<Snapshot, NameTable>();
  const tableFor = (s: Snapshot): NameTable => {
    let t = tables.get(s);
    if (!t) tables.set(s, (t = buildNameTable({ registry: s.registry, resources: s.resources, ...(s.autoAllocated ? { autoAllocated: s.autoAllocated } : {}), namespace: opts.namespace, ...(opts.domain ? { domain: opts.domain } : {}), ...(opts.searchDomain ? { searchDomain: opts.searchDomain } : {}) })));
    return t;
  };

  /** The answer to one query's bytes, or undefined to send nothing. Every failure it foresees is an answer. */
  const answer = async (bytes: Buffer, transport: 'udp' | 'tcp', from: string): Promise<Buffer | undefined> => {
    let query: packet.DecodedPacket;
    try {
      query = packet.decode(bytes);
    } catch (err) {
      opts.log.warn({ from, transport, bytes: bytes.length, problem: (err as Error).message }, 'DNS query not readable: ' + (bytes.length >= 12 ? 'answered FORMERR' : 'dropped'));
      return bytes.length >= 12 ? packet.encode({ type: 'response', id: bytes.readUInt16BE(0), flags: RCODE.FORMERR }) : undefined;
    }
    if (query.type !== 'query') return undefined;
    const question = query.questions?.[0];
    const snapshot = opts.snapshot();
    if (!question || !snapshot) return failure(query);
    const records = question.type === 'A' || question.type === 'AAAA' ? tableFor(snapshot).lookup(question.name) : undefined;
    if (records) return local(query, question, records, transport);
    try {
      return await opts.upstream.forward(bytes, transport);
    } catch (err) {
      opts.log.debug({ name: question.name, type: question.type, problem: (err as Error).message }, 'DNS query not answered upstream: SERVFAIL');
      return failure(query);
    }
  };

  /** `answer`, and should it fail all the same (a bug), no answer and a log line rather than a crash. */
  const guarded = (bytes: Buffer, transport: 'udp' | 'tcp', from: string): Promise<Buffer | undefined> =>
    answer(bytes, transport, from).catch((err: unknown) => {
      opts.log.error({ from, transport, problem: (err as Error).message }, 'DNS query failed: no answer sent');
      return undefined;
    });

  const udp: UdpSocket = createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    void guarded(msg, 'udp', `${rinfo.address}:${rinfo.port}`).then((reply) => {
      if (reply) udp.send(reply, rinfo.port, rinfo.address);
    });
  });
  // A send to a client that went away fails here; the socket itself goes on serving.
  udp.on('error', (err) => opts.log.debug({ problem: err.message }, 'DNS over UDP: send failed'));

  const tcp: Server = createServer((socket: Socket) => {
    const reader = new FrameReader();
    const from = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      for (const query of reader.push(chunk)) {
        void guarded(query, 'tcp', from).then((reply) => {
          if (!reply || !socket.writable) return;
          try {
            socket.write(frame(reply));
          } catch (err) {
            // Larger than a TCP message can be (a headless Service of thousands of pods): nothing to send.
            opts.log.warn({ from, problem: (err as Error).message }, 'DNS answer too large for TCP: connection closed');
            socket.destroy();
          }
        });
      }
    });
  });

  return {
    async listen(port, host) {
      // Any free port (0) is the TCP one; should UDP have that port taken, another pair is tried.
      for (let attempt = 0; ; attempt++) {
        const bound = await listenOn(tcp, port, host);
        try {
          await bindUdp(udp, bound, host);
          return bound;
        } catch (err) {
          if (port !== 0 || attempt >= 4 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
          await new Promise<void>((resolve) => tcp.close(() => resolve()));
        }
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        try {
          udp.close();
        } catch {
          // never bound
        }
        if (tcp.listening) tcp.close(() => resolve());
        else resolve();
      }),
  };
}

function bindUdp(udp: UdpSocket, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, host, () => {
      udp.off('error', reject);
      resolve();
    });
  });
}

/**
 * An authoritative answer of the mesh's own (a CNAME first when the name was a search-list expansion,
 * its target's addresses after it); over UDP cut to what the client can take, with TC set.
 */
function local(query: packet.DecodedPacket, question: packet.Question, records: NameRecords, transport: 'udp' | 'tcp'): Buffer {
  const type = question.type as 'A' | 'AAAA';
  const owner = records.canonical ?? question.name;
  const answers: packet.Answer[] = [
    ...(records.canonical ? [{ type: 'CNAME' as const, name: question.name, class: 'IN' as const, ttl: ANSWER_TTL_SECONDS, data: records.canonical }] : []),
    ...(type === 'A' ? records.ipv4 : records.ipv6).map((ip) => ({ type, name: owner, class: 'IN' as const, ttl: ANSWER_TTL_SECONDS, data: ip })),
  ];
  const flags = packet.AUTHORITATIVE_ANSWER | packet.RECURSION_AVAILABLE | (query.flag_rd ? packet.RECURSION_DESIRED : 0);
  const reply = (list: packet.Answer[], truncated: boolean): Buffer =>
    packet.encode({ type: 'response', id: query.id ?? 0, flags: flags | (truncated ? packet.TRUNCATED_RESPONSE : 0), questions: [question], answers: list });
  let out = reply(answers, false);
  if (transport === 'tcp') return out;
  const limit = Math.max(PLAIN_UDP_LIMIT, ednsPayloadSize(query));
  for (let n = answers.length - 1; out.length > limit && n >= 0; n--) out = reply(answers.slice(0, n), true);
  return out;
}

function failure(query: packet.DecodedPacket): Buffer {
  return packet.encode({ type: 'response', id: query.id ?? 0, flags: RCODE.SERVFAIL | (query.flag_rd ? packet.RECURSION_DESIRED : 0), questions: query.questions ?? [] });
}

/** The UDP payload size the client's EDNS OPT record offers, 0 without one. */
function ednsPayloadSize(query: packet.DecodedPacket): number {
  const opt = query.additionals?.find((a): a is packet.OptAnswer => a.type === 'OPT');
  return opt?.udpPayloadSize ?? 0;
}
