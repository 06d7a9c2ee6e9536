// Probes of the mesh dashboard as an attack surface, in a real headless Chromium: the strings it
// draws come from every connected proxy's `/stats/json` (a workload's own labels, a Host a sidecar
// passed through, whatever a compromised workload's metrics port answers) and from the mesh's
// configuration. Markup in any of them must render as text and run nothing; a proxy that answers
// with a flood must not make the control plane buffer it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { chromiumSkipReason, launchChromium } from './helpers/chromium.js';
import { createDebugServer } from '../src/control/debug-server.js';
import { MeshDashboard } from '../src/control/mesh-dashboard.js';
import { ProxyRegistry } from '../src/control/proxy-registry.js';
import type { PublishedSet } from '../src/control/config-set.js';
import type { Resource } from '../src/core/model/resource.js';

const skip = chromiumSkipReason();

const MARK = (n: number): string => `<img src=x onerror="window.__pwned=${n}">`;

/** A `/stats/json` answer as a compromised proxy could write it: markup in every label, a string where a count goes (beside real counts, so the nodes are drawn). */
function rogueStats(): unknown[] {
  const labels = {
    reporter: 'destination',
    source_workload: `front${MARK(1)}`,
    source_workload_namespace: `<script>window.__pwned=2</script>`,
    source_app: 'front',
    destination_workload: `back"><svg onload="window.__pwned=3">`,
    destination_workload_namespace: `shop${MARK(4)}`,
    destination_app: 'back',
    destination_service: `back.shop.svc.cluster.local${MARK(5)}`,
    connection_security_policy: 'mutual_tls',
  };
  return [
    { name: 'istio_requests_total', help: '', type: 'counter', aggregator: 'sum', values: [{ labels: { ...labels, response_code: `200${MARK(6)}` }, value: MARK(7) }, { labels: { ...labels, response_code: '200' }, value: 5 }] },
    { name: 'istio_request_duration_milliseconds', help: '', type: 'histogram', aggregator: 'sum', values: [{ metricName: 'istio_request_duration_milliseconds_bucket', labels: { ...labels, le: MARK(8) }, value: MARK(9) }, { metricName: 'istio_request_duration_milliseconds_bucket', labels: { ...labels, le: '+Inf' }, value: MARK(10) }, { metricName: 'istio_request_duration_milliseconds_bucket', labels: { ...labels, le: '25' }, value: 5 }] },
  ];
}

const listen = (s: Server): Promise<number> => new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));

describe('the mesh dashboard against a rogue proxy\'s metrics and hostile names', { skip }, () => {
  let proxy: Server;
  let debug: Server;
  let debugPort: number;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  before(async () => {
    proxy = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(rogueStats())));
    const proxyPort = await listen(proxy);
    const vs: Resource = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: `vs${MARK(11)}`, namespace: 'shop' }, spec: { hosts: [`h${MARK(12)}`], http: [{ route: [{ destination: { host: `back${MARK(13)}` } }] }] } } as unknown as Resource;
    const config = { version: `v1${MARK(14)}`, resources: [vs], entries: new Map(), problems: [] } as unknown as PublishedSet;
    const registry = new ProxyRegistry({ log: pino({ level: 'silent' }) });
    debug = createDebugServer(registry, undefined, new MeshDashboard({ registry, config: () => config, targets: () => [`127.0.0.1:${proxyPort}`] }));
    debugPort = await listen(debug);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    debug?.close();
    proxy?.close();
  });

  it('renders every label, count and route as text and runs none of it, in the graph and in a node\'s panel', async () => {
    const page = await browser.context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`http://127.0.0.1:${debugPort}/`);
    const nodes = page.locator('.node');
    await nodes.first().waitFor({ timeout: 20_000 });
    for (const n of await nodes.all()) {
      await n.focus();
      await page.keyboard.press('Enter');
      await page.locator('#panel').waitFor({ state: 'visible' });
      const text = (await page.locator('#panel').textContent()) ?? '';
      assert.ok(text.includes('<'), `the panel shows the markup as text: ${text.slice(0, 200)}`);
      assert.equal(await page.locator('#panel img, #panel svg, #panel script').count(), 0, 'no element made from a label');
      await page.keyboard.press('Escape');
    }
    assert.equal(await page.locator('#graph img, #graph script, #graph foreignObject').count(), 0);
    assert.match((await page.locator('#title').textContent()) ?? '', /<img/);
    // Wait for a second refresh of the data, so that anything scheduled by a first one has run.
    const first = await page.locator('#status').textContent();
    await page.waitForFunction((b) => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string | null } | null } }).document.getElementById('status')?.textContent !== b, first, { timeout: 10_000 });
    assert.equal(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned), undefined);
    assert.deepEqual(dialogs, []);
    await page.close();
  });

  it('graph.json carries counts as numbers, never a proxy\'s string', async () => {
    const graph = (await (await fetch(`http://127.0.0.1:${debugPort}/graph.json`)).json()) as { edges: Array<Record<string, unknown>> };
    for (const e of graph.edges) {
      for (const k of ['rps', 'errorPercent', 'total']) assert.equal(typeof e[k], 'number', `${k}: ${String(e[k])}`);
      assert.ok(e['p99Ms'] === null || typeof e['p99Ms'] === 'number');
      for (const v of Object.values(e['codes'] as Record<string, unknown>)) assert.equal(typeof v, 'number');
    }
  });
});

describe('the mesh dashboard against proxies whose metrics are not prom-client\'s shape', () => {
  it('leaves out what it cannot read and draws the rest: one odd proxy does not take the graph down', async () => {
    const answers = ['{}', '5', '[null, 5, {"name": "istio_requests_total", "values": {}}]', '[{"name": "istio_requests_total", "values": [null, {"labels": null, "value": 1}, {"labels": {"source_workload": {"x": 1}, "destination_principal": 7}, "value": 1}]}]', JSON.stringify(rogueStats())];
    const servers = answers.map((a) => createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(a)));
    const ports = await Promise.all(servers.map(listen));
    const registry = new ProxyRegistry({ log: pino({ level: 'silent' }) });
    const dashboard = new MeshDashboard({ registry, config: () => undefined, targets: () => ports.map((p) => `127.0.0.1:${p}`) });
    try {
      const data = await dashboard.data();
      assert.ok(data.nodes.some((n) => n.workload.startsWith('front<img')), 'the readable proxy is drawn');
      assert.ok(data.edges.every((e) => typeof e.total === 'number'));
    } finally {
      for (const s of servers) s.close();
    }
  });
});

describe('the mesh dashboard against a proxy that redirects its scrape', () => {
  it('follows no redirect: the control plane never asks where a proxy points it', async () => {
    const asked: string[] = [];
    const inside = createServer((req, res) => {
      asked.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(rogueStats()));
    });
    const insidePort = await listen(inside);
    const proxy = createServer((_req, res) => res.writeHead(302, { location: `http://127.0.0.1:${insidePort}/internal/secret` }).end());
    const port = await listen(proxy);
    const registry = new ProxyRegistry({ log: pino({ level: 'silent' }) });
    try {
      const data = await new MeshDashboard({ registry, config: () => undefined, targets: () => [`127.0.0.1:${port}`] }).data();
      assert.deepEqual([asked, data.nodes], [[], []]);
    } finally {
      proxy.close();
      inside.close();
    }
  });
});

describe('the mesh dashboard against a proxy whose metrics never end', () => {
  it('stops reading at its bound and leaves the proxy out, instead of buffering what it sends', async () => {
    let sent = 0;
    const chunk = Buffer.alloc(1 << 20, 0x20);
    const flood = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[');
      const pump = (): void => {
        while (!res.destroyed && sent < 1 << 30) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
    });
    const port = await listen(flood);
    const registry = new ProxyRegistry({ log: pino({ level: 'silent' }) });
    const dashboard = new MeshDashboard({ registry, config: () => undefined, targets: () => [`127.0.0.1:${port}`] });
    try {
      const data = await dashboard.data();
      assert.deepEqual(data.nodes, []);
      assert.ok(sent < 48 << 20, `the control plane accepted ${sent >> 20} MiB`);
    } finally {
      flood.closeAllConnections();
      flood.close();
    }
  });
});
