// The sidecar's DNS proxy (Istio's DNS capture): the names it answers from the snapshot (Services
// and their short forms, ServiceEntry addresses, auto-allocated addresses, wildcards), the captured
// TCP table knowing auto-allocated addresses, and the proxy itself over real UDP and TCP sockets,
// forwarding what the mesh does not know to a stand-in nameserver and answering SERVFAIL and
// FORMERR where it must. The end-to-end capture is in dns-capture-netns.test.ts.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import * as packet from 'dns-packet';
import { pino } from 'pino';
import { parseConfigText } from '../src/core/config/load.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import type { Snapshot, SidecarRole } from '../src/core/snapshot/snapshot.js';
import { buildNameTable } from '../src/core/dns/name-table.js';
import { createDnsProxy, type DnsProxy } from '../src/sidecar/dns/dns-proxy.js';
import { Upstream } from '../src/sidecar/dns/upstream.js';
import { FrameReader, frame } from '../src/sidecar/dns/tcp-frames.js';
import { FIXED_DEPS } from './helpers/route-table.js';
import { startStandInDns, UPSTREAM_ANSWER, type StandInDns } from './helpers/dns-upstream.js';

const service = (name: string, ns: string, clusterIP: string, port = 80): string => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec: {clusterIP: ${clusterIP}, ports: [{name: http, port: ${port}}]}
`;
const entry = (name: string, hosts: readonly string[], extra: string, port = 443, protocol = 'TLS'): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${hosts.join(', ')}]
  ports: [{number: ${port}, name: p, protocol: ${protocol}}]
  location: MESH_EXTERNAL
${extra}`;
const headless = `apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec: {clusterIP: None, ports: [{name: tcp, port: 5432}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-1, namespace: default, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{name: tcp, port: 5432}]
endpoints:
- {addresses: [10.1.0.5], hostname: db-0, conditions: {ready: true}}
- {addresses: [10.1.0.6], hostname: db-1, conditions: {ready: true}}
- {addresses: [10.1.0.7], conditions: {ready: false}}
`;

const MESH = [
  service('product', 'default', '10.96.0.20'),
  service('ratings', 'shop', '10.96.0.30'),
  headless,
  entry('fixed', ['address.internal'], '  addresses: [198.51.100.1, 2001:db8::1]\n  resolution: STATIC\n  endpoints: [{address: 198.51.100.1}]\n', 80, 'HTTP'),
  entry('wild-addressed', ['"*.addressed.example"'], '  addresses: [198.51.100.9]\n  resolution: NONE\n'),
  entry('wild', ['"*.wikipedia.org"'], '  resolution: NONE\n'),
  entry('db-a', ['db-a.external'], '  resolution: DNS\n', 9000, 'TCP'),
  entry('db-b', ['db-b.external'], '  resolution: DNS\n', 9000, 'TCP'),
  entry('passthrough', ['none.external'], '  resolution: NONE\n'),
  entry('block', ['block.external'], '  addresses: [192.0.2.0/24]\n  resolution: NONE\n'),
].join('---\n');

const role = (autoAllocate: boolean): SidecarRole => ({ kind: 'sidecar', namespace: 'default', labels: { app: 'client' }, serviceAccount: 'client', outboundTrafficPolicy: 'ALLOW_ANY', ...(autoAllocate ? { dnsAutoAllocate: true } : {}) });
const snapshotOf = (yaml: string, autoAllocate = true): Snapshot => buildSnapshot(parseConfigText(yaml, 'mesh.yaml'), role(autoAllocate), FIXED_DEPS).snapshot;
const tableOf = (s: Snapshot) => buildNameTable({ registry: s.registry, resources: s.resources, ...(s.autoAllocated ? { autoAllocated: s.autoAllocated } : {}), namespace: 'default' });

describe('the DNS name table', () => {
  const snapshot = snapshotOf(MESH);
  const table = tableOf(snapshot);
  const v4 = (name: string): readonly string[] | undefined => table.lookup(name)?.ipv4;

  it('answers a Service by its FQDN and the short forms a search list expands, bare names only in its own namespace', () => {
    for (const name of ['product.default.svc.cluster.local', 'product.default.svc.cluster.local.', 'product.default.svc', 'product.default', 'PRODUCT', 'product']) assert.deepEqual(v4(name), ['10.96.0.20'], name);
    assert.deepEqual(v4('ratings.shop'), ['10.96.0.30']);
    assert.equal(v4('ratings'), undefined, 'another namespace\'s Service has no bare name here');
  });

  it('answers a headless Service with its ready endpoints, and each pod with a hostname by name', () => {
    assert.deepEqual(v4('db.default.svc.cluster.local'), ['10.1.0.5', '10.1.0.6']);
    assert.deepEqual(v4('db-1.db.default.svc.cluster.local'), ['10.1.0.6']);
  });

  it('answers ServiceEntry addresses by family, wildcards only with addresses, never CIDR blocks', () => {
    assert.deepEqual(table.lookup('address.internal'), { ipv4: ['198.51.100.1'], ipv6: ['2001:db8::1'] });
    assert.deepEqual(v4('a.b.addressed.example'), ['198.51.100.9']);
    assert.equal(table.lookup('en.wikipedia.org'), undefined, 'a wildcard without addresses is forwarded');
    assert.equal(table.lookup('block.external'), undefined);
    assert.equal(table.lookup('none.external'), undefined, 'resolution NONE gets no allocated address');
    assert.equal(table.lookup('www.example.com'), undefined);
  });

  it("answers a name with the pod's first search domain after it by a CNAME to the name", () => {
    const searched = buildNameTable({ registry: snapshot.registry, resources: snapshot.resources, namespace: 'default', searchDomain: 'default.svc.cluster.local' });
    assert.deepEqual(searched.lookup('address.internal.default.svc.cluster.local.'), { ipv4: ['198.51.100.1'], ipv6: ['2001:db8::1'], canonical: 'address.internal' });
    assert.equal(searched.lookup('product.default.svc.cluster.local')?.canonical, undefined, 'a name that is itself known is not an expansion');
    assert.equal(searched.lookup('www.example.com.default.svc.cluster.local'), undefined);
  });

    it('auto-allocates one address of 240.240.0.0/16 and 2001:2::/48 per entry without addresses, and capture routes by it', () => {
    const a = table.lookup('db-a.external')!;
    const b = table.lookup('db-b.external')!;
    assert.match(a.ipv4[0]!, /^240\.240\.\d+\.\d+$/);
    assert.match(a.ipv6[0]!, /^2001:2::f0f0:[0-9a-f]+$/);
    assert.notEqual(a.ipv4[0], b.ipv4[0]);
    // Two TCP ServiceEntries on one port: the address the app dialled tells them apart.
    assert.equal(snapshot.meshTcp!.byAddress(a.ipv4[0]!, 9000)?.service.hostname, 'db-a.external');
    assert.equal(snapshot.meshTcp!.byAddress(b.ipv4[0]!, 9000)?.service.hostname, 'db-b.external');
    // The same set gives the same addresses; without the metadata there are none.
    assert.deepEqual(tableOf(snapshotOf(MESH)).lookup('db-a.external'), a);
    assert.equal(tableOf(snapshotOf(MESH, false)).lookup('db-a.external'), undefined);
  });
});

/** One query over UDP or TCP to the proxy; resolves with the answer's bytes. */
function ask(port: number, query: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (transport === 'udp') {
      const s = createSocket('udp4');
      s.on('message', (m) => {
        s.close();
        resolve(m);
      });
      s.on('error', reject);
      s.send(query, port, '127.0.0.1');
      return;
    }
    const c = connect(port, '127.0.0.1', () => c.write(frame(query)));
    const reader = new FrameReader();
    c.on('data', (d: Buffer) => {
      const m = reader.push(d)[0];
      if (m) {
        c.destroy();
        resolve(m);
      }
    });
    c.on('error', reject);
  });
}

/** dns-packet decodes the response code, its types do not declare it. */
const rcodeOf = (p: packet.DecodedPacket): string | undefined => (p as { rcode?: string }).rcode;
const query = (name: string, type: 'A' | 'AAAA' | 'TXT' = 'A', id = 4242): Buffer => packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] });

describe('the DNS proxy over UDP and TCP', () => {
  let upstream: StandInDns;
  let proxy: DnsProxy;
  let port = 0;
  let current: Snapshot | undefined;
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, new Writable({ write: (chunk, _e, cb) => (lines.push(String(chunk)), cb()) }));

  before(async () => {
    upstream = await startStandInDns();
    current = snapshotOf(MESH);
    // A nameserver that refuses comes first: the next one is asked.
    proxy = createDnsProxy({ snapshot: () => current, upstream: new Upstream([{ address: '127.0.0.1', port: 9 }, { address: '127.0.0.1', port: upstream.port }], 1000), namespace: 'default', log });
    port = await proxy.listen(0, '127.0.0.1');
  });
  after(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  for (const transport of ['udp', 'tcp'] as const) {
    it(`answers a mesh name itself, authoritatively (${transport})`, async () => {
      const before = upstream.asked.length;
      const answer = packet.decode(await ask(port, query('product', 'A', 7), transport));
      assert.equal(answer.id, 7);
      assert.equal(rcodeOf(answer), 'NOERROR');
      assert.ok(answer.flag_aa);
      assert.deepEqual(answer.answers!.map((a) => [a.name, a.type, (a as { data: string }).data, (a as { ttl: number }).ttl]), [['product', 'A', '10.96.0.20', 30]]);
      // No IPv6 address: NOERROR with no record, never NXDOMAIN.
      const six = packet.decode(await ask(port, query('product.default.svc.cluster.local', 'AAAA'), transport));
      assert.equal(rcodeOf(six), 'NOERROR');
      assert.deepEqual(six.answers, []);
      assert.equal(upstream.asked.length, before, 'mesh names never go upstream');
    });

    it(`forwards other names and returns the nameserver's answer unchanged (${transport})`, async () => {
      const bytes = await ask(port, query(`www.example.com`, 'A', 99), transport);
      assert.deepEqual(bytes, upstream.sent.at(-1));
      const answer = packet.decode(bytes);
      assert.equal((answer.answers![0] as { data: string }).data, UPSTREAM_ANSWER);
      assert.equal(rcodeOf(packet.decode(await ask(port, query('gone.nx.test'), transport))), 'NXDOMAIN');
      // Other record types of mesh names go upstream too, as Istio's agent sends them.
      await ask(port, query('product', 'TXT'), transport);
      assert.equal(upstream.asked.at(-1), 'product');
    });
  }

  it('answers a search-list expansion of a mesh name with the CNAME and the address', async () => {
    const searching = createDnsProxy({ snapshot: () => current, upstream: new Upstream([], 1000), namespace: 'default', searchDomain: 'default.svc.cluster.local', log });
    const p = await searching.listen(0, '127.0.0.1');
    try {
      const a = packet.decode(await ask(p, query('address.internal.default.svc.cluster.local'), 'udp'));
      assert.deepEqual(a.answers!.map((r) => [r.type, r.name, (r as { data: string }).data]), [['CNAME', 'address.internal.default.svc.cluster.local', 'address.internal'], ['A', 'address.internal', '198.51.100.1']]);
    } finally {
      await searching.close();
    }
  });

    it('follows the snapshot: a Service added later is answered, a removed one forwarded', async () => {
    current = snapshotOf(service('late', 'default', '10.96.0.99'));
    assert.deepEqual(packet.decode(await ask(port, query('late'), 'udp')).answers!.map((a) => (a as { data: string }).data), ['10.96.0.99']);
    assert.equal((packet.decode(await ask(port, query('product'), 'udp')).answers![0] as { data: string }).data, UPSTREAM_ANSWER);
    current = snapshotOf(MESH);
  });

  it('answers SERVFAIL when no nameserver answers, FORMERR to a query it cannot read, and keeps serving', async () => {
    const dead = createDnsProxy({ snapshot: () => current, upstream: new Upstream([{ address: '127.0.0.1', port: 9 }], 1000), namespace: 'default', log });
    const deadPort = await dead.listen(0, '127.0.0.1');
    try {
      assert.equal(rcodeOf(packet.decode(await ask(deadPort, query('www.example.com'), 'udp'))), 'SERVFAIL');
      assert.equal(rcodeOf(packet.decode(await ask(deadPort, query('www.example.com'), 'tcp'))), 'SERVFAIL');
    } finally {
      await dead.close();
    }
    // A header and garbage after it: FORMERR with the query's id, and a log line.
    const junk = Buffer.concat([query('x').subarray(0, 12), Buffer.from([0xc0, 0xff, 0xee])]);
    const formerr = packet.decode(await ask(port, junk, 'udp'));
    assert.equal(formerr.id, 4242);
    assert.equal(rcodeOf(formerr), 'FORMERR');
    assert.ok(lines.some((l) => l.includes('DNS query not readable')), lines.join(''));
    // Too short for a header: dropped; the same socket's next query is answered.
    const s = createSocket('udp4');
    const first = new Promise<Buffer>((r) => s.once('message', r));
    s.send(Buffer.from([1, 2, 3]), port, '127.0.0.1');
    s.send(query('product', 'A', 11), port, '127.0.0.1');
    const reply = packet.decode(await first);
    s.close();
    assert.equal(reply.id, 11);
  });

  it('cuts a UDP answer that does not fit 512 bytes and sets TC; TCP carries it whole', async () => {
    const many = Array.from({ length: 60 }, (_, i) => `10.2.0.${i + 1}`);
    current = snapshotOf(entry('big', ['big.internal'], `  addresses: [${many.join(', ')}]\n  resolution: STATIC\n  endpoints: [{address: 10.2.0.1}]\n`));
    const udp = packet.decode(await ask(port, query('big.internal'), 'udp'));
    assert.ok(udp.flag_tc);
    assert.ok(udp.answers!.length < 60 && udp.answers!.length > 0);
    const tcp = packet.decode(await ask(port, query('big.internal'), 'tcp'));
    assert.ok(!tcp.flag_tc);
    assert.equal(tcp.answers!.length, 60);
    current = snapshotOf(MESH);
  });
});
