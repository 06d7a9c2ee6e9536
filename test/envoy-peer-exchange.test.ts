// A meshgate sidecar beside Istio's Envoy sidecars (a mixed mesh, or a migration): an Envoy client
// opening mesh mTLS with ALPN istio-peer-exchange sends Istio's metadata exchange frame (built here
// with protobufjs as Envoy builds it) and then its app's bytes. The sidecar's app reads exactly those
// bytes, the sidecar answers with a frame Envoy can parse (magic, length, an Any holding a Struct
// with WORKLOAD_NAME and the labels), and its TCP metrics name the Envoy peer's workload, app and
// version. The other way round, the sidecar's outbound TCP to a service whose pod runs Envoy opens
// with a frame Envoy parses, and the app never reads Envoy's answering frame. Real sockets, a real CA.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as netConnect, createServer, type AddressInfo, type Server } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { PERMISSIVE_MESH_YAML, serviceYaml } from './helpers/cluster-yaml.js';
import { sidecarOptions, testAuthority, workloadCertificate } from './helpers/mesh.js';
import { tls } from './helpers/tcp-probe.js';
import { eventually } from './helpers/gateway.js';
import { scrapeSamples } from './helpers/prometheus-text.js';
import { envoyFrame, readAsEnvoy, splitFrame } from './helpers/envoy-peer-metadata.js';

const ENVOY_NODE = {
  NAME: 'productpage-v1-6b746f74dc-9stvs',
  NAMESPACE: 'default',
  OWNER: 'kubernetes://apis/apps/v1/namespaces/default/deployments/productpage-v1',
  WORKLOAD_NAME: 'productpage-v1',
  ISTIO_VERSION: '1.24.0',
  MESH_ID: 'cluster.local',
  CLUSTER_ID: 'Kubernetes',
  LABELS: { app: 'productpage', version: 'v1', 'service.istio.io/canonical-name': 'productpage', 'service.istio.io/canonical-revision': 'v1' },
  APP_CONTAINERS: ['productpage'],
};
const ENVOY_ID = 'sidecar~10.244.0.12~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local';

describe('an Envoy peer in the TCP metadata exchange', () => {
  let ca: CertificateAuthority;
  let dir: string;
  let app: Server;
  let sidecar: RunningSidecar;
  const received: Buffer[] = [];
  let envoyServer: Server;
  /** What the Envoy server read of the sidecar's frame, as Envoy reads it, and the app bytes after it. */
  const envoyRead: Array<{ mx: Record<string, unknown>; app: string }> = [];

  before(async () => {
    ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-envoy-peer-'));
    await writeFile(join(dir, 'mesh.yaml'), PERMISSIVE_MESH_YAML);
    // The app echoes what it reads and keeps it, to show it read the Envoy peer's app bytes only.
    app = createServer((s) => {
      s.on('error', () => s.destroy());
      s.on('data', (b: Buffer) => {
        received.push(b);
        s.write(b);
      });
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    // An Envoy sidecar's pod: reads the frame as Envoy does (magic, length, Any → Struct), answers
    // with its own frame, then the app's reply.
    const mongodbCert = workloadCertificate(ca, 'default', 'mongodb');
    envoyServer = createTlsServer({ cert: mongodbCert.certChainPem, key: mongodbCert.keyPem, ALPNProtocols: ['istio-peer-exchange', 'istio'] }, (s: TLSSocket) => {
      let got = Buffer.alloc(0);
      s.on('error', () => s.destroy());
      s.on('data', (b: Buffer) => {
        got = Buffer.concat([got, b]);
        const frame = splitFrame(got);
        if (!frame || !frame.rest.toString().endsWith('\n')) return;
        envoyRead.push({ mx: readAsEnvoy(frame.payload), app: frame.rest.toString() });
        s.end(Buffer.concat([envoyFrame({ ...ENVOY_NODE, WORKLOAD_NAME: 'mongodb-v1', LABELS: { app: 'mongodb', version: 'v1' } }, ENVOY_ID), Buffer.from(`reply to ${frame.rest.toString()}`)]));
      });
    });
    await new Promise<void>((r) => envoyServer.listen(0, '127.0.0.1', r));
    const TLS = { 'security.istio.io/tlsMode': 'istio' };
    await writeFile(join(dir, 'mongodb.yaml'), serviceYaml('mongodb', [{ pod: 'mongodb-v1', port: (envoyServer.address() as AddressInfo).port, serviceAccount: 'mongodb', labels: { version: 'v1', ...TLS } }], { port: 27017, portName: 'mongo' }));
    sidecar = await startSidecar({ ...sidecarOptions(ca, dir, 'ratings', (app.address() as AddressInfo).port), labels: { app: 'ratings', version: 'v1' }, metricsPort: 0 });
  });

  after(async () => {
    await sidecar?.destroy();
    app?.close();
    envoyServer?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("passes the app exactly the Envoy peer's app bytes, answers with a frame Envoy parses, and names the peer in TCP metrics", async () => {
    const socket = await tls(sidecar.inboundPort, ca.rootCertPem, ['istio-peer-exchange'], workloadCertificate(ca, 'default', 'bookinfo-productpage'));
    const APP_BYTES = 'find ratings\n';
    // Envoy writes its frame and the app's first bytes together, in one write.
    socket.write(Buffer.concat([envoyFrame(ENVOY_NODE, ENVOY_ID), Buffer.from(APP_BYTES)]));
    let got = Buffer.alloc(0);
    const answer = await new Promise<{ payload: Buffer; rest: Buffer }>((resolve, reject) => {
      socket.on('data', (b: Buffer) => {
        got = Buffer.concat([got, b]);
        const frame = splitFrame(got);
        if (frame && frame.rest.length >= APP_BYTES.length) resolve(frame);
      });
      socket.once('close', () => reject(new Error(`closed after ${got.length} bytes`)));
    });
    assert.equal(answer.rest.toString(), APP_BYTES, 'the echo follows the sidecar frame');
    assert.equal(Buffer.concat(received).toString(), APP_BYTES, "the app read the Envoy peer's app bytes and nothing else");
    const mx = readAsEnvoy(answer.payload);
    assert.equal(mx['x-envoy-peer-metadata-id'], 'sidecar~127.0.0.1~ratings-v1.default~default.svc.cluster.local');
    const node = mx['x-envoy-peer-metadata'] as Record<string, unknown>;
    assert.deepEqual({ workload: node['WORKLOAD_NAME'], namespace: node['NAMESPACE'], labels: node['LABELS'] }, {
      workload: 'ratings-v1',
      namespace: 'default',
      labels: { app: 'ratings', version: 'v1', 'service.istio.io/canonical-name': 'ratings', 'service.istio.io/canonical-revision': 'v1' },
    });
    socket.end();

    const query = { reporter: 'destination', source_workload: 'productpage-v1' };
    const opened = async (): Promise<ReadonlyArray<{ labels: Record<string, string> }>> =>
      (await scrapeSamples(sidecar.metricsPort, 'istio_tcp_connections_opened_total')).filter((s) => Object.entries(query).every(([k, v]) => s.labels[k] === v));
    await eventually(async () => (await opened()).length > 0);
    const labels = (await opened())[0]!.labels;
    assert.deepEqual(
      { app: labels['source_app'], version: labels['source_version'], service: labels['source_canonical_service'], revision: labels['source_canonical_revision'], principal: labels['source_principal'], destination: labels['destination_workload'] },
      { app: 'productpage', version: 'v1', service: 'productpage', revision: 'v1', principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage', destination: 'ratings-v1' },
    );
  });

  it("opens outbound TCP to an Envoy pod with a frame Envoy parses, and keeps Envoy's answer from the app", async () => {
    const raw = netConnect(sidecar.outboundPort, '127.0.0.1');
    raw.on('error', () => undefined);
    await new Promise<void>((r) => raw.once('connect', () => r()));
    raw.write('CONNECT mongodb.default.svc.cluster.local:27017 HTTP/1.1\r\nHost: mongodb.default.svc.cluster.local:27017\r\n\r\n');
    const reply = await new Promise<string>((resolve) => {
      let text = '';
      let tunnel = false;
      raw.on('data', (b: Buffer) => {
        text += b.toString('latin1');
        if (!tunnel && text.includes('\r\n\r\n')) {
          assert.match(text, /^HTTP\/1\.1 200/);
          tunnel = true;
          text = text.slice(text.indexOf('\r\n\r\n') + 4);
          raw.write('find ratings\n');
        }
      });
      raw.once('close', () => resolve(text));
    });
    assert.equal(reply, 'reply to find ratings\n', "the app read the Envoy pod's reply and nothing of its frame");
    assert.equal(envoyRead.length, 1);
    assert.equal(envoyRead[0]!.app, 'find ratings\n');
    const node = envoyRead[0]!.mx['x-envoy-peer-metadata'] as Record<string, unknown>;
    assert.deepEqual({ workload: node['WORKLOAD_NAME'], namespace: node['NAMESPACE'], labels: node['LABELS'] }, {
      workload: 'ratings-v1',
      namespace: 'default',
      labels: { app: 'ratings', version: 'v1', 'service.istio.io/canonical-name': 'ratings', 'service.istio.io/canonical-revision': 'v1' },
    });
    assert.equal(envoyRead[0]!.mx['x-envoy-peer-metadata-id'], 'sidecar~127.0.0.1~ratings-v1.default~default.svc.cluster.local');
  });
});
