// VirtualService `tls` rules inside the mesh: TLS the app speaks itself (an HTTPS client, a TLS
// database driver) is routed by the SNI of its ClientHello, as Istio's sidecar picks a filter chain
// by server name; a hello no rule names takes the service's own route. And TLS to an address the
// mesh does not know (an external name the app resolved itself) finds its ServiceEntry by SNI, so a
// ServiceEntry lets it out under REGISTRY_ONLY while another name stays closed, as in Istio's egress
// tasks. Real sockets and TLS end to end; the app's TLS passes through the sidecar untouched.
// Capture is stood in for by the original-destination lookup, as conntrack would answer it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { RecordedDestinations } from './helpers/original-destinations.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { sidecarOptions, testAuthority, untilSnapshot, workloadCertificate } from './helpers/mesh.js';

const API_IP = '240.0.0.10';

/** A TLS server that answers each chunk with `<name>:<chunk>`. */
async function tlsApp(name: string, cert: { certChainPem: string; keyPem: string }): Promise<{ server: TlsServer; port: number }> {
  const server = createTlsServer({ cert: cert.certChainPem, key: cert.keyPem }, (s) => {
    s.on('error', () => s.destroy());
    s.on('data', (d: Buffer) => s.write(`${name}:${d.toString()}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}


/** TLS with `servername` over `raw`, one line sent: the answer, or '' when the connection was closed. */
function talkTls(raw: Socket, servername: string, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({ socket: raw, servername, rejectUnauthorized: false });
    let data = '';
    const done = (): void => {
      s.destroy();
      raw.destroy();
      resolve(data);
    };
    s.on('secureConnect', () => s.write(text));
    s.on('data', (d: Buffer) => {
      data += d.toString();
      if (data.endsWith(text)) done();
    });
    s.on('error', done);
    s.on('close', done);
  });
}

describe('VirtualService tls routes in the mesh (SNI)', () => {
  let dir: string;
  let client: RunningSidecar;
  const destinations = new RecordedDestinations();
  let stable: Awaited<ReturnType<typeof tlsApp>>, canary: Awaited<ReturnType<typeof tlsApp>>;

  /** Captured: the app connected to `ip:port` and speaks TLS naming `sni`. */
  const captured = (ip: string, port: number, sni: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const raw = netConnect(client.outboundPort, '127.0.0.1');
      raw.once('connect', () => {
        destinations.record(raw.localPort!, { address: ip, port });
        resolve(talkTls(raw, sni, 'hello'));
      });
      raw.once('error', reject);
    });

  /** Through the outbound port: `CONNECT host:port`, then TLS naming `sni` inside the tunnel. */
  const tunnelled = (host: string, port: number, sni: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const raw = netConnect(client.outboundPort, '127.0.0.1');
      raw.once('connect', () => {
        // Not redirected: conntrack names the outbound port itself as where it was going.
        destinations.record(raw.localPort!, { address: '127.0.0.1', port: client.outboundPort });
        raw.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
      });
      raw.once('data', (d: Buffer) => {
        if (!d.toString().startsWith('HTTP/1.1 200')) return resolve('');
        resolve(talkTls(raw, sni, 'hello'));
      });
      raw.once('error', reject);
    });

  const entry = (name: string, host: string, port: number, address?: string): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${host}]
${address ? `  addresses: [${address}]\n` : ''}  location: MESH_EXTERNAL
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {tls: ${port}}}]
`;

  before(async () => {
    const ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-mesh-tls-'));
    stable = await tlsApp('stable', workloadCertificate(ca, 'default', 'api'));
    canary = await tlsApp('canary', workloadCertificate(ca, 'default', 'canary'));
    await writeFile(
      join(dir, 'mesh.yaml'),
      [
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |-\n    outboundTrafficPolicy:\n      mode: REGISTRY_ONLY\n',
        entry('api', 'api.example.com', stable.port, API_IP),
        entry('canary', 'canary.example.com', canary.port),
      ].join('---\n'),
    );
    client = await startSidecar({ ...sidecarOptions(ca, dir, 'curl', 1), capture: true, originalDestination: destinations });
    await untilSnapshot(client.holder, (s) => s.registry.services.size >= 2);
  });

  after(async () => {
    await client.destroy();
    stable.server.close();
    canary.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('without a tls rule, TLS to the service goes to its own endpoints, captured or tunnelled', async () => {
    assert.equal(await captured(API_IP, 443, 'api.example.com'), 'stable:hello');
    assert.equal(await tunnelled('api.example.com', 443, 'api.example.com'), 'stable:hello');
  });

  it('a tls rule routes by SNI; a hello it does not name takes the service route', async () => {
    await writeFile(
      join(dir, 'route.yaml'),
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com, "*.api.example.com"]
  tls:
  - match:
    - port: 443
      sniHosts: ["*.api.example.com"]
    route:
    - destination: {host: canary.example.com, port: {number: 443}}
`,
    );
    await untilSnapshot(client.holder, (s) => s.resources.some((r) => r.kind === 'VirtualService'));
    assert.equal(await captured(API_IP, 443, 'v2.api.example.com'), 'canary:hello', 'the wildcard sniHosts entry');
    assert.equal(await tunnelled('api.example.com', 443, 'v2.api.example.com'), 'canary:hello', 'the same inside a CONNECT tunnel');
    assert.equal(await captured(API_IP, 443, 'api.example.com'), 'stable:hello', 'a name no rule lists keeps the service route');
    await rm(join(dir, 'route.yaml'));
    await untilSnapshot(client.holder, (s) => !s.resources.some((r) => r.kind === 'VirtualService'));
  });

  it('under REGISTRY_ONLY, TLS to an unknown address passes when its SNI names a ServiceEntry host, and only then', async () => {
    assert.equal(await captured('203.0.113.7', 443, 'canary.example.com'), 'canary:hello');
    assert.equal(await captured('203.0.113.7', 443, 'unknown.example.org'), '', 'BlackHoleCluster: closed');
  });
});
