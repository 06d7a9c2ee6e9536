// TCP between sidecars, as Istio's TCP tasks use it (the tcp-echo sample): a client app's TCP
// connection to a mesh service's cluster IP, captured by its sidecar, goes over mutual TLS to the
// server's sidecar, which a mesh-wide STRICT PeerAuthentication would otherwise make refuse it;
// weighted `tcp` routes shift connections between versions; AuthorizationPolicy decides on the
// caller's principal and the port; the server sidecar counts the connection in Istio's TCP metrics.
// Server-first protocols (a server that greets on connect, the client waiting for it) work on
// declared TCP ports: STRICT (the client sidecar opens with its ClientHello), DISABLE (passed at once)
// and PERMISSIVE (a silent plaintext client is plaintext). Real sockets and a real CA, sidecars in
// process; capture is stood in for by the original-destination lookup, as conntrack would answer it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { RecordedDestinations } from './helpers/original-destinations.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { startGateway } from '../src/gateway/main.js';
import { pino } from 'pino';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { fixedIdentity, sidecarOptions, testAuthority, untilSnapshot } from './helpers/mesh.js';

const ECHO_IP = '10.96.0.10';
const SECURE_IP = '10.96.0.12';
const MYSQL_IP = '10.96.0.13';
const SMTP_IP = '10.96.0.14';
const SIDECAR = { 'security.istio.io/tlsMode': 'istio' };

/** tcp-echo: answers every chunk with `<prefix> <chunk>`. */
async function echoApp(prefix: string): Promise<{ server: Server; port: number; connections: number }> {
  const state = { server: createServer(), port: 0, connections: 0 };
  state.server.on('connection', (s) => {
    state.connections++;
    s.on('error', () => s.destroy());
    s.on('data', (d) => s.write(`${prefix} ${d.toString()}`));
  });
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', r));
  state.port = (state.server.address() as AddressInfo).port;
  return state;
}

/** A server-first protocol: greets on connect, then answers each chunk. */
async function greeterApp(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => s.destroy());
    s.write('220 ready\n');
    s.on('data', (d) => s.write(`ok:${d.toString()}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}


/** Reads from `s` until `text` has arrived (or the socket closed): everything read. */
function readUntil(s: Socket, text: string): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    let data = '';
    const done = (closed: boolean): void => {
      s.off('data', onData);
      s.off('close', onClose);
      resolve({ data, closed });
    };
    const onData = (d: Buffer): void => {
      data += d.toString();
      if (data.includes(text)) done(false);
    };
    const onClose = (): void => done(true);
    s.on('data', onData);
    s.once('close', onClose);
  });
}

describe('TCP between sidecars over mutual TLS (STRICT)', () => {
  let ca: CertificateAuthority;
  let dir: string;
  const destinations = new RecordedDestinations();
  const apps: Array<{ server: Server }> = [];
  let v1: Awaited<ReturnType<typeof echoApp>>, v2: Awaited<ReturnType<typeof echoApp>>, secure: Awaited<ReturnType<typeof echoApp>>;
  let mysql: Awaited<ReturnType<typeof greeterApp>>, smtp: Awaited<ReturnType<typeof greeterApp>>;
  const sidecars: Record<string, RunningSidecar> = {};
  // Weighted picks alternate deterministically: low, high, low, ...
  let flip = 0;
  const alternating = (): number => (flip++ % 2 === 0 ? 0.1 : 0.9);

  /** The client app `from` (curl or intruder) opens TCP to `ip:port`; its sidecar captures it. */
  const dial = (from: string, ip: string, port: number): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const s = netConnect(sidecars[from]!.outboundPort, '127.0.0.1');
      s.once('connect', () => {
        destinations.record(s.localPort!, { address: ip, port });
        resolve(s);
      });
      s.once('error', reject);
    });
  const exchange = async (from: string, ip: string, port: number, text: string): Promise<{ data: string; closed: boolean }> => {
    const s = await dial(from, ip, port);
    s.on('error', () => undefined);
    const answer = readUntil(s, text);
    s.write(text);
    const r = await answer;
    s.destroy();
    return r;
  };

  const writeConfig = async (vsTcp: string): Promise<void> => {
    const ep = (pod: string, name: string, labels: Record<string, string>, sa: string) => ({ pod, port: sidecars[name]!.inboundPort, serviceAccount: sa, labels: { ...SIDECAR, ...labels } });
    await writeFile(
      join(dir, 'services.yaml'),
      [
        serviceYaml('tcp-echo', [ep('tcp-echo-v1', 'v1', { version: 'v1' }, 'tcp-echo'), ep('tcp-echo-v2', 'v2', { version: 'v2' }, 'tcp-echo')], { port: 9000, portName: 'tcp', clusterIP: ECHO_IP }),
        serviceYaml('secure-echo', [ep('secure-0', 'secure', {}, 'secure-echo')], { port: 9001, portName: 'tcp-echo', clusterIP: SECURE_IP }),
        serviceYaml('mysql', [ep('mysql-0', 'mysql', {}, 'mysql')], { port: 3306, portName: 'mysql', clusterIP: MYSQL_IP }),
        serviceYaml('smtp', [ep('smtp-0', 'smtp', {}, 'smtp')], { port: 25, portName: 'tcp-smtp', clusterIP: SMTP_IP }),
        `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: tcp-echo, namespace: default}
spec:
  host: tcp-echo
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp-echo, namespace: default}
spec:
  hosts: [tcp-echo]
  tcp:
  - match: [{port: 9000}]
    route:
${vsTcp}
`,
      ].join('---\n'),
    );
  };
  const ROUTE_V1 = '    - {destination: {host: tcp-echo, port: {number: 9000}, subset: v1}, weight: 100}';

  before(async () => {
    ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-mesh-tcp-'));
    v1 = await echoApp('one');
    v2 = await echoApp('two');
    secure = await echoApp('secure');
    mysql = await greeterApp();
    smtp = await greeterApp();
    apps.push(v1, v2, secure, mysql, smtp);
    await writeFile(
      join(dir, 'security.yaml'),
      `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: mysql, namespace: default}
spec:
  selector: {matchLabels: {app: mysql}}
  mtls: {mode: DISABLE}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: smtp, namespace: default}
spec:
  selector: {matchLabels: {app: smtp}}
  mtls: {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: secure-echo, namespace: default}
spec:
  selector: {matchLabels: {app: secure-echo}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/curl]}}]
    to: [{operation: {ports: ["${secure.port}"]}}]
`,
    );
    const server = async (name: string, app: number, labels: Record<string, string>, sa: string, extra: object = {}) => {
      sidecars[name] = await startSidecar({ ...sidecarOptions(ca, dir, sa, app), identity: fixedIdentity(ca, 'default', sa), labels, ...extra });
    };
    await server('v1', v1.port, { app: 'tcp-echo', version: 'v1' }, 'tcp-echo', { metricsPort: 0 });
    await server('v2', v2.port, { app: 'tcp-echo', version: 'v2' }, 'tcp-echo');
    await server('secure', secure.port, { app: 'secure-echo' }, 'secure-echo');
    await server('mysql', mysql.port, { app: 'mysql' }, 'mysql');
    await server('smtp', smtp.port, { app: 'smtp' }, 'smtp');
    for (const sa of ['curl', 'intruder']) {
      sidecars[sa] = await startSidecar({ ...sidecarOptions(ca, dir, sa, v1.port), capture: true, originalDestination: destinations, random: alternating });
    }
    await writeConfig(ROUTE_V1);
    // Every sidecar has the services (their endpoints name the server sidecars' inbound ports).
    await Promise.all(Object.values(sidecars).map((s) => untilSnapshot(s.holder, (snap) => snap.registry.services.size >= 4)));
  });

  after(async () => {
    await Promise.all(Object.values(sidecars).map((s) => s.destroy()));
    for (const a of apps) a.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('carries a client app’s TCP to the server sidecar over mutual TLS, which STRICT accepts', async () => {
    const r = await exchange('curl', ECHO_IP, 9000, 'world');
    assert.equal(r.data, 'one world');
  });

  it('REGISTRY_ONLY (a Sidecar resource selecting the caller) closes captured TCP to a destination the mesh does not know', async () => {
    const outside = `127.0.0.1:${v2.port}`;
    assert.equal((await exchange('curl', '127.0.0.1', v2.port, 'out')).data, 'two out', `ALLOW_ANY: ${outside} passes through`);
    await writeFile(join(dir, 'egress.yaml'), 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: intruder, namespace: default}\nspec:\n  workloadSelector: {labels: {app: intruder}}\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n');
    try {
      await untilSnapshot(sidecars['intruder']!.holder, (snap) => snap.resources.some((r) => r.kind === 'Sidecar'));
      const blocked = await exchange('intruder', '127.0.0.1', v2.port, 'out');
      assert.deepEqual(blocked, { data: '', closed: true });
      assert.equal((await exchange('intruder', ECHO_IP, 9000, 'mesh')).data, 'one mesh', 'a mesh service still answers');
    } finally {
      await rm(join(dir, 'egress.yaml'));
      await untilSnapshot(sidecars['intruder']!.holder, (snap) => !snap.resources.some((r) => r.kind === 'Sidecar'));
    }
  });

  it('carries a half-close both ways: a client that ends its side after the request still gets the reply', async () => {
    const s = await dial('curl', ECHO_IP, 9000);
    s.on('error', () => undefined);
    const answer = readUntil(s, 'never');
    s.end('bye');
    assert.deepEqual(await answer, { data: 'one bye', closed: true });
  });

  it('refuses plaintext at the server sidecar (STRICT): the app never sees the connection', async () => {
    const before = v1.connections;
    const s = netConnect(sidecars.v1!.inboundPort, '127.0.0.1');
    s.on('error', () => undefined);
    const r = readUntil(s, 'never');
    s.write('world');
    assert.deepEqual(await r, { data: '', closed: true });
    assert.equal(v1.connections, before);
  });

  it('shifts connections by the weights of the tcp route', async () => {
    await writeConfig('    - {destination: {host: tcp-echo, port: {number: 9000}, subset: v2}, weight: 100}');
    await untilSnapshot(sidecars.curl!.holder, (s) => s.meshTcp?.byAddress(ECHO_IP, 9000)?.route.destinations[0]?.subset === 'v2');
    assert.equal((await exchange('curl', ECHO_IP, 9000, 'a')).data, 'two a');

    await writeConfig(`${ROUTE_V1.replace('100', '50')}\n    - {destination: {host: tcp-echo, port: {number: 9000}, subset: v2}, weight: 50}`);
    await untilSnapshot(sidecars.curl!.holder, (s) => s.meshTcp?.byAddress(ECHO_IP, 9000)?.route.destinations.length === 2);
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await exchange('curl', ECHO_IP, 9000, 'b')).data);
    assert.deepEqual([...seen].sort(), ['one b', 'two b']);
    await writeConfig(ROUTE_V1);
    await untilSnapshot(sidecars.curl!.holder, (s) => s.meshTcp?.byAddress(ECHO_IP, 9000)?.route.destinations.length === 1);
  });

  it('AuthorizationPolicy on TCP: the caller’s principal and the port decide', async () => {
    assert.equal((await exchange('curl', SECURE_IP, 9001, 'x')).data, 'secure x');
    const before = secure.connections;
    const denied = await exchange('intruder', SECURE_IP, 9001, 'x');
    assert.deepEqual(denied, { data: '', closed: true });
    assert.equal(secure.connections, before, 'a denied connection never reaches the app');
  });

  it('counts the connection at the server sidecar with the caller’s identity', async () => {
    await exchange('curl', ECHO_IP, 9000, 'count');
    const text = await (await fetch(`http://127.0.0.1:${sidecars.v1!.metricsPort}/stats/prometheus`)).text();
    const opened = text.split('\n').filter((l) => l.startsWith('istio_tcp_connections_opened_total{') && l.includes('reporter="destination"') && l.includes('source_principal="spiffe://cluster.local/ns/default/sa/curl"'));
    assert.ok(opened.length > 0, text.split('\n').filter((l) => l.startsWith('istio_tcp')).join('\n'));
  });

  it('the ingress gateway’s TCP server reaches tcp-echo over mutual TLS too', async () => {
    await writeFile(
      join(dir, 'gateway.yaml'),
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: tcp-echo-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 31400, name: tcp, protocol: TCP}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp-echo-gateway, namespace: default}
spec:
  hosts: ['*']
  gateways: [tcp-echo-gateway]
  tcp:
  - match: [{port: 31400}]
    route: [{destination: {host: tcp-echo, port: {number: 9000}, subset: v2}}]
`,
    );
    const gw = await startGateway({
      configDir: dir,
      certsDir: join(dir, 'certs'),
      ports: new Map([[31400, 0]]),
      identity: fixedIdentity(ca, 'istio-system', 'istio-ingressgateway-service-account'),
      listenHost: '127.0.0.1',
      statusPort: 0,
      adminPort: 0,
      accessLog: 'off',
      logger: pino({ level: 'silent' }),
    });
    try {
      const s = netConnect(gw.listenPorts.get(31400)!, '127.0.0.1');
      s.on('error', () => undefined);
      const answer = readUntil(s, 'gw');
      s.write('gw');
      assert.equal((await answer).data, 'two gw');
      s.destroy();
    } finally {
      await gw.destroy();
    }
  });

  it('a server-first protocol on a declared port gets its greeting through both sidecars (STRICT)', async () => {
    const s = await dial('curl', SMTP_IP, 25);
    s.on('error', () => undefined);
    // The client says nothing until it is greeted.
    const greeting = await readUntil(s, '220 ready\n');
    assert.equal(greeting.data, '220 ready\n');
    const answer = readUntil(s, 'ok:');
    s.write('HELO');
    assert.match((await answer).data, /ok:HELO/);
    s.destroy();
  });

  it('DISABLE on a declared mysql port: plaintext both ways, passed to the app at once', async () => {
    const s = await dial('curl', MYSQL_IP, 3306);
    s.on('error', () => undefined);
    assert.equal((await readUntil(s, '220 ready\n')).data, '220 ready\n');
    s.destroy();
    // Straight to the server sidecar too, as a plaintext client outside the mesh.
    const direct = netConnect(sidecars.mysql!.inboundPort, '127.0.0.1');
    direct.on('error', () => undefined);
    assert.equal((await readUntil(direct, '220 ready\n')).data, '220 ready\n');
    direct.destroy();
  });

  it('PERMISSIVE on a declared port: a silent plaintext client is taken for plaintext and greeted', async () => {
    const s = netConnect(sidecars.smtp!.inboundPort, '127.0.0.1');
    s.on('error', () => undefined);
    assert.equal((await readUntil(s, '220 ready\n')).data, '220 ready\n');
    s.destroy();
  });
});
