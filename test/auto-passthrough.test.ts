// A gateway server with `tls.mode: AUTO_PASSTHROUGH` (Istio's east-west gateway): a client names
// the cluster it wants in its SNI, `outbound_.<port>_.<subset>_.<host>`, offers an Istio mTLS ALPN,
// and the gateway pipes its TLS, unread, to an endpoint of that cluster; no VirtualService is
// involved. The endpoints are TLS servers standing in for the destination's sidecars, on loopback.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type Server } from 'node:tls';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { testAuthority, workloadCertificate } from './helpers/mesh.js';

const GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: cross-network-gateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 15443, name: tls, protocol: TLS}
    tls: {mode: AUTO_PASSTHROUGH}
    hosts: ["*.local"]
`;

const RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec: {host: httpbin, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}
`;

const EXTERNAL = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: default}
spec:
  hosts: [api.external.local]
  location: MESH_EXTERNAL
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`;

describe('AUTO_PASSTHROUGH: SNI names the cluster', () => {
  let gw: TestGateway;
  const servers: Server[] = [];

  before(async () => {
    const ca = await testAuthority();
    const ports: number[] = [];
    for (const name of ['v1', 'v2']) {
      const cert = workloadCertificate(ca, 'default', 'httpbin');
      const server = createTlsServer({ cert: cert.certChainPem, key: cert.keyPem, ALPNProtocols: ['istio-peer-exchange', 'istio'] }, (s) => {
        s.on('error', () => s.destroy());
        s.end(name);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      servers.push(server);
      ports.push((server.address() as AddressInfo).port);
    }
    const httpbin = serviceYaml(
      'httpbin',
      [
        { pod: 'httpbin-v1', port: ports[0]!, labels: { version: 'v1' } },
        { pod: 'httpbin-v2', port: ports[1]!, labels: { version: 'v2' } },
      ],
      { port: 8000, portName: 'http' },
    );
    gw = await startTestGateway({ 'gw.yaml': GATEWAY, 'httpbin.yaml': httpbin, 'rule.yaml': RULE, 'external.yaml': EXTERNAL }, { gatewayPort: 15443 });
  });

  after(async () => {
    await gw?.close();
    for (const s of servers) s.close();
  });

  /** TLS to the gateway naming `sni`: what the far end sends, or '' when the gateway closes the connection. */
  const call = (sni: string, alpn: string[] = ['istio-peer-exchange', 'istio']): Promise<string> =>
    new Promise((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: gw.port, servername: sni, ALPNProtocols: alpn, rejectUnauthorized: false });
      let data = '';
      s.on('data', (d: Buffer) => (data += d.toString()));
      s.on('error', () => resolve(data));
      s.on('close', () => resolve(data));
    });

  it('reaches the service port the SNI names, and the subset when it names one', async () => {
    const any = await call('outbound_.8000_._.httpbin.default.svc.cluster.local');
    assert.ok(any === 'v1' || any === 'v2', any);
    for (let i = 0; i < 3; i++) assert.equal(await call('outbound_.8000_.v2_.httpbin.default.svc.cluster.local'), 'v2');
    assert.equal(await call('outbound_.8000_.v1_.httpbin.default.svc.cluster.local'), 'v1');
  });

  it('closes what it cannot name: another port, an unknown subset or host, a plain name, a service outside the mesh', async () => {
    for (const sni of [
      'outbound_.9000_._.httpbin.default.svc.cluster.local',
      'outbound_.8000_.v3_.httpbin.default.svc.cluster.local',
      'outbound_.8000_._.nope.default.svc.cluster.local',
      'httpbin.default.svc.cluster.local',
      'outbound_.443_._.api.external.local',
    ]) {
      assert.equal(await call(sni), '', sni);
    }
  });

  it('closes a client that offers no Istio mTLS ALPN', async () => {
    assert.equal(await call('outbound_.8000_.v2_.httpbin.default.svc.cluster.local', ['h2', 'http/1.1']), '');
  });
});
