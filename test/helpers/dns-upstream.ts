// A stand-in for the pod's nameserver (kube-dns): a dns-packet server over UDP and TCP that answers
// every A question with 203.0.113.7 and every name under `nx.test` or `cluster.local` with NXDOMAIN
// (as kube-dns answers a search-list expansion it does not know), and keeps the
// names it was asked and the bytes it answered with, so a test can check what was forwarded and that
// the answer came back unchanged. Run as a script (`node dns-upstream.js PORT HOST`), it serves until
// killed and writes `dns upstream serving on HOST:PORT` to stderr once both sockets listen; without
// the port it does nothing, as when `node --test dist/test/` loads every file under it.

import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import * as packet from 'dns-packet';
import { FrameReader, frame } from '../../src/sidecar/dns/tcp-frames.js';

export const UPSTREAM_ANSWER = '203.0.113.7';

export interface StandInDns {
  readonly port: number;
  readonly asked: string[];
  readonly sent: Buffer[];
  close(): Promise<void>;
}

function reply(bytes: Buffer): Buffer {
  const q = packet.decode(bytes);
  const question = q.questions![0]!;
  const nx = /(^|\.)(nx\.test|cluster\.local)$/i.test(question.name);
  const answers: packet.Answer[] = !nx && question.type === 'A' ? [{ type: 'A', name: question.name, ttl: 60, class: 'IN', data: UPSTREAM_ANSWER }] : [];
  return packet.encode({ type: 'response', id: q.id ?? 0, flags: packet.RECURSION_AVAILABLE | packet.RECURSION_DESIRED | (nx ? 3 : 0), questions: [question], answers });
}

export async function startStandInDns(host = '127.0.0.1', port = 0, onAsked?: (name: string) => void): Promise<StandInDns> {
  const asked: string[] = [];
  const sent: Buffer[] = [];
  const answer = (bytes: Buffer): Buffer => {
    const name = packet.decode(bytes).questions![0]!.name;
    asked.push(name);
    onAsked?.(name);
    const out = reply(bytes);
    sent.push(out);
    return out;
  };
  const tcp = createServer((s) => {
    const reader = new FrameReader();
    s.on('data', (d: Buffer) => reader.push(d).forEach((m) => s.write(frame(answer(m)))));
    s.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => tcp.listen(port, host, r));
  const bound = (tcp.address() as AddressInfo).port;
  const udp = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  udp.on('message', (m, from) => udp.send(answer(m), from.port, from.address));
  await new Promise<void>((r) => udp.bind(bound, host, r));
  return {
    port: bound,
    asked,
    sent,
    close: () => new Promise((r) => {
      udp.close();
      tcp.close(() => r());
    }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] !== undefined) {
  const host = process.argv[3] ?? '127.0.0.1';
  void startStandInDns(host, Number(process.argv[2]), (name) => process.stderr.write(`asked ${name}\n`)).then((s) => process.stderr.write(`dns upstream serving on ${host}:${s.port}\n`));
}
