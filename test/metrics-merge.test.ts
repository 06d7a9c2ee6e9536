// Prometheus metrics merging as Istio does it (docs/reference/metrics.md#scrape-annotations-on-injected-pods):
// injection points the pod's prometheus.io annotations at the sidecar's 15020/stats/prometheus and
// hands the app's own settings to the sidecar in ISTIO_PROMETHEUS_ANNOTATIONS; the sidecar answers
// that scrape with its Istio series followed by the app's metrics.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { injectPod } from '../src/core/inject/inject-pod.js';
import { review } from '../src/control/injection-webhook.js';
import { parseAppScrapeSettings, PROMETHEUS_SCRAPE_ENV } from '../src/core/inject/prometheus-annotations.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { sidecarOptions, testAuthority, viaProxy } from './helpers/mesh.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { samplesOf, scrape } from './helpers/prometheus-text.js';

type Json = Record<string, any>;
const OPTS = { image: 'meshgate:test', controlAddress: 'https://meshgate-control.istio-system.svc:15012' };

function pod(annotations?: Record<string, string>): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'shop-0', namespace: 'shop', labels: { app: 'shop' }, ...(annotations ? { annotations } : {}) },
    spec: { containers: [{ name: 'app', image: 'shop:1', ports: [{ containerPort: 8080 }] }] },
  };
}
const annotationsOf = (p: Json): Record<string, string> => p.metadata.annotations;
const scrapeEnvOf = (p: Json): string | undefined =>
  (p.spec.containers as Json[]).find((c) => c.name === 'istio-proxy')!.env.find((e: Json) => e.name === PROMETHEUS_SCRAPE_ENV)?.value;
const MERGED = { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '15020', 'prometheus.io/path': '/stats/prometheus' };
const scrapeKeys = (a: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(a).filter(([k]) => k.startsWith('prometheus')));

describe('injection points Prometheus at the merged endpoint', () => {
  it('a pod without scrape settings: 15020, and the sidecar is told to serve it', () => {
    const out = injectPod(pod(), OPTS);
    assert.deepEqual(scrapeKeys(annotationsOf(out)), MERGED);
    assert.equal(scrapeEnvOf(out), '{}');
    // 15090 stays the proxy's own endpoint, named as Istio's proxy container names it.
    const proxy = ((out as Json).spec.containers as Json[]).find((c) => c.name === 'istio-proxy')!;
    assert.deepEqual(proxy.ports, [{ containerPort: 15090, protocol: 'TCP', name: 'http-envoy-prom' }]);
  });

  it('a pod with its own: they move to ISTIO_PROMETHEUS_ANNOTATIONS, whatever spelling Prometheus reads them by', () => {
    const own = injectPod(pod({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9100', 'prometheus.io/path': '/custom' }), OPTS);
    assert.deepEqual(scrapeKeys(annotationsOf(own)), MERGED);
    assert.deepEqual(JSON.parse(scrapeEnvOf(own)!), { scrape: 'true', port: '9100', path: '/custom' });
    const variant = injectPod(pod({ 'prometheus-io/port': '9100' }), OPTS);
    assert.deepEqual(scrapeKeys(annotationsOf(variant)), MERGED, 'the variant spelling is replaced, not left beside ours');
    assert.deepEqual(JSON.parse(scrapeEnvOf(variant)!), { port: '9100' });
  });

  it('left alone: merge-metrics "false", a pod that asked not to be scraped', () => {
    const cases: Record<string, string>[] = [{ 'prometheus.istio.io/merge-metrics': 'false', 'prometheus.io/port': '9100' }, { 'prometheus.io/scrape': 'false' }];
    for (const given of cases) {
      const out = injectPod(pod({ ...given }), OPTS);
      assert.deepEqual(scrapeKeys(annotationsOf(out)), given);
      assert.equal(scrapeEnvOf(out), undefined);
    }
  });

  it('the mesh config\'s enablePrometheusMerge: false turns it off, unless the pod asks with merge-metrics "true"', () => {
    const off = { ...OPTS, enablePrometheusMerge: false };
    assert.deepEqual(scrapeKeys(annotationsOf(injectPod(pod({ 'prometheus.io/port': '9100' }), off))), { 'prometheus.io/port': '9100' });
    const asked = injectPod(pod({ 'prometheus.istio.io/merge-metrics': 'true', 'prometheus.io/port': '9100' }), off);
    assert.equal(annotationsOf(asked)['prometheus.io/port'], '15020');
    // The admission webhook reads it from the mesh config it serves.
    const admission = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'shop', object: pod({ 'prometheus.io/port': '9100' }) } });
    const patchOf = (merge: boolean): string => Buffer.from(String((review(admission, { inject: OPTS, log: pino({ level: 'silent' }), namespaceLabels: () => ({ 'istio-injection': 'enabled' }), prometheusMerge: () => merge }).response as Json).patch), 'base64').toString('utf8');
    assert.match(patchOf(true), /"prometheus\.io\/port":"15020"/);
    assert.match(patchOf(false), /"prometheus\.io\/port":"9100"/);
  });

  it('injecting twice keeps the app\'s settings', () => {
    const once = injectPod(pod({ 'prometheus.io/port': '9100' }), OPTS);
    const twice = injectPod(once, OPTS);
    assert.deepEqual(scrapeKeys(annotationsOf(twice)), MERGED);
    assert.equal(scrapeEnvOf(twice), scrapeEnvOf(once));
  });

  it('the sidecar reads the variable: merge, and where the app\'s metrics are', () => {
    assert.deepEqual(parseAppScrapeSettings(undefined), { merge: false });
    assert.deepEqual(parseAppScrapeSettings('{}'), { merge: true });
    assert.deepEqual(parseAppScrapeSettings('{"port":"9100"}'), { merge: true, target: { port: 9100, path: '/metrics' } });
    assert.deepEqual(parseAppScrapeSettings('{"port":"9100","path":"stats","scrape":"true"}'), { merge: true, target: { port: 9100, path: '/stats' } });
    assert.deepEqual(parseAppScrapeSettings('{"port":"9100","scrape":"false"}'), { merge: true });
    assert.match(parseAppScrapeSettings('{"port":"http"}').problem!, /not a port number/);
    assert.match(parseAppScrapeSettings('nope').problem!, /not JSON/);
  });
});

describe('the sidecar\'s merged endpoint', () => {
  let ca: CertificateAuthority;
  let dir: string;
  let app: Upstream;
  let merged: RunningSidecar, broken: RunningSidecar, huge: RunningSidecar, slow: RunningSidecar;

  before(async () => {
    ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-merge-'));
    app = await startUpstream('shop', (req, res) => {
      if (req.url === '/custom') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end('# HELP shop_orders_total Orders.\n# TYPE shop_orders_total counter\nshop_orders_total 7');
        return true;
      }
      if (req.url === '/broken') {
        res.writeHead(500).end('no');
        return true;
      }
      // An exposition with no end: written as fast as it is read, until the reader goes away.
      if (req.url === '/huge') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        const line = Buffer.from('shop_endless_total 1\n'.repeat(4096));
        const more = (): void => {
          while (!res.destroyed && res.write(line));
          if (!res.destroyed) res.once('drain', more);
        };
        more();
        return true;
      }
      // An exposition that drips: a line now and then, never the end.
      if (req.url === '/slow') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.write('shop_slow_total 1\n');
        const drip = setInterval(() => res.write('# still here\n'), 100);
        res.once('close', () => clearInterval(drip));
        return true;
      }
      return false;
    });
    const opts = { ...sidecarOptions(ca, dir, 'shop', app.port), metricsPort: 0, probePort: 0 };
    merged = await startSidecar({ ...opts, mergedMetrics: { app: { port: app.port, path: '/custom' } } });
    broken = await startSidecar({ ...opts, mergedMetrics: { app: { port: app.port, path: '/broken' } } });
    huge = await startSidecar({ ...opts, mergedMetrics: { app: { port: app.port, path: '/huge' } } });
    slow = await startSidecar({ ...opts, mergedMetrics: { app: { port: app.port, path: '/slow' } } });
  });
  after(async () => {
    await Promise.all([merged?.destroy(), broken?.destroy(), huge?.destroy(), slow?.destroy()]);
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the sidecar\'s Istio series followed by the app\'s own', async () => {
    assert.equal((await viaProxy(merged.outboundPort, `http://127.0.0.1:${app.port}/`)).status, 200);
    assert.notEqual(merged.probePort, 0);
    const text = await scrape(merged.probePort);
    assert.equal(samplesOf(text, 'istio_requests_total').length, 1, text);
    assert.deepEqual(samplesOf(text, 'shop_orders_total'), [{ labels: {}, value: 7 }]);
    assert.ok(text.indexOf('istio_requests_total') < text.indexOf('shop_orders_total'));
    // The same series as on 15090.
    assert.deepEqual(samplesOf(await scrape(merged.metricsPort), 'istio_requests_total'), samplesOf(text, 'istio_requests_total'));
  });

  it('an app that cannot be scraped costs only its part', async () => {
    assert.equal((await viaProxy(broken.outboundPort, `http://127.0.0.1:${app.port}/`)).status, 200);
    const text = await scrape(broken.probePort);
    assert.equal(samplesOf(text, 'istio_requests_total').length, 1, text);
    assert.ok(!text.includes('shop_orders_total'));
  });

  /** The app's failed scrapes as the agent's own series count them. */
  const appFailures = (text: string): number => samplesOf(text, 'istio_agent_scrape_failures_total').find((x) => x.labels['type'] === 'application')?.value ?? 0;

  it('an app whose metrics never end is cut at the cap: the sidecar\'s series are served, the failure counted', async () => {
    const text = await scrape(huge.probePort);
    assert.ok(text.includes('# TYPE istio_requests_total'), 'the sidecar\'s own series');
    assert.ok(!text.includes('shop_endless_total'), 'nothing of the app\'s part');
    assert.ok(text.length < 1024 * 1024, `an answer of ${text.length} bytes`);
    assert.equal(appFailures(text), 1);
    assert.deepEqual(samplesOf(text, 'istio_agent_scrapes_total'), [{ labels: {}, value: 1 }]);
  });

  it('an app that never finishes its answer is given up at the scrape\'s timeout, not kept alive by a drip', async () => {
    const r = await fetch(`http://127.0.0.1:${slow.probePort}/stats/prometheus`, { headers: { 'x-prometheus-scrape-timeout-seconds': '0.5' } });
    assert.equal(r.status, 200);
    const text = await r.text();
    assert.ok(text.includes('# TYPE istio_requests_total'));
    assert.ok(!text.includes('shop_slow_total'));
    assert.equal(appFailures(text), 1);
  });

  it('a healthy app\'s scrapes count no failure', async () => {
    const text = await scrape(merged.probePort);
    assert.equal(appFailures(text), 0);
    assert.ok(text.indexOf('istio_agent_scrapes_total') < text.indexOf('istio_requests_total'), 'the agent\'s series lead, as istio-agent writes them');
  });
});
