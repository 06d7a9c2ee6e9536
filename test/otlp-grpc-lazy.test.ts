// A proxy that exports nothing over gRPC holds none of gRPC's code: @grpc/grpc-js, the OTLP/gRPC
// exporters and the logs SDK are loaded when a policy first names a gRPC provider, not before (a
// sidecar's idle memory is a tracked target). Its own process (node --test runs each file apart), so
// nothing else here has loaded them; the collector is therefore an OTLP/HTTP one until the end.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { gatewayRouteYaml, gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { meshConfig, startReceiver } from './helpers/otlp-receiver.js';

const HOST = 'lazy.example.com';
const GRPC_CODE = ['/@grpc/grpc-js/', '/exporter-trace-otlp-grpc/', '/exporter-logs-otlp-grpc/', '/@opentelemetry/sdk-logs/'];

const loaded = (): string[] => Object.keys(createRequire(import.meta.url).cache).filter((f) => GRPC_CODE.some((p) => f.includes(p)));

// Loading the gRPC code is seconds of work on a busy machine: each wait is generous and ends when its condition holds.
const WAIT_MS = 60_000;

const config = `${gatewayYaml([HOST])}---\n${gatewayRouteYaml([HOST])}`;

describe('gRPC code is loaded on first use only', () => {
  let app: Upstream;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let gw: TestGateway;
  before(async () => {
    app = await startUpstream('app');
    receiver = await startReceiver();
    gw = await startTestGateway({ 'gw.yaml': config, 'svc.yaml': serviceYaml('app', [{ pod: 'app-1', port: app.port }]), 'mesh.yaml': meshConfig(receiver.port, 100) });
  });
  after(async () => {
    await gw?.close();
    receiver?.server.close();
    await app?.close();
  });

  it('spans over OTLP/HTTP load none of it; a gRPC provider applied later loads it', async () => {
    assert.equal((await gw.get(HOST, '/', { 'x-request-id': 'lazy-1' })).status, 200);
    await eventually(async () => receiver.spans.some((s) => s.attributes.some((a) => a.value.stringValue === 'lazy-1')), WAIT_MS);
    assert.deepEqual(loaded(), []);
    // The same provider, now without `http`: OTLP over gRPC (to a port nobody serves gRPC on; only the loading matters).
    await gw.write('mesh.yaml', meshConfig(receiver.port, 100).replace('        http: {path: /v1/traces}\n', ''));
    await eventually(async () => {
      await gw.get(HOST, '/', { 'x-request-id': 'lazy-2' });
      return loaded().some((f) => f.includes('/exporter-trace-otlp-grpc/'));
    }, WAIT_MS);
    // The exporter itself loads @grpc/grpc-js when it first sends a batch.
    await eventually(async () => loaded().some((f) => f.includes('/@grpc/grpc-js/')), WAIT_MS);
    assert.ok(!loaded().some((f) => f.includes('/exporter-logs-otlp-grpc/')), 'no access-log provider: the logs exporter stays out');
  });
});
