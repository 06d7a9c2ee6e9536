// Long-lived TCP connections and gRPC streams report what they carried so far every reporting
// interval (Istio's tcp_reporting_duration), so they show in the metrics while still open; when
// they end only the rest is added, so the totals are exactly what they carried.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { createProxyTelemetry } from '../src/core/telemetry/proxy-telemetry.js';
import type { RequestRecord } from '../src/core/telemetry/access-log.js';
import { GrpcMessageCounter } from '../src/core/telemetry/grpc-messages.js';
import { describeWorkload } from '../src/core/telemetry/workload.js';
import { samplesOf } from './helpers/prometheus-text.js';
import { eventually } from './helpers/gateway.js';
import { telemetryPolicyFor } from '../src/core/telemetry/telemetry-policy.js';
import { parseConfigText } from '../src/core/config/load.js';

const self = describeWorkload({ namespace: 'shop', labels: { app: 'cart', version: 'v3' }, serviceAccount: 'cart' });
const db = describeWorkload({ namespace: 'shop', labels: { app: 'db', version: 'v1' }, serviceAccount: 'db' });

function telemetry() {
  return createProxyTelemetry({ accessLog: 'off', self, role: 'sidecar', metricsPort: 0, reportingIntervalMs: 20 });
}

type Telemetry = ReturnType<typeof telemetry>;

async function total(t: Telemetry, name: string): Promise<number> {
  return samplesOf(await t.metrics!.registry.metrics(), name).reduce((n, s) => n + s.value, 0);
}

describe('periodic reports of what is still open', () => {
  it('a TCP connection\'s bytes show while it is open, and the totals are exact once it closes', async () => {
    const t = telemetry();
    try {
      const connection = { bytesRead: 0, bytesWritten: 0 };
      const opened = { reporter: 'source' as const, cluster: 'outbound|5432||db.shop.svc.cluster.local', upstreamPeer: db, connection };
      t.tcpOpened(opened);
      connection.bytesRead = 100;
      connection.bytesWritten = 40;
      await eventually(async () => (await total(t, 'istio_tcp_received_bytes_total')) === 100);
      assert.equal(await total(t, 'istio_tcp_sent_bytes_total'), 40);
      assert.equal(await total(t, 'istio_tcp_connections_opened_total'), 1);
      assert.equal(await total(t, 'istio_tcp_connections_closed_total'), 0);
      connection.bytesRead = 250;
      connection.bytesWritten = 90;
      await eventually(async () => (await total(t, 'istio_tcp_received_bytes_total')) === 250);
      connection.bytesRead = 300;
      connection.bytesWritten = 95;
      t.tcpClosed({ ...opened, flags: '-', bytesReceived: 300, bytesSent: 95 });
      assert.equal(await total(t, 'istio_tcp_received_bytes_total'), 300);
      assert.equal(await total(t, 'istio_tcp_sent_bytes_total'), 95);
      assert.equal(await total(t, 'istio_tcp_connections_closed_total'), 1);
      const [s] = samplesOf(await t.metrics!.registry.metrics(), 'istio_tcp_received_bytes_total');
      assert.equal(s!.labels.destination_workload, 'db-v1');
      assert.equal(s!.labels.request_protocol, 'tcp');
    } finally {
      await t.close();
    }
  });

  it('a connection the proxy cannot read while open is counted when it closes', async () => {
    const t = telemetry();
    try {
      const opened = { reporter: 'source' as const, cluster: 'outbound|5432||db.shop.svc.cluster.local', upstreamPeer: db };
      t.tcpOpened(opened);
      t.tcpClosed({ ...opened, flags: '-', bytesReceived: 7, bytesSent: 3 });
      assert.equal(await total(t, 'istio_tcp_received_bytes_total'), 7);
      assert.equal(await total(t, 'istio_tcp_sent_bytes_total'), 3);
    } finally {
      await t.close();
    }
  });

  it('a gRPC stream\'s messages show while it is open, and the totals are exact when it ends', async () => {
    const t = telemetry();
    try {
      const request = new GrpcMessageCounter();
      const response = new GrpcMessageCounter();
      const record: RequestRecord = {
        startTime: new Date(), method: 'POST', path: '/chat.Chat/Stream', protocol: 'HTTP/2', responseCode: 0, flags: '-', details: 'via_upstream', bytesReceived: 0, bytesSent: 0, durationMs: 0,
        requestId: 'r', authority: 'chat.shop.svc.cluster.local', downstreamRemoteAddress: '127.0.0.1:1', reporter: 'source', grpc: true,
        upstreamCluster: 'outbound|50051||chat.shop.svc.cluster.local', upstreamPeer: db, grpcMessages: { request, response },
      };
      t.startSpan!({ headers: {} } as IncomingMessage, record);
      request.count = 3;
      response.count = 2;
      await eventually(async () => (await total(t, 'istio_request_messages_total')) === 3);
      assert.equal(await total(t, 'istio_response_messages_total'), 2);
      // Nothing else is reported before the stream ends.
      assert.equal(await total(t, 'istio_requests_total'), 0);
      request.count = 5;
      response.count = 9;
      Object.assign(record, { responseCode: 200, grpcStatus: '0', durationMs: 30000 });
      t.write(record);
      assert.equal(await total(t, 'istio_request_messages_total'), 5);
      assert.equal(await total(t, 'istio_response_messages_total'), 9);
      assert.equal(await total(t, 'istio_requests_total'), 1);
      const series = samplesOf(await t.metrics!.registry.metrics(), 'istio_response_messages_total');
      assert.equal(series.length, 1, 'the open stream\'s reports and its end count into one series');
    } finally {
      await t.close();
    }
  });
});

describe('the reporting interval', () => {
  const telemetryYaml = (name: string, namespace: string, interval: string, selector = ''): string =>
    `apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec:\n${selector}  metrics:\n  - providers: [{name: prometheus}]\n    reportingInterval: ${interval}\n`;

  it('is Istio\'s 5 s unless a Telemetry sets metrics[].reportingInterval; the most specific one wins', () => {
    const policy = (yaml: string) => telemetryPolicyFor(parseConfigText(yaml, 'telemetry.yaml').resources, { namespace: 'shop', labels: { app: 'cart' } });
    assert.equal(policy('').reportingIntervalMs, undefined);
    assert.equal(policy(telemetryYaml('mesh', 'istio-system', '10s')).reportingIntervalMs, 10_000);
    const both = [telemetryYaml('mesh', 'istio-system', '10s'), telemetryYaml('cart', 'shop', '1500ms', '  selector: {matchLabels: {app: cart}}\n')].join('---\n');
    assert.equal(policy(both).reportingIntervalMs, 1500);
  });
});
