// The access log of TCP connections, as Envoy's tcp_proxy writes it in Istio's access-logging task: a
// connection through the mesh gets one line at each proxy when it closes — the client sidecar's
// (upstream_cluster `outbound|9000||tcp-echo…`, the server sidecar's address as upstream_host) and
// the server sidecar's (`inbound|<port>||`, the app as upstream_host) — with the bytes each way,
// response_code 0 and no HTTP fields. A connection AuthorizationPolicy closes is logged with
// `connection_termination_details: rbac_deny_close`; one that finds no endpoint with its flag (UF).
// Real sockets, mutual TLS between the sidecars; capture stood in for by the original-destination lookup.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { completeJsonLines, eventually } from './helpers/gateway.js';
import { RecordedDestinations } from './helpers/original-destinations.js';
import { sidecarOptions, testAuthority, untilSnapshot } from './helpers/mesh.js';
import { closedPort } from './helpers/upstream.js';

const ECHO_IP = '10.96.0.20';
const GONE_IP = '10.96.0.21';

/** The JSON lines of an access log whose `upstream_cluster` satisfies `which`, once there are `count` of them. */
async function tcpLines(file: string, which: (cluster: string) => boolean, count = 1): Promise<Array<Record<string, unknown>>> {
  let found: Array<Record<string, unknown>> = [];
  await eventually(async () => {
    const text = await readFile(file, 'utf8').catch(() => '');
    const lines = completeJsonLines(text);
    found = lines.filter((l) => l['response_code'] === 0 && typeof l['upstream_cluster'] === 'string' && which(l['upstream_cluster']));
    return found.length >= count;
  });
  return found;
}

describe('TCP access log line (Envoy tcp_proxy, as Istio logs it)', () => {
  let dir: string;
  let echo: Server;
  let echoPort: number;
  /** Where each connection the echo server accepted came from. */
  const echoSaw: string[] = [];
  let client: RunningSidecar, server: RunningSidecar;
  const destinations = new RecordedDestinations();

  /** The client app connects to `ip:9000`, sends `text` and closes once it has the answer (or was closed). */
  const exchange = (ip: string, text: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const s: Socket = netConnect(client.outboundPort, '127.0.0.1');
      let data = '';
      s.once('connect', () => {
        destinations.record(s.localPort!, { address: ip, port: 9000 });
        s.write(text);
      });
      s.on('data', (d: Buffer) => {
        data += d.toString();
        if (data.endsWith(text)) s.end();
      });
      s.once('close', () => resolve(data));
      s.once('error', reject);
    });

  before(async () => {
    const ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-tcp-log-'));
    echo = createServer((s) => {
      echoSaw.push(`${s.remoteAddress}:${s.remotePort}`);
      s.on('error', () => s.destroy());
      s.on('data', (d) => s.write(`hello ${d.toString()}`));
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as AddressInfo).port;
    await writeFile(join(dir, 'mesh.yaml'), 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n');
    server = await startSidecar({ ...sidecarOptions(ca, dir, 'tcp-echo', echoPort), labels: { app: 'tcp-echo' }, accessLog: join(dir, 'server.log') });
    client = await startSidecar({ ...sidecarOptions(ca, dir, 'curl', 1), capture: true, originalDestination: destinations, accessLog: join(dir, 'client.log') });
    const sidecar = { 'security.istio.io/tlsMode': 'istio' };
    await writeFile(
      join(dir, 'services.yaml'),
      [
        serviceYaml('tcp-echo', [{ pod: 'tcp-echo-0', port: server.inboundPort, serviceAccount: 'tcp-echo', labels: sidecar }], { port: 9000, portName: 'tcp', clusterIP: ECHO_IP }),
        serviceYaml('gone', [{ pod: 'gone-0', port: await closedPort() }], { port: 9000, portName: 'tcp', clusterIP: GONE_IP }),
      ].join('---\n'),
    );
    await Promise.all([client, server].map((s) => untilSnapshot(s.holder, (snap) => snap.registry.services.size >= 2)));
  });

  after(async () => {
    await Promise.all([client.destroy(), server.destroy()]);
    echo.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('one line at each sidecar when a connection through the mesh closes, with its bytes and ends', async () => {
    assert.equal(await exchange(ECHO_IP, 'world'), 'hello world');
    const [out] = await tcpLines(join(dir, 'client.log'), (c) => c.startsWith('outbound|9000||tcp-echo.'));
    assert.equal(out!['upstream_host'], `127.0.0.1:${server.inboundPort}`);
    assert.equal(out!['response_flags'], '-');
    assert.equal(out!['bytes_received'], 5, 'what the app sent');
    assert.equal(out!['bytes_sent'], 11, 'what the app got back');
    for (const http of ['method', 'path', 'protocol', 'authority', 'request_id']) assert.equal(out![http], null, `${http} is empty on a TCP line`);
    const [inbound] = await tcpLines(join(dir, 'server.log'), (c) => c === `inbound|${echoPort}||`);
    assert.equal(inbound!['upstream_host'], `127.0.0.1:${echoPort}`);
    assert.equal(inbound!['response_flags'], '-');
  });

  it("the connection's ends, as Istio's default format prints them", async () => {
    assert.equal(await exchange(ECHO_IP, 'ends'), 'hello ends');
    const lines = await tcpLines(join(dir, 'client.log'), (c) => c.startsWith('outbound|9000||tcp-echo.'), 2);
    const out = lines.at(-1)!;
    // The client sidecar's: the app dialled the Service's address (its original destination).
    assert.equal(out['downstream_local_address'], `${ECHO_IP}:9000`);
    assert.match(String(out['upstream_local_address']), /^127\.0\.0\.1:\d+$/);
    // The server sidecar saw the connection come from the client sidecar's upstream end.
    const inbound = (await tcpLines(join(dir, 'server.log'), (c) => c === `inbound|${echoPort}||`, 2)).find((l) => l['downstream_remote_address'] === out['upstream_local_address']);
    assert.ok(inbound, `a server line from ${String(out['upstream_local_address'])}`);
    assert.equal(inbound['downstream_local_address'], `127.0.0.1:${server.inboundPort}`);
    assert.ok(echoSaw.includes(String(inbound['upstream_local_address'])), `the app saw ${echoSaw.join(', ')}, the line says ${String(inbound['upstream_local_address'])}`);
    assert.equal(out['upstream_transport_failure_reason'], null);
  });

  it('a connection with no endpoint to reach is logged with its flag', async () => {
    assert.equal(await exchange(GONE_IP, 'x'), '');
    const [line] = await tcpLines(join(dir, 'client.log'), (c) => c.startsWith('outbound|9000||gone.'));
    assert.match(String(line!['response_flags']), /^UF/);
    assert.equal(line!['upstream_transport_failure_reason'], 'delayed connect error: 111');
    assert.equal(line!['upstream_local_address'], null);
  });

  it('a connection AuthorizationPolicy closes is logged with rbac_deny_close', async () => {
    await writeFile(
      join(dir, 'deny.yaml'),
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-curl, namespace: default}\nspec:\n  selector: {matchLabels: {app: tcp-echo}}\n  action: DENY\n  rules:\n  - from: [{source: {principals: [cluster.local/ns/default/sa/curl]}}]\n',
    );
    await untilSnapshot(server.holder, (snap) => snap.resources.some((r) => r.kind === 'AuthorizationPolicy'));
    assert.equal(await exchange(ECHO_IP, 'denied'), '');
    const lines = await tcpLines(join(dir, 'server.log'), (c) => c === `inbound|${echoPort}||`, 2);
    assert.ok(lines.some((l) => l['connection_termination_details'] === 'rbac_deny_close'));
  });
});
