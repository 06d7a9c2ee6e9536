// ServiceEntry `addresses` as CIDR blocks: a captured TCP connection to an IP inside a block takes
// that ServiceEntry, the longest prefix winning (as Istio's listeners match the destination IP),
// and with `resolution: NONE` goes to the address the app dialled. The last part runs a real
// sidecar under REGISTRY_ONLY with capture stood in for by the original-destination lookup: an
// address inside the block passes, one outside is closed.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../src/core/config/load.js';
import { AddressTable } from '../src/core/routing/address-table.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { FIXED_DEPS } from './helpers/route-table.js';
import { sidecarOptions, testAuthority, untilSnapshot } from './helpers/mesh.js';
import { readCaptured, RecordedDestinations } from './helpers/original-destinations.js';
import { NO_APP } from './helpers/ports.js';
import { captureHello } from './helpers/client-hello.js';

const entry = (name: string, addresses: readonly string[], port: number, resolution = 'NONE', protocol = 'TCP'): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.internal]
  addresses: [${addresses.join(', ')}]
  ports: [{number: ${port}, name: ${protocol.toLowerCase()}, protocol: ${protocol}}]
  location: MESH_EXTERNAL
  resolution: ${resolution}
`;

describe('AddressTable', () => {
  const table = new AddressTable();
  table.add('10.0.0.0/8', 'wide');
  table.add('10.1.0.0/16', 'mid');
  table.add('10.1.2.7', 'exact');
  table.add('10.1.2.0/28', 'narrow');
  table.add('fd00::/64', 'six');
  table.add('::ffff:192.168.0.0/112', 'mapped');
  table.seal();
  const hosts = (ip: string): string[] => [...table.hostsFor(ip)];

  it('answers an exact address first, then the blocks from the longest prefix to the shortest', () => {
    assert.deepEqual(hosts('10.1.2.7'), ['exact', 'narrow', 'mid', 'wide']);
    assert.deepEqual(hosts('10.1.2.20'), ['mid', 'wide']);
    assert.deepEqual(hosts('10.200.0.1'), ['wide']);
    assert.deepEqual(hosts('11.0.0.1'), []);
  });

  it('keeps the families apart, and reads an IPv4-mapped block and peer as IPv4', () => {
    assert.deepEqual(hosts('fd00::5'), ['six']);
    assert.deepEqual(hosts('192.168.3.4'), ['mapped']);
    assert.deepEqual(hosts('::ffff:10.1.2.7'), ['exact', 'narrow', 'mid', 'wide']);
    assert.deepEqual(hosts('not-an-ip'), []);
  });
});

describe('the sidecar\'s TCP table with CIDR ServiceEntries', () => {
  const role = { kind: 'sidecar' as const, namespace: 'default', labels: { app: 'client' }, serviceAccount: 'client', outboundTrafficPolicy: 'ALLOW_ANY' as const };
  const yaml = [entry('range', ['192.168.10.0/24'], 9000), entry('slice', ['192.168.10.0/28'], 9000), entry('other-port', ['192.168.10.0/30'], 7000), entry('listed', ['192.168.10.1'], 9000)].join('---\n');
  const { snapshot, problems } = buildSnapshot(parseConfigText(yaml, 'mesh.yaml'), role, FIXED_DEPS);

  it('validates', () => assert.deepEqual(problems.filter((p) => p.severity === 'error'), []));

  it('takes the longest prefix that serves the port; an exact address before any block', () => {
    const host = (ip: string, port = 9000): string | undefined => snapshot.meshTcp!.byAddress(ip, port)?.service.hostname;
    assert.equal(host('192.168.10.1'), 'listed.internal');
    assert.equal(host('192.168.10.2'), 'slice.internal', '/30 has no port 9000: the /28 takes it');
    assert.equal(host('192.168.10.2', 7000), 'other-port.internal');
    assert.equal(host('192.168.10.100'), 'range.internal');
    assert.equal(host('192.168.11.1'), undefined);
    assert.equal(snapshot.meshTcp!.byAddress('192.168.10.100', 9000)?.originalDestination, true, 'resolution NONE goes where the app dialled');
  });
});

describe('a ServiceEntry named by SNI', () => {
  const role = { kind: 'sidecar' as const, namespace: 'default', labels: { app: 'client' }, serviceAccount: 'client', outboundTrafficPolicy: 'REGISTRY_ONLY' as const };
  const yaml = [entry('addressed', ['192.168.10.0/24'], 443, 'NONE', 'TLS'), entry('open', [], 443, 'NONE', 'TLS'), entry('plain', [], 9000, 'NONE', 'TCP')].join('---\n');
  const { snapshot } = buildSnapshot(parseConfigText(yaml, 'mesh.yaml'), role, FIXED_DEPS);

  it('is found by that name only on a TLS port of an entry that declares no addresses (Istio)', () => {
    assert.equal(snapshot.meshTcp!.bySni('open.internal', 443)?.service.hostname, 'open.internal');
    assert.equal(snapshot.meshTcp!.bySni('addressed.internal', 443), undefined, 'its addresses are where it is reached');
    assert.equal(snapshot.meshTcp!.bySni('plain.internal', 9000), undefined, 'a TCP port matches by address and port only');
    assert.equal(snapshot.meshTcp!.byHost('addressed.internal', 443)?.service.hostname, 'addressed.internal', 'named in a CONNECT, it is found');
    assert.equal(snapshot.meshTcp!.byAddress('192.168.10.7', 443)?.service.hostname, 'addressed.internal');
  });
});

describe('a captured connection into a CIDR ServiceEntry, under REGISTRY_ONLY', () => {
  let dir: string;
  let client: RunningSidecar;
  let server: Server;
  let port: number;
  const destinations = new RecordedDestinations();

  before(async () => {
    const ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-cidr-'));
    // An outside service on 127.0.0.2 (inside 127.0.0.0/30), answering with the address it was reached on.
    server = createServer((s) => {
      s.on('error', () => s.destroy());
      s.end(`hello from ${s.localAddress}`);
    });
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    port = (server.address() as AddressInfo).port;
    await writeFile(join(dir, 'range.yaml'), entry('range', ['127.0.0.0/30'], port, 'NONE', 'TLS'));
    client = await startSidecar({ ...sidecarOptions(ca, dir, 'client', NO_APP), capture: true, originalDestination: destinations, outboundTrafficPolicy: 'REGISTRY_ONLY' });
    await untilSnapshot(client.holder, (s) => s.meshTcp?.byAddress('127.0.0.2', port) !== undefined);
  });

  after(async () => {
    await client?.destroy();
    server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const answerFrom = (ip: string): Promise<string> => readCaptured(client.outboundPort, destinations, ip, port);

  it('passes an address inside the block to that very address, and closes one outside it', async () => {
    assert.equal(await answerFrom('127.0.0.2'), 'hello from 127.0.0.2');
    assert.equal(await answerFrom('127.0.0.3'), 'hello from 127.0.0.3');
    assert.equal(await answerFrom('127.0.0.9'), '', 'outside 127.0.0.0/30: unknown, and REGISTRY_ONLY closes it');
  });

  it('closes an address outside the block even when the ClientHello names the entry\'s host', async () => {
    const hello = await captureHello({ servername: 'range.internal' });
    assert.match(await readCaptured(client.outboundPort, destinations, '127.0.0.2', port, hello), /^hello from 127\.0\.0\.2/, 'inside: passed');
    assert.equal(await readCaptured(client.outboundPort, destinations, '127.0.0.9', port, hello), '', 'outside: the SNI does not open it');
  });
});
