// The mesh dashboard in a real headless Chromium: after traffic through the demo mesh, the control
// plane's page shows the demo's workloads with the gateway as the entry, edges with rates and a
// padlock on the mutual-TLS ones, updates without a reload, and a node's details open by keyboard.
// A gateway without a control plane serves the same page on its admin port for its own traffic.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { send } from './helpers/gateway.js';
import { startTestDemoMesh, type TestDemoMesh } from './helpers/demo-mesh.js';
import { chromiumSkipReason, launchChromium } from './helpers/chromium.js';
import { startTestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startUpstream } from './helpers/upstream.js';

const skip = chromiumSkipReason();

describe('the service graph in headless Chromium', { skip }, () => {
  let demo: TestDemoMesh;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  before(async () => {
    demo = await startTestDemoMesh();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await demo?.close();
  });

  it('shows the demo\'s workloads and edges after traffic, and a node\'s details by keyboard', async () => {
    for (let i = 0; i < 10; i++) assert.equal((await send(demo.port, 'product.example.com', '/')).status, 200);
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${demo.mesh.control.debugPort}/`);
    for (const id of ['istio-system/istio-ingressgateway', 'default/product-service-v1', 'default/user-service-v1']) {
      await page.waitForSelector(`.node[data-id="${id}"]`, { timeout: 20_000 });
    }
    await page.waitForSelector('.edge[data-source="istio-system/istio-ingressgateway"][data-target="default/product-service-v1"]', { timeout: 20_000 });
    const toUser = page.locator('.edge[data-target="default/user-service-v1"][data-source="default/product-service-v1"]');
    await toUser.waitFor({ timeout: 20_000 });
    assert.match((await toUser.locator('text').textContent()) ?? '', /req\/s · \d+(\.\d)?% · p99/);
    assert.equal(await toUser.locator('title').textContent(), 'mutual TLS');
    // The gateway is the entry: leftmost. The three positions are read at one instant in the page,
    // since a refresh of the graph may replace a node between two separate reads (then it has no box).
    const ids = ['istio-system/istio-ingressgateway', 'default/product-service-v1', 'default/user-service-v1'];
    type Doc = { querySelector(s: string): { getBoundingClientRect(): { x: number; width: number } } | null };
    const xs = (await (
      await page.waitForFunction((wanted) => {
        const doc = (globalThis as unknown as { document: Doc }).document;
        const boxes = wanted.map((id) => doc.querySelector(`.node[data-id="${id}"]`)?.getBoundingClientRect());
        return boxes.every((b) => b && b.width > 0) ? boxes.map((b) => b!.x) : null;
      }, ids, { timeout: 10_000 })
    ).jsonValue()) as number[];
    assert.ok(xs[0]! < xs[1]! && xs[1]! < xs[2]!, `left to right: ${ids.join(', ')} at ${xs.join(', ')}`);

    // Live: more traffic shows up without a reload.
    const status = page.locator('#status');
    const first = await status.textContent();
    await send(demo.port, 'product.example.com', '/');
    await page.waitForFunction((before) => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string | null } | null } }).document.getElementById('status')?.textContent !== before, first, { timeout: 10_000 });

    // Keyboard: Tab to the user-service node, Enter opens its panel, Escape closes it.
    await page.locator('.node[data-id="default/user-service-v1"]').focus();
    await page.keyboard.press('Enter');
    const panel = page.locator('#panel');
    await panel.waitFor({ state: 'visible' });
    assert.match((await panel.textContent()) ?? '', /user-service-v1[\s\S]*Inbound[\s\S]*product-service-v[12][\s\S]*Routes[\s\S]*VirtualService/);
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
    await page.close();
  });
});

describe('a gateway without a control plane', { skip }, () => {
  it('serves the graph of its own traffic on its admin port', async () => {
    const up = await startUpstream('app');
    const gw = await startTestGateway({ 'gw.yaml': gatewayYaml(['app.example.com']), 'svc.yaml': serviceYaml('app', [{ pod: 'app-0', port: up.port }]), 'vs.yaml': 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app}\nspec:\n  hosts: [app.example.com]\n  gateways: [gw]\n  http:\n  - route: [{destination: {host: app}}]\n' }, { gateway: { metricsPort: 0 } });
    const browser = await launchChromium();
    try {
      for (let i = 0; i < 3; i++) assert.equal((await gw.get('app.example.com')).status, 200);
      const page = await browser.context.newPage();
      await page.goto(`http://127.0.0.1:${gw.gw.adminPort}/dashboard`);
      await page.waitForSelector('.node.gateway', { timeout: 20_000 });
      await page.waitForSelector('.edge', { timeout: 20_000 });
      assert.equal(await page.locator('.node').count(), 2);
    } finally {
      await browser.close();
      await gw.close();
      await up.close();
    }
  });
});
