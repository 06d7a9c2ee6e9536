// TCP a sidecar passes through to a destination the mesh does not know — a CONNECT tunnel, captured
// TCP under ALLOW_ANY — is observed as Istio observes its PassthroughCluster: one access-log line per
// connection (upstream_cluster `PassthroughCluster`, the bytes each way, UF for a connection that
// could not be made, which a CONNECT also answers 503), and the four TCP metrics with
// destination_service_name `PassthroughCluster`. A Telemetry accessLogging filter applies to those
// lines as it does to requests. Real sockets; two sidecars, one the app uses as its HTTP proxy (CONNECT),
// one capturing, where capture is stood in for by the original-destination lookup.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { completeJsonLines, eventually } from './helpers/gateway.js';
import { exchangeCaptured, RecordedDestinations } from './helpers/original-destinations.js';
import { sidecarOptions, testAuthority, untilSnapshot } from './helpers/mesh.js';
import { scrape, samplesOf } from './helpers/prometheus-text.js';
import { closedPort } from './helpers/upstream.js';
import { tunnel } from './helpers/tunnel.js';

type Line = Record<string, unknown>;

describe('passed-through TCP in the access log and the TCP metrics (PassthroughCluster)', () => {
  let dir: string;
  let echo: Server;
  let echoPort: number;
  let proxy: RunningSidecar, captured: RunningSidecar;
  const destinations = new RecordedDestinations();
  const log = (name: string): string => join(dir, `${name}.log`);

  /** The passthrough lines of one sidecar's log, once there are `count`. */
  const passthroughLines = async (name: string, count: number): Promise<Line[]> => {
    let found: Line[] = [];
    await eventually(async () => {
      found = completeJsonLines(await readFile(log(name), 'utf8').catch(() => '')).filter((l) => l['upstream_cluster'] === 'PassthroughCluster');
      return found.length >= count;
    });
    return found;
  };
  /** The sum of one TCP series over both sidecars, for PassthroughCluster with these flags. */
  const passthroughCount = async (name: string, flags: string): Promise<number> => {
    let sum = 0;
    for (const s of [proxy, captured]) {
      for (const sample of samplesOf(await scrape(s.metricsPort), name)) {
        if (sample.labels['destination_service_name'] !== 'PassthroughCluster' || sample.labels['response_flags'] !== flags) continue;
        assert.equal(sample.labels['reporter'], 'source');
        assert.equal(sample.labels['destination_service'], 'unknown');
        assert.equal(sample.labels['request_protocol'], 'tcp');
        sum += sample.value;
      }
    }
    return sum;
  };

  before(async () => {
    const ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-passthrough-'));
    echo = createServer((s) => {
      s.on('error', () => s.destroy());
      s.on('data', (d) => s.write(`hello ${d.toString()}`));
      s.on('end', () => s.end());
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as AddressInfo).port;
    // JSON lines, also once a Telemetry names Istio's `envoy` provider (whose default is text).
    await writeFile(join(dir, 'mesh.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    outboundTrafficPolicy: {mode: ALLOW_ANY}\n    accessLogEncoding: JSON\n');
    proxy = await startSidecar({ ...sidecarOptions(ca, dir, 'curl', 1), accessLog: log('proxy'), metricsPort: 0 });
    captured = await startSidecar({ ...sidecarOptions(ca, dir, 'curl', 1), capture: true, originalDestination: destinations, accessLog: log('captured'), metricsPort: 0 });
    await Promise.all([proxy, captured].map((s) => untilSnapshot(s.holder, (snap) => snap.resources.length > 0)));
  });

  after(async () => {
    await Promise.all([proxy?.destroy(), captured?.destroy()]);
    echo?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a CONNECT tunnel and a captured connection each get a line with their bytes', async () => {
    const through = await tunnel(proxy.outboundPort, `127.0.0.1:${echoPort}`, 'ping');
    assert.deepEqual(through, { status: 200, body: 'hello ping' });
    assert.equal(await exchangeCaptured(captured.outboundPort, destinations, '127.0.0.1', echoPort, 'pong'), 'hello pong');
    const lines = [...(await passthroughLines('proxy', 1)), ...(await passthroughLines('captured', 1))];
    for (const line of lines) {
      assert.equal(line['upstream_host'], `127.0.0.1:${echoPort}`);
      assert.equal(line['response_flags'], '-');
      assert.equal(line['response_code'], 0);
      assert.equal(line['bytes_received'], 4, 'what the app sent through, not the CONNECT request');
      assert.equal(line['bytes_sent'], 10, 'what came back, not the 200 that opened the tunnel');
      assert.equal(line['method'], null);
    }
  });

  it('counts them in the TCP metrics as PassthroughCluster', async () => {
    assert.equal(await passthroughCount('istio_tcp_connections_opened_total', '-'), 2);
    assert.equal(await passthroughCount('istio_tcp_connections_closed_total', '-'), 2);
    assert.equal(await passthroughCount('istio_tcp_received_bytes_total', '-'), 8);
    assert.equal(await passthroughCount('istio_tcp_sent_bytes_total', '-'), 20);
  });

  it('a connection that cannot be made: the CONNECT is answered 503, and both are logged and counted with UF', async () => {
    const gone = await closedPort();
    const refused = await tunnel(proxy.outboundPort, `127.0.0.1:${gone}`, 'x');
    assert.equal(refused.status, 503);
    assert.match(refused.body, /upstream connect error/);
    assert.equal(await exchangeCaptured(captured.outboundPort, destinations, '127.0.0.1', gone, 'x'), '', 'the captured connection is closed');
    const failed = [(await passthroughLines('proxy', 2))[1]!, (await passthroughLines('captured', 2))[1]!];
    assert.deepEqual(failed.map((l) => [l['response_flags'], l['upstream_host']]), [['UF', `127.0.0.1:${gone}`], ['UF', `127.0.0.1:${gone}`]]);
    assert.equal(await passthroughCount('istio_tcp_connections_closed_total', 'UF'), 2);
  });

  it('a Telemetry accessLogging filter applies to those lines as it does to requests', async () => {
    // No status on a TCP connection: the first half is an error, and the flags decide, as in CEL.
    await writeFile(
      join(dir, 'telemetry.yaml'),
      'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: mesh-default, namespace: istio-system}\nspec:\n  accessLogging:\n  - providers: [{name: envoy}]\n    filter: {expression: \'response.code >= 400 || response.flags != "-"\'}\n',
    );
    await untilSnapshot(proxy.holder, (s) => s.resources.some((r) => r.kind === 'Telemetry'));
    assert.equal((await tunnel(proxy.outboundPort, `127.0.0.1:${echoPort}`, 'quiet')).status, 200);
    const gone = await closedPort();
    assert.equal((await tunnel(proxy.outboundPort, `127.0.0.1:${gone}`)).status, 503);
    // The failed one's line is written after the successful one closed: only it passed the filter.
    const after = (await passthroughLines('proxy', 3)).slice(2);
    assert.deepEqual(after.map((l) => l['upstream_host']), [`127.0.0.1:${gone}`]);
  });
});

describe('captured TCP refused under REGISTRY_ONLY in the access log and the TCP metrics (BlackHoleCluster)', () => {
  let dir: string;
  let echo: Server;
  let echoPort: number;
  let captured: RunningSidecar;
  const destinations = new RecordedDestinations();

  before(async () => {
    const ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-blackhole-'));
    echo = createServer((s) => s.on('error', () => s.destroy()).on('data', (d) => s.write(d)));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as AddressInfo).port;
    await writeFile(join(dir, 'mesh.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n');
    captured = await startSidecar({ ...sidecarOptions(ca, dir, 'curl', 1), capture: true, originalDestination: destinations, accessLog: join(dir, 'captured.log'), metricsPort: 0 });
    await untilSnapshot(captured.holder, (snap) => snap.resources.length > 0);
  });

  after(async () => {
    await captured?.destroy();
    echo?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('closes the connection, logs it with UH and counts it as BlackHoleCluster', async () => {
    assert.equal(await exchangeCaptured(captured.outboundPort, destinations, '127.0.0.1', echoPort, 'blocked'), '', 'closed, nothing echoed');
    let lines: Line[] = [];
    await eventually(async () => {
      lines = completeJsonLines(await readFile(join(dir, 'captured.log'), 'utf8').catch(() => '')).filter((l) => l['upstream_cluster'] === 'BlackHoleCluster');
      return lines.length >= 1;
    });
    assert.equal(lines[0]!['response_flags'], 'UH');
    assert.equal(lines[0]!['bytes_sent'], 0);
    const closed = samplesOf(await scrape(captured.metricsPort), 'istio_tcp_connections_closed_total').filter((s) => s.labels['destination_service_name'] === 'BlackHoleCluster');
    assert.deepEqual(closed.map((s) => [s.labels['response_flags'], s.value]), [['UH', 1]]);
  });
});
