// DNS capture end to end, in network namespaces with the real rules: a pod whose init container ran
// `meshgate iptables` with ISTIO_META_DNS_CAPTURE=true and whose sidecar (uid 1337) runs with it and
// ISTIO_META_DNS_AUTO_ALLOCATE=true; its resolv.conf (what `ip netns exec` mounts from
// /etc/netns/<ns>/) names a nameserver in another namespace, a dns-packet stand-in for kube-dns. The
// app (uid 1000) resolves with the system resolver, as any app does: a mesh Service's name comes back
// as its cluster IP from the sidecar, an external name from the stand-in through the sidecar (whose
// own query escapes capture), and two TCP ServiceEntries on one port, given allocated addresses, are
// reached each at its own endpoint through the captured connection.
// Needs root (network namespaces, iptables): skipped with the reason otherwise.

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { APP_UID, BIN, NetnsLab, netnsSkipReason, NODE, type Daemon } from './helpers/netns.js';

const IP = { cp: '10.77.0.2', a: '10.77.0.3', out: '10.77.0.5', dns: '10.77.0.53' };
const SERVICE_IP = '10.77.1.10';
const STAND_IN = fileURLToPath(new URL('./helpers/dns-upstream.js', import.meta.url));
const DNS_ON = { ISTIO_META_DNS_CAPTURE: 'true' };

/** A TCP ServiceEntry without addresses (so it gets one allocated), its endpoint on `out` at `port`. */
const tcpEntry = (name: string, port: number): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.external]
  ports: [{number: 9000, name: tcp, protocol: TCP}]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints: [{address: ${IP.out}, ports: {tcp: ${port}}}]
`;

/** The app's lookup through the system resolver (getaddrinfo reads the pod's resolv.conf). */
const lookup = (name: string): string => `require('node:dns').lookup(${JSON.stringify(name)}, { family: 4 }, (e, a) => console.log(e ? 'error ' + e.code : a))`;
const callTcp = (name: string): string => `const s = require('node:net').connect(9000, ${JSON.stringify(name)}, () => s.write('hi')); s.on('data', (d) => { console.log(String(d)); s.end(); }); s.on('error', (e) => console.log('error ' + e.code));`;

const reason = netnsSkipReason();

describe('DNS capture in network namespaces', { skip: reason ?? false }, () => {
  let lab: NetnsLab<keyof typeof IP>;
  let upstream: Daemon;

  /** Runs `script` as the app until it prints `expected` (the sidecar may not have the set yet). */
  const appUntil = async (script: string, expected: string | RegExp): Promise<string> => {
    const done = (out: string): boolean => (typeof expected === 'string' ? out === expected : expected.test(out));
    let out = '';
    for (let i = 0; i < 40 && !done(out); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 250));
      out = (await lab.run('a', [NODE, '-e', script], APP_UID)).out.trim();
    }
    return out;
  };

  before(async () => {
    lab = new NetnsLab(IP);
    lab.up();
    // The pod's resolv.conf, as the kubelet writes it; `ip netns exec` mounts it over /etc/resolv.conf.
    mkdirSync(`/etc/netns/${lab.ns.a}`, { recursive: true });
    writeFileSync(`/etc/netns/${lab.ns.a}/resolv.conf`, `search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver ${IP.dns}\noptions ndots:5\n`);
    // Allocated addresses are virtual, as cluster IPs are: a route makes them dialable, capture does the rest.
    await lab.run('a', ['ip', 'route', 'add', '240.240.0.0/16', 'dev', 'eth0']);
    upstream = lab.daemon('dns', [NODE, STAND_IN, '53', IP.dns]);
    await lab.untilLogged(upstream, /dns upstream serving/);
    await lab.control('cp', {
      'product.yaml': serviceYaml('product-service', [{ pod: 'product-b', port: 8080, address: '10.77.0.4' }], { port: 8080, clusterIP: SERVICE_IP }),
      'entries.yaml': `${tcpEntry('db-a', 9001)}---\n${tcpEntry('db-b', 9002)}`,
    }, ['client-app']);
    const init = await lab.run('a', [NODE, BIN, 'iptables'], undefined, DNS_ON);
    assert.ok(init.ok, `meshgate iptables: ${init.err}`);
    for (const [port, tag] of [[9001, 'A'], [9002, 'B']] as const) {
      lab.daemon('out', [NODE, '-e', `require('node:net').createServer((s) => s.on('data', (d) => s.end('${tag}:' + d))).listen(${port}, ${JSON.stringify(IP.out)})`]);
    }
    const sidecar = lab.sidecar('a', 'client-app', [], { ...DNS_ON, ISTIO_META_DNS_AUTO_ALLOCATE: 'true' });
    await lab.waitReady('a', 'http://127.0.0.1:15021/healthz/ready', sidecar);
  });

  after(() => {
    if (!lab) return;
    lab.down();
    rmSync(`/etc/netns/${lab.ns.a}`, { recursive: true, force: true });
  });

  it('installs the DNS redirect for the pod\'s nameserver', async () => {
    const nat = await lab.run('a', ['iptables-save', '-t', 'nat']);
    assert.match(nat.out, new RegExp(`-A ISTIO_OUTPUT_DNS -d ${IP.dns.replace(/\./g, '\\.')}/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053`), nat.out);
    const raw = await lab.run('a', ['iptables-save', '-t', 'raw']);
    assert.match(raw.out, /-j CT --zone 2/, raw.out);
  });

  it('a mesh Service name resolves to its cluster IP, answered by the sidecar', async () => {
    assert.equal(await appUntil(lookup('product-service'), SERVICE_IP), SERVICE_IP, lab.logs());
    assert.equal(await appUntil(lookup('product-service.default.svc.cluster.local'), SERVICE_IP), SERVICE_IP);
    // Nothing of it went upstream: the resolver's first expansion of the FQDN (search domain after it) is
    // answered with a CNAME to the FQDN and its address, so the resolver tries no other.
    assert.doesNotMatch(upstream.log(), /asked product-service/, 'the sidecar answered it, not the nameserver');
  });

  it('an external name is forwarded to the pod\'s nameserver, whose answer comes back', async () => {
    assert.equal(await appUntil(lookup('www.example.com'), '203.0.113.7'), '203.0.113.7', lab.logs());
    assert.match(upstream.log(), /asked www\.example\.com\n/);
  });

  it('two TCP ServiceEntries on one port, told apart by their allocated addresses', async () => {
    const a = await appUntil(lookup('db-a.external'), /^240\./);
    assert.match(a, /^240\.240\.\d+\.\d+$/, lab.logs());
    assert.equal(await appUntil(callTcp('db-a.external'), 'A:hi'), 'A:hi', lab.logs());
    assert.equal(await appUntil(callTcp('db-b.external'), 'B:hi'), 'B:hi', lab.logs());
  });
});
