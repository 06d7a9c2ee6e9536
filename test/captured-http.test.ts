// HTTP a sidecar captured on its way to an address (docs/reference/routing.md, "Captured HTTP"), as
// Istio's outbound listeners take it: on a port a service declares HTTP, by Host, a headless
// Service's request going to the pod the app dialled (ORIGINAL_DST) and an unknown Host (a pod's
// IP among them) to the address dialled (PassthroughCluster) or 502 under REGISTRY_ONLY; on a
// service's own address whose port it leaves undeclared, to that service whatever the Host; on any
// other port, as TCP; h2c with prior knowledge (a plaintext gRPC client) the same way, a port left to
// detection keeping it HTTP/2 upstream. A real sidecar with capture stood in for by the original-destination lookup,
// pods as HTTP servers on loopback addresses of their own; and a cluster IP as a Host, compiled.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as connectH2, createServer as createH2cServer, type Http2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { parseConfigText } from '../src/core/config/load.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import { outboundRouteConfig } from '../src/core/routing/compile-mesh.js';
import { normalizeHost } from '../src/core/routing/host-index.js';
import { FIXED_DEPS } from './helpers/route-table.js';
import { outboundTrafficModeOf } from '../src/core/policy/outbound-traffic-policy.js';
import { sidecarOptions, testAuthority, untilSnapshot } from './helpers/mesh.js';
import { connectCaptured, readCaptured, RecordedDestinations } from './helpers/original-destinations.js';
import { h2Request } from './helpers/raw-http.js';
import { NO_APP } from './helpers/ports.js';

/** An HTTP server on `ip` (h2c only when asked), answering with its name and the Host (authority) it was sent. */
async function pod(name: string, ip: string, port: number, h2c = false): Promise<{ server: Server | Http2Server; port: number }> {
  const answer = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => void res.end(JSON.stringify({ name, host: req.headers.host ?? req.headers[':authority'] }));
  const server = h2c ? createH2cServer(answer) : createServer(answer);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, resolve);
  });
  return { server, port: (server.address() as AddressInfo).port };
}

const slice = (svc: string, i: number, ip: string, port: number, portName: string, ready = true): string => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${svc}-${i}, namespace: default, labels: {kubernetes.io/service-name: ${svc}}}
addressType: IPv4
ports: [{name: ${portName}, port: ${port}}]
endpoints:
- {addresses: [${ip}], hostname: ${svc}-${i}${ready ? '' : ', conditions: {ready: false}'}}
`;

const service = (name: string, clusterIP: string, portName: string, port: number): string => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  clusterIP: ${clusterIP}
  selector: {app: ${name}}
  ports: [{name: ${portName}, port: ${port}}]
`;

describe('HTTP captured on its way to an address', () => {
  let dir: string;
  let client: RunningSidecar;
  const servers: Array<Server | Http2Server> = [];
  const destinations = new RecordedDestinations();
  let webPort = 0;
  let apiPort = 0;
  let outsidePort = 0;

  before(async () => {
    const ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-captured-http-'));
    // web: a headless Service whose port is declared HTTP; its pods listen on one port on addresses
    // of their own (web-2 is not ready yet).
    const web0 = await pod('web-0', '127.0.0.2', 0);
    webPort = web0.port;
    const web1 = await pod('web-1', '127.0.0.3', webPort);
    const web2 = await pod('web-2', '127.0.0.4', webPort);
    // api: a Service with a cluster IP whose port name declares no protocol (Istio sniffs it).
    const api0 = await pod('api-0', '127.0.0.6', 0);
    apiPort = api0.port;
    // Something outside the mesh that speaks HTTP on a port no service has.
    const outside = await pod('outside', '127.0.0.7', 0);
    outsidePort = outside.port;
    // rpc: like api, but its pod speaks h2c only (a gRPC server, say).
    const rpc0 = await pod('rpc-0', '127.0.0.8', 0, true);
    servers.push(web0.server, web1.server, web2.server, api0.server, outside.server, rpc0.server);
    await writeFile(
      join(dir, 'mesh.yaml'),
      [
        service('web', 'None', 'http', webPort),
        slice('web', 0, '127.0.0.2', webPort, 'http'),
        slice('web', 1, '127.0.0.3', webPort, 'http'),
        slice('web', 2, '127.0.0.4', webPort, 'http', false),
        service('api', '127.0.0.10', 'web', 8000),
        slice('api', 0, '127.0.0.6', apiPort, 'web'),
        service('rpc', '127.0.0.11', 'rpc', 8000),
        slice('rpc', 0, '127.0.0.8', rpc0.port, 'rpc'),
      ].join('---\n'),
    );
    client = await startSidecar({ ...sidecarOptions(ca, dir, 'client', NO_APP), capture: true, originalDestination: destinations });
    await untilSnapshot(client.holder, (s) => s.routeConfigs.has(String(webPort)) && s.meshTcp?.byAddress('127.0.0.10', 8000) !== undefined && s.meshTcp?.byAddress('127.0.0.11', 8000) !== undefined);
  });

  after(async () => {
    await client?.destroy();
    for (const s of servers) s.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A GET the app sends to `ip:port` with `host`: the status line and the body ('' when closed without an answer). */
  const get = async (ip: string, port: number, host: string): Promise<{ status: number; body: string }> => {
    const request = Buffer.from(`GET /x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    const raw = await readCaptured(client.outboundPort, destinations, ip, port, request);
    if (raw === '') return { status: 0, body: '' };
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? -1);
    return { status, body: raw.slice(raw.indexOf('\r\n\r\n') + 4) };
  };
  const nameOf = (r: { body: string }): string => (JSON.parse(r.body) as { name: string }).name;

  it("goes to the headless Service's pod the app dialled, ready or not, every time", async () => {
    const host = `web.default.svc.cluster.local:${webPort}`;
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) seen.push(nameOf(await get('127.0.0.3', webPort, host)));
    seen.push(nameOf(await get('127.0.0.2', webPort, `web:${webPort}`)));
    seen.push(nameOf(await get('127.0.0.4', webPort, host)));
    assert.deepEqual(seen, ['web-1', 'web-1', 'web-1', 'web-0', 'web-2']);
  });

  it('takes h2c with prior knowledge (a plaintext gRPC client) as it takes HTTP/1.1, by the address dialled', async () => {
    /** One h2c GET the app sends to `ip:port` with `authority`. */
    const getH2 = async (ip: string, port: number, authority: string): Promise<{ status: number; body: string }> => {
      const session = connectH2(`http://${authority}`, { createConnection: () => connectCaptured(client.outboundPort, destinations, ip, port) });
      session.on('error', () => undefined);
      try {
        return await h2Request(session, { ':path': '/x', ':authority': authority });
      } finally {
        session.close();
      }
    };
    const host = `web.default.svc.cluster.local:${webPort}`;
    assert.deepEqual([nameOf(await getH2('127.0.0.3', webPort, host)), nameOf(await getH2('127.0.0.4', webPort, host))], ['web-1', 'web-2']);
    assert.equal((await getH2('127.0.0.5', webPort, `web:${webPort}`)).status, 503);
    // A port left to detection speaks upstream what the client spoke (Istio's USE_DOWNSTREAM_PROTOCOL):
    // the h2c-only pod is reached, the HTTP/1.1-only one is not.
    assert.equal(nameOf(await getH2('127.0.0.11', 8000, 'some-other-name')), 'rpc-0');
    assert.equal((await getH2('127.0.0.10', 8000, 'some-other-name')).status, 503);
    assert.equal(nameOf(await get('127.0.0.10', 8000, 'some-other-name')), 'api-0');
  });

  it('answers 503 when the address dialled is none of the Service\'s pods', async () => {
    assert.equal((await get('127.0.0.5', webPort, `web:${webPort}`)).status, 503);
  });

  it('passes a Host naming the pod\'s IP, or any name the mesh does not know, through to the address dialled', async () => {
    const byIp = await get('127.0.0.3', webPort, `127.0.0.3:${webPort}`);
    assert.equal(byIp.status, 200);
    assert.deepEqual(JSON.parse(byIp.body), { name: 'web-1', host: `127.0.0.3:${webPort}` });
    // Not resolved: the name is only a header, the address decides.
    assert.equal(nameOf(await get('127.0.0.2', webPort, 'nowhere.invalid')), 'web-0');
  });

  it("routes to a Service whose port is sniffed whatever the Host, at its cluster IP", async () => {
    const r = await get('127.0.0.10', 8000, 'some-other-name');
    assert.equal(r.status, 200);
    assert.equal(nameOf(r), 'api-0');
  });

  it('carries HTTP on a port no service has as TCP, to the address dialled', async () => {
    const r = await get('127.0.0.7', outsidePort, 'anything');
    assert.equal(nameOf(r), 'outside');
  });

  it('under REGISTRY_ONLY answers an unknown Host 502 and closes HTTP on a port no service has', async () => {
    await writeFile(join(dir, 'sidecar.yaml'), 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: default}\nspec: {outboundTrafficPolicy: {mode: REGISTRY_ONLY}}\n');
    await untilSnapshot(client.holder, (s) => outboundTrafficModeOf(s) === 'REGISTRY_ONLY');
    assert.equal((await get('127.0.0.3', webPort, `127.0.0.3:${webPort}`)).status, 502);
    assert.equal(nameOf(await get('127.0.0.3', webPort, `web:${webPort}`)), 'web-1', 'the mesh service is still reached');
    assert.deepEqual(await get('127.0.0.7', outsidePort, 'anything'), { status: 0, body: '' });
  });
});

describe("a Service's cluster IP as Host", () => {
  it('names the Service on its declared HTTP port, as Istio lists a service address among its domains', () => {
    const role = { kind: 'sidecar' as const, namespace: 'default', labels: { app: 'client' }, serviceAccount: 'client', outboundTrafficPolicy: 'ALLOW_ANY' as const };
    const { snapshot } = buildSnapshot(parseConfigText(service('ratings', '10.96.0.5', 'http', 9080), 'mesh.yaml'), role, FIXED_DEPS);
    const config = outboundRouteConfig(snapshot, 9080)!;
    assert.equal(config.findVirtualHost('10.96.0.5')?.domain, 'ratings.default.svc.cluster.local');
    assert.equal(config.findVirtualHost('10.96.0.6'), undefined);
  });

  it('names it by an IPv6 cluster IP too, as a Host writes one (in brackets)', () => {
    const role = { kind: 'sidecar' as const, namespace: 'default', labels: { app: 'client' }, serviceAccount: 'client', outboundTrafficPolicy: 'ALLOW_ANY' as const };
    const dual = service('ratings', '10.96.0.5', 'http', 9080).replace('  clusterIP: 10.96.0.5', '  clusterIP: 10.96.0.5\n  clusterIPs: [10.96.0.5, "FD00::10"]');
    const { snapshot } = buildSnapshot(parseConfigText(dual, 'mesh.yaml'), role, FIXED_DEPS);
    const config = outboundRouteConfig(snapshot, 9080)!;
    assert.equal(config.findVirtualHost(normalizeHost('[fd00::10]:9080'))?.domain, 'ratings.default.svc.cluster.local');
    assert.equal(config.findVirtualHost(normalizeHost('[FD00::10]'))?.domain, 'ratings.default.svc.cluster.local');
    assert.equal(config.findVirtualHost(normalizeHost('[fd00::11]:9080')), undefined);
  });
});
