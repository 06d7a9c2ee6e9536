// AuthorizationPolicy on TCP at a sidecar's inbound side and at the gateway, as Istio applies it to
// TCP filter chains. At a sidecar:
// opaque plaintext TCP, mesh mTLS carrying TCP (ALPN `istio-peer-exchange`/`istio`) and TLS the app
// terminates itself all reach the app only through the L4 rules. Source principals, namespaces,
// ipBlocks and destination ports work on TCP; an ALLOW rule with an HTTP-only field never matches a
// connection; a DENY rule with one drops the HTTP-only condition and so denies every connection
// (fail closed) while HTTP requests still see the whole rule. A denied connection is closed before
// the app sees a byte, counted in Istio's TCP metrics and logged. The gateway's TCP servers and TLS
// passthrough meet its policies the same way. Real sockets, a real CA.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { startGateway, type RunningGateway } from '../src/gateway/main.js';
import { PERMISSIVE_MESH_YAML, serviceYaml, tcpGatewayYaml } from './helpers/cluster-yaml.js';
import { looksLikeHttp } from '../src/sidecar/inbound.js';
import { sidecarOptions, testAuthority, workloadCertificate } from './helpers/mesh.js';
import { rawExchange } from './helpers/raw-http.js';
import { ping, plain, startApp, tls } from './helpers/tcp-probe.js';

const POLICIES = (appPort: number): string => `${PERMISSIVE_MESH_YAML}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-get, namespace: default}
spec:
  selector: {matchLabels: {app: deny-http-only}}
  action: DENY
  rules:
  - to: [{operation: {methods: [GET]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-path, namespace: default}
spec:
  selector: {matchLabels: {app: allow-http-only}}
  action: ALLOW
  rules:
  - to: [{operation: {paths: [/x]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-product, namespace: default}
spec:
  selector: {matchLabels: {app: allow-l4}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/product-service]}}]
    to: [{operation: {ports: ["${appPort}"]}}]
  - from: [{source: {namespaces: [team-b]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-loopback, namespace: default}
spec:
  selector: {matchLabels: {app: deny-ip}}
  action: DENY
  rules:
  - from: [{source: {ipBlocks: [127.0.0.1/32]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-other-port, namespace: default}
spec:
  selector: {matchLabels: {app: allow-other-port}}
  action: ALLOW
  rules:
  - to: [{operation: {ports: ["1"]}}]
`;

describe('AuthorizationPolicy on TCP at a sidecar inbound side', () => {
  let ca: CertificateAuthority;
  let dir: string;
  let app: Awaited<ReturnType<typeof startApp>>;
  const sidecars = new Map<string, RunningSidecar>();
  const lines: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  );
  const inbound = (name: string): number => sidecars.get(name)!.inboundPort;

  before(async () => {
    ca = await testAuthority();
    app = await startApp();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-tcp-authz-'));
    await writeFile(join(dir, 'security.yaml'), POLICIES(app.port));
    for (const name of ['open', 'deny-http-only', 'allow-http-only', 'allow-l4', 'deny-ip', 'allow-other-port']) {
      sidecars.set(
        name,
        await startSidecar({
          ...sidecarOptions(ca, dir, name, app.port),
          logger,
          ...(name === 'deny-http-only' ? { metricsPort: 0 } : {}),
        }),
      );
    }
  });

  after(async () => {
    await Promise.all([...sidecars.values()].map((s) => s.destroy()));
    app?.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('tells an HTTP request line from opaque bytes', () => {
    assert.equal(looksLikeHttp(Buffer.from('GET / HTTP/1.1\r\n')), true);
    assert.equal(looksLikeHttp(Buffer.from('PRI * HTTP/2.0\r\n')), true);
    assert.equal(looksLikeHttp(Buffer.from('POS')), true);
    assert.equal(looksLikeHttp(Buffer.from('ping')), false);
    assert.equal(looksLikeHttp(Buffer.from([0x16, 0x03, 0x01])), false);
    assert.equal(looksLikeHttp(Buffer.from('*1\r\n$4\r\nPING\r\n')), false);
  });

  it('passes opaque TCP to the app where no policy applies', async () => {
    assert.equal(await ping(await plain(inbound('open'))), 'ping');
  });

  it('DENY with only HTTP fields denies every TCP connection, and only the matching HTTP requests', async () => {
    const before = app.received();
    assert.equal(await ping(await plain(inbound('deny-http-only'))), null);
    // Mesh mTLS carrying TCP is denied the same way, after the handshake.
    assert.equal(await ping(await tls(inbound('deny-http-only'), ca.rootCertPem, ['istio-peer-exchange', 'istio'], workloadCertificate(ca, 'default', 'product-service'))), null);
    assert.equal(app.received(), before, 'the app saw no byte of the denied connections');
    const head = (method: string): string => `${method} /x HTTP/1.1\r\nhost: app\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`;
    assert.equal((await rawExchange(inbound('deny-http-only'), head('GET'))).status, 403);
    assert.equal((await rawExchange(inbound('deny-http-only'), head('POST'))).status, 200);
  });

  it('ALLOW with only HTTP fields never matches a TCP connection', async () => {
    assert.equal(await ping(await plain(inbound('allow-http-only'))), null);
    assert.equal((await rawExchange(inbound('allow-http-only'), `GET /x HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n`)).status, 200);
  });

  it('source principals, namespaces and destination ports decide on TCP', async () => {
    const port = inbound('allow-l4');
    const product = workloadCertificate(ca, 'default', 'product-service');
    assert.equal(await ping(await tls(port, ca.rootCertPem, ['istio-peer-exchange', 'istio'], product)), 'ping');
    // Another workload of the namespace: neither the principal nor the namespace rule matches.
    assert.equal(await ping(await tls(port, ca.rootCertPem, ['istio-peer-exchange', 'istio'], workloadCertificate(ca, 'default', 'other'))), null);
    // A workload of team-b, by the namespaces rule.
    assert.equal(await ping(await tls(port, ca.rootCertPem, ['istio-peer-exchange', 'istio'], workloadCertificate(ca, 'team-b', 'anyone'))), 'ping');
    // Plaintext has no principal, and TLS the app terminates itself shows none either.
    assert.equal(await ping(await plain(port)), null);
    const passthrough = await new Promise<Socket>((resolve) => {
      const s = netConnect(port, '127.0.0.1', () => resolve(s));
    });
    // A ClientHello with no Istio ALPN is passed through as TCP; here it is closed before the app answers.
    const closed = new Promise<void>((resolve) => passthrough.once('close', () => resolve()));
    passthrough.on('error', () => undefined);
    const hello = tlsConnect({ socket: passthrough, servername: 'app.example', rejectUnauthorized: false });
    hello.on('error', () => undefined);
    await closed;
    // The port decides: a policy allowing only port 1 denies the app's port.
    assert.equal(await ping(await tls(inbound('allow-other-port'), ca.rootCertPem, ['istio-peer-exchange', 'istio'], product)), null);
  });

  it('ipBlocks decide on the peer address', async () => {
    assert.equal(await ping(await plain(inbound('deny-ip'))), null);
  });

  it('counts and logs a denied connection', async () => {
    assert.equal(await ping(await plain(inbound('deny-http-only'))), null);
    const metrics = await (await fetch(`http://127.0.0.1:${sidecars.get('deny-http-only')!.metricsPort}/stats/prometheus`)).text();
    const closed = metrics.split('\n').filter((l) => l.startsWith('istio_tcp_connections_closed_total{') && l.includes('reporter="destination"'));
    assert.ok(closed.length > 0, metrics);
    assert.match(closed[0]!, /response_flags="-"/);
    assert.match(closed[0]!, /destination_workload="deny-http-only"/);
    const denied = lines.map((l) => JSON.parse(l) as { msg: string; policy?: string; connection_termination_details?: string }).filter((l) => l.msg === 'connection denied: AuthorizationPolicy');
    assert.ok(denied.some((l) => l.policy === 'AuthorizationPolicy default/deny-get' || l.policy?.includes('deny-get')), JSON.stringify(denied));
    assert.ok(denied.every((l) => l.connection_termination_details === 'rbac_deny_close'));
  });
});

/** A gateway on the config folder `dir`, listening for the Service port `port` on a port of its own. */
function gatewayOn(dir: string, port: number): Promise<RunningGateway> {
  return startGateway({ configDir: dir, certsDir: join(dir, 'certs'), ports: new Map([[port, 0]]), listenHost: '127.0.0.1', statusPort: 0, adminPort: 0, accessLog: 'off', logger: pino({ level: 'silent' }) });
}

/** A DENY AuthorizationPolicy selecting the gateway by its labels, with these `rules` (YAML list items). */
function gatewayDeny(rules: string): string {
  return `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules:${rules}
`;
}

/** Writes `file` and resolves once the gateway applies what it now says. */
async function rewrite(gw: RunningGateway, file: string, text: string): Promise<void> {
  const applied = new Promise<void>((resolve) => {
    const off = gw.holder.onSwap(() => {
      off();
      resolve();
    });
  });
  await writeFile(file, text);
  await applied;
}

describe('AuthorizationPolicy on TCP at the gateway', () => {
  it('a TCP server is closed to a connection a gateway DENY policy matches (HTTP-only fields dropped)', async () => {
    const echo = createNetServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as AddressInfo).port;
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-gw-tcp-authz-'));
    const tcpGateway = (deny: boolean): string => `${tcpGatewayYaml(echoPort)}
${deny ? gatewayDeny(`
  - to: [{operation: {methods: [GET], ports: ["1"]}}]
  - from: [{source: {ipBlocks: [127.0.0.1/32]}}]
    to: [{operation: {methods: [GET]}}]`) : ''}`;
    await writeFile(join(dir, 'all.yaml'), tcpGateway(false));
    const gw = await gatewayOn(dir, 5432);
    try {
      const port = gw.listenPorts.get(5432)!;
      assert.equal(await ping(await plain(port)), 'ping');
      await rewrite(gw, join(dir, 'all.yaml'), tcpGateway(true));
      // The first rule's port does not match; the second's peer does, its method is HTTP-only and dropped.
      assert.equal(await ping(await plain(port)), null);
    } finally {
      await gw.destroy();
      echo.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a TLS PASSTHROUGH server is closed to a connection a DENY policy matches by connection.sni, before the upstream sees a byte', async () => {
    // The upstream terminates TLS itself (the gateway only passes it through) and echoes.
    const ca = await testAuthority();
    const cert = workloadCertificate(ca, 'default', 'db');
    let handshakes = 0;
    const upstream = createTlsServer({ cert: cert.certChainPem, key: cert.keyPem }, (s) => {
      handshakes++;
      s.on('error', () => s.destroy());
      s.pipe(s);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamPort = (upstream.address() as AddressInfo).port;
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-gw-tls-authz-'));
    const config = (deny: boolean): string => `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: pass}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: tls, protocol: TLS}
    hosts: ['*.example.com']
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pass}
spec:
  hosts: ['*.example.com']
  gateways: [pass]
  tls:
  - match: [{sniHosts: ['*.example.com']}]
    route: [{destination: {host: db, port: {number: 8443}}}]
---
${serviceYaml('db', [{ pod: 'db-1', port: upstreamPort }], { port: 8443, portName: 'tls' })}
${deny ? gatewayDeny(`
  - when: [{key: connection.sni, values: [b.example.com]}]
  - from: [{source: {ipBlocks: [10.0.0.0/8]}}]
    to: [{operation: {paths: [/x]}}]`) : ''}`;
    await writeFile(join(dir, 'all.yaml'), config(false));
    const gw = await gatewayOn(dir, 8443);
    const through = (sni: string): Promise<string | null> =>
      new Promise((resolve) => {
        const s = tlsConnect({ port: gw.listenPorts.get(8443)!, host: '127.0.0.1', servername: sni, ca: ca.rootCertPem, rejectUnauthorized: false }, () => void ping(s).then(resolve));
        s.once('error', () => resolve(null));
      });
    try {
      assert.equal(await through('a.example.com'), 'ping');
      assert.equal(await through('b.example.com'), 'ping');
      await rewrite(gw, join(dir, 'all.yaml'), config(true));
      const before = handshakes;
      // The second rule's peer does not match, whatever its dropped path says; the first names b's SNI.
      assert.equal(await through('a.example.com'), 'ping');
      assert.equal(await through('b.example.com'), null);
      assert.equal(handshakes, before + 1, 'the denied connection never reached the upstream');
    } finally {
      await gw.destroy();
      upstream.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
