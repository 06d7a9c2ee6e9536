// Integration: the mesh path passes the same gRPC checks as the gateway alone. A grpc-js server runs
// behind its sidecar (inbound over mesh mTLS, h2c to the app); it is called through the gateway
// (gateway → sidecar → app) and by a plaintext grpc-js client through its own sidecar's outbound port
// (h2c prior knowledge → outbound → mTLS → inbound → app). Status, message, binary metadata,
// trailers-only errors and cancellation must all arrive intact both ways.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { FileSource } from '../src/core/sources/file-source.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { fixedIdentity, testAuthority, untilSnapshot } from './helpers/mesh.js';
import { NO_APP } from './helpers/ports.js';
import { echoClient, grpc, startEchoServer, unary, type EchoClient, type EchoServer } from './helpers/grpc.js';

const HOST = 'grpc.example.com';

async function checkCalls(client: EchoClient, echo: EchoServer): Promise<void> {
  const md = new grpc.Metadata();
  md.set('trace-bin', Buffer.from([0, 255, 7]));
  const ok = await unary(client, { message: 'through the mesh' }, md);
  assert.equal(ok.err, null, ok.err?.message);
  assert.equal(ok.reply?.message, 'through the mesh');
  assert.deepEqual(ok.headers?.get('echo-bin')[0], Buffer.from([0, 255, 7]));
  assert.deepEqual(ok.trailers?.get('trailer-bin')[0], Buffer.from([9, 8, 7]));

  const failed = await unary(client, { message: 'permission denied, 100%', failWith: grpc.status.PERMISSION_DENIED });
  assert.equal(failed.err?.code, grpc.status.PERMISSION_DENIED);
  assert.equal(failed.err?.details, 'permission denied, 100%');
  assert.deepEqual(failed.trailers?.get('err-bin')[0], Buffer.from([0, 1, 2, 255]));

  // A server stream: messages arrive as sent, and a cancel reaches the server.
  const before = echo.cancelled;
  const call = client.serverStream({ count: 0, intervalMs: 10 });
  call.on('error', () => undefined);
  let received = 0;
  await new Promise<void>((resolve) =>
    call.on('data', () => {
      if (++received === 3) resolve();
    }),
  );
  call.cancel();
  await eventually(async () => echo.cancelled > before && echo.open === 0);
}

describe('gRPC through the mesh: gateway → sidecar → app, and app → sidecar → sidecar → app', () => {
  const quiet = pino({ level: 'silent' });
  let ca: CertificateAuthority;
  let dir: string;
  let echo: EchoServer;
  let server: RunningSidecar, client: RunningSidecar;
  let gw: TestGateway;

  before(async () => {
    ca = await testAuthority();
    echo = await startEchoServer();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-mesh-grpc-'));
    const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [${HOST}]
  gateways: [gw]
  http:
  - route: [{destination: {host: echo}}]
`;
    const common = { statusPort: 0, adminPort: 0, outboundPort: 0, listenHost: '127.0.0.1', accessLog: 'off', logger: quiet, namespace: 'default', source: new FileSource({ dir }) };
    server = await startSidecar({ ...common, identity: fixedIdentity(ca, 'default', 'echo'), serviceAccount: 'echo', labels: { app: 'echo' }, appPort: echo.port, inboundPort: 0 });
    client = await startSidecar({ ...common, source: new FileSource({ dir }), identity: fixedIdentity(ca, 'default', 'caller'), serviceAccount: 'caller', labels: { app: 'caller' }, appPort: NO_APP, inboundPort: 0 });
    // The service's endpoint is the server sidecar's inbound port, which it chose (port 0).
    const services = serviceYaml('echo', [{ pod: 'echo-0', port: server.inboundPort, serviceAccount: 'echo', labels: { 'security.istio.io/tlsMode': 'istio' } }], { portName: 'grpc' });
    await writeFile(join(dir, 'services.yaml'), services);
    await Promise.all([server, client].map((s) => untilSnapshot(s.holder, (snap) => snap.registry.lookup('echo.default.svc.cluster.local') !== undefined)));
    gw = await startTestGateway({ 'gateway.yaml': gatewayYaml([HOST]), 'services.yaml': services, 'vs.yaml': vs }, { identity: fixedIdentity(ca, 'istio-system', 'ingressgateway') });
  });

  after(async () => {
    await gw?.close();
    await Promise.all([server?.destroy(), client?.destroy()]);
    await echo?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('gateway → sidecar → app: status, message, binary metadata and cancellation intact', async () => {
    const c = echoClient(gw.port, HOST);
    try {
      await checkCalls(c, echo);
    } finally {
      c.close();
    }
  });

  it('a plaintext gRPC app calls through its own sidecar (h2c prior knowledge on the outbound port)', async () => {
    const c = echoClient(client.outboundPort, 'echo');
    try {
      await checkCalls(c, echo);
    } finally {
      c.close();
    }
  });

  it('a plaintext gRPC client reaches the inbound side directly when PeerAuthentication allows plaintext', async () => {
    const c = echoClient(server.inboundPort, 'echo');
    try {
      const r = await unary(c, { message: 'plain' });
      // PERMISSIVE by default: plaintext h2c is served and relayed to the app over h2c.
      assert.equal(r.err, null, r.err?.message);
      assert.equal(r.reply?.message, 'plain');
    } finally {
      c.close();
    }
  });
});
