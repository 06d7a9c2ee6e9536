// Istio's "Querying Metrics from Prometheus", "Collecting Metrics for TCP Services" and "Classifying
// Metrics" tasks on bookinfo (test/helpers/bookinfo-mesh.ts), every sidecar serving its metrics:
// - the queries the task types, `istio_requests_total{destination_service="productpage.default.svc.cluster.local"}`
//   and `istio_requests_total{destination_service="reviews.default.svc.cluster.local", destination_version="v3"}`,
//   find the pages' requests, with Istio's labels, at the destination's sidecar;
// - with ratings v2 and mongodb added (bookinfo-ratings-v2.yaml, bookinfo-db.yaml: Service port 27017
//   named `mongo`) and virtual-service-ratings-db.yaml applied unchanged, each page makes ratings v2
//   open a TCP connection to mongodb, which mongodb's sidecar counts in istio_tcp_connections_opened_total
//   and _closed_total, istio_tcp_sent_bytes_total and _received_bytes_total, with the caller's
//   workload, version and principal and `connection_security_policy="mutual_tls"`;
// - "Classifying Metrics": its WasmPlugin (attributegen) does not run here, which validate and
//   analyze say at the plugin and at the Telemetry override that reads what it would have set.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { startBookinfoMesh, type BookinfoMesh } from './helpers/bookinfo-mesh.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { eventually } from './helpers/gateway.js';
import { fixedIdentity, sidecarOptions, untilSnapshot } from './helpers/mesh.js';
import { scrapeSamples, type Sample } from './helpers/prometheus-text.js';
import { repoPath } from './helpers/route-table.js';
import { tunnel } from './helpers/tunnel.js';

const TLS = { 'security.istio.io/tlsMode': 'istio' };
const listening = async <S extends Server | HttpServer>(server: S): Promise<S> => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
const portOf = (server: Server | HttpServer): number => (server.address() as AddressInfo).port;

/** Every sample of `name` whose labels include all of `query` (a PromQL selector's equality matchers). */
const select = (samples: readonly Sample[], query: Record<string, string>): Sample[] => samples.filter((s) => Object.entries(query).every(([k, v]) => s.labels[k] === v));

describe('Querying Metrics, Collecting Metrics for TCP Services (bookinfo)', () => {
  let mesh: BookinfoMesh;
  let mongodb: Server, ratingsV2: HttpServer;
  let extra: RunningSidecar[] = [];
  const metrics = (name: string, metric: string): Promise<Sample[]> => scrapeSamples((mesh.sidecars.get(name) ?? extra.find((s) => s.metricsPort > 0 && name === 'mongodb'))!.metricsPort, metric);

  before(async () => {
    mesh = await startBookinfoMesh(() => ({ metricsPort: 0 }));
  });
  after(async () => {
    await Promise.all(extra.map((s) => s.destroy()));
    await mesh?.close();
    mongodb?.close();
    ratingsV2?.close();
  });

  it('istio_requests_total{destination_service="productpage..."} counts the pages at productpage\'s sidecar', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await mesh.page()).status, 200);
    const query = { destination_service: 'productpage.default.svc.cluster.local' };
    await eventually(async () => select(await metrics('productpage', 'istio_requests_total'), { ...query, reporter: 'destination' }).reduce((n, s) => n + s.value, 0) === 3);
    const [series] = select(await metrics('productpage', 'istio_requests_total'), { ...query, reporter: 'destination' });
    assert.deepEqual(
      { ...series!.labels },
      {
        ...series!.labels,
        response_code: '200',
        destination_workload: 'productpage-v1',
        destination_version: 'v1',
        destination_app: 'productpage',
        destination_service_name: 'productpage',
        destination_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
        source_principal: 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account',
        connection_security_policy: 'mutual_tls',
        request_protocol: 'http',
      },
    );
  });

  it('istio_requests_total{destination_service="reviews...", destination_version="v3"} finds v3\'s requests', async () => {
    const query = { destination_service: 'reviews.default.svc.cluster.local', destination_version: 'v3', reporter: 'destination' };
    await eventually(async () => {
      await mesh.page();
      return select(await metrics('reviews-v3', 'istio_requests_total'), query).length > 0;
    });
    assert.equal(select(await metrics('reviews-v3', 'istio_requests_total'), query)[0]!.labels['source_workload'], 'productpage-v1');
    // The same query at v1's sidecar finds nothing: each version reports its own.
    assert.deepEqual(select(await metrics('reviews-v1', 'istio_requests_total'), query), []);
  });

  it('ratings v2 to mongodb: the TCP metrics at mongodb\'s sidecar, with the caller\'s identity', async () => {
    // mongodb-v1: answers each chunk (a query) with a document.
    mongodb = await listening(createServer((s) => s.on('error', () => s.destroy()).on('data', (d) => s.write(`{"ratings": {"Reviewer1": 5}} for ${d.toString().trim()}\n`))));
    const mongoSidecar = await startSidecar({ ...sidecarOptions(mesh.ca, mesh.dir, 'mongodb', portOf(mongodb)), identity: fixedIdentity(mesh.ca, 'default', 'default'), serviceAccount: 'default', labels: { app: 'mongodb', version: 'v1' }, metricsPort: 0 });
    // ratings-v2: reads the ratings from mongodb:27017 on every request, through its sidecar (CONNECT).
    let outbound = 0;
    ratingsV2 = await listening(
      createHttpServer((req, res) => {
        req.resume();
        void tunnel(outbound, 'mongodb:27017', 'find ratings\n').then((db) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ service: 'ratings', version: 'v2', db })));
      }),
    );
    const ratingsSidecar = await startSidecar({ ...sidecarOptions(mesh.ca, mesh.dir, 'ratings', portOf(ratingsV2)), identity: fixedIdentity(mesh.ca, 'default', 'bookinfo-ratings'), serviceAccount: 'bookinfo-ratings', labels: { app: 'ratings', version: 'v2' } });
    outbound = ratingsSidecar.outboundPort;
    extra = [mongoSidecar, ratingsSidecar];
    // bookinfo-db.yaml's Service and mongodb-v1's pod; ratings-v2's pod joins the ratings Service.
    const ratingsPod = serviceYaml('ratings', [{ pod: 'ratings-v2', port: ratingsSidecar.inboundPort, serviceAccount: 'bookinfo-ratings', labels: { version: 'v2', ...TLS } }], { port: 9080 });
    await writeFile(join(mesh.dir, 'ratings-v2.yaml'), ratingsPod.slice(ratingsPod.indexOf('---\n') + 4));
    await writeFile(join(mesh.dir, 'bookinfo-db.yaml'), serviceYaml('mongodb', [{ pod: 'mongodb-v1', port: mongoSidecar.inboundPort, serviceAccount: 'default', labels: { version: 'v1', ...TLS } }], { port: 27017, portName: 'mongo' }));
    const known = (s: { registry: { lookup(host: string): unknown } }): boolean => s.registry.lookup('mongodb.default.svc.cluster.local') !== undefined;
    await Promise.all([...mesh.sidecars.values(), ...extra].map((s) => untilSnapshot(s.holder, known)));
    await mesh.apply(await readFile(repoPath('test/fixtures/istio-tasks/metrics/virtual-service-ratings-db.yaml'), 'utf8'));

    const page = await mesh.page();
    assert.equal(page.reviews?.version, 'v3');
    const ratings = page.ratings?.body as { version: string; db: { status: number; body: string } };
    assert.equal(ratings.version, 'v2');
    assert.deepEqual(ratings.db, { status: 200, body: '{"ratings": {"Reviewer1": 5}} for find ratings\n' });

    const query = { reporter: 'destination', destination_workload: 'mongodb-v1' };
    await eventually(async () => select(await scrapeSamples(mongoSidecar.metricsPort, 'istio_tcp_connections_closed_total'), query).length > 0);
    const opened = select(await scrapeSamples(mongoSidecar.metricsPort, 'istio_tcp_connections_opened_total'), query);
    assert.equal(opened.length, 1, JSON.stringify(opened));
    assert.deepEqual(
      { ...opened[0]!.labels },
      {
        ...opened[0]!.labels,
        source_workload: 'ratings-v2',
        source_version: 'v2',
        source_app: 'ratings',
        source_canonical_service: 'ratings',
        source_canonical_revision: 'v2',
        source_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-ratings',
        destination_service: 'mongodb.default.svc.cluster.local',
        destination_service_name: 'mongodb',
        destination_version: 'v1',
        destination_app: 'mongodb',
        destination_principal: 'spiffe://cluster.local/ns/default/sa/default',
        connection_security_policy: 'mutual_tls',
        request_protocol: 'tcp',
      },
    );
    const bytes = async (metric: string): Promise<number> => select(await scrapeSamples(mongoSidecar.metricsPort, metric), query).reduce((n, s) => n + s.value, 0);
    assert.equal(await bytes('istio_tcp_received_bytes_total'), 'find ratings\n'.length);
    assert.equal(await bytes('istio_tcp_sent_bytes_total'), '{"ratings": {"Reviewer1": 5}} for find ratings\n'.length);
  });
});

describe('Classifying Metrics Based on Request or Response: not run, and said so', () => {
  // The task's WasmPlugin (attributegen) and Telemetry (test/fixtures/istio-tasks/classify-metrics/).
  const BIN = repoPath('bin/meshgate.js');
  const DIR = repoPath('test/fixtures/istio-tasks/classify-metrics');

  it('validate and analyze warn at the WasmPlugin and at the override reading its filter_state', () => {
    for (const command of ['validate', 'analyze']) {
      const r = spawnSync(process.execPath, [BIN, command, DIR], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      const out = r.stdout + r.stderr;
      assert.match(out, /attributegen\.yaml:2 WasmPlugin default\/istio-attributegen-filter kind: warning: .*meshgate runs no Wasm plugins/);
      assert.match(out, /attributegen\.yaml:\d+ Telemetry default\/custom-tags spec\.metrics\[0\]\.overrides\[0\]\.tagOverrides\.request_operation\.value: warning: .*filter_state.*meshgate runs none.*this override is ignored/);
    }
  });
});
