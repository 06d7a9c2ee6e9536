// Probes of the loopback-only management ports from a web page in a browser on the same machine:
// a page may send a POST to 127.0.0.1 without any preflight (a form, a no-cors fetch), and by DNS
// rebinding (its own name pointed at 127.0.0.1) it may read what a GET answers. The browser's
// headers are sent as a page's would be: its own name in Host, `Origin`, `Sec-Fetch-Site`.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { request } from 'undici';
import { gatewayYaml } from './helpers/cluster-yaml.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { createAppProbeServer } from '../src/sidecar/app-probes.js';
import { createDebugServer } from '../src/control/debug-server.js';
import { ProxyRegistry } from '../src/control/proxy-registry.js';

async function ask(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; text: string }> {
  const r = await request(`http://127.0.0.1:${port}${path}`, { method, headers });
  return { status: r.statusCode, text: await r.body.text() };
}

const REBOUND = 'rebind.attacker.example';

describe('the gateway\'s admin port (127.0.0.1) under a DNS-rebinding page\'s name', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ 'gw.yaml': gatewayYaml(['app.example.com']) }, { gateway: { metricsPort: 0 } });
  });
  after(async () => gw?.close());

  it('answers nothing to a Host that is another DNS name, and everything to localhost or an address', async () => {
    const port = gw.gw.adminPort;
    for (const path of ['/config_dump', '/routes', '/dashboard', '/dashboard/graph.json']) {
      for (const host of [`${REBOUND}:${port}`, REBOUND, `LOCALHOST.${REBOUND}`, `127.0.0.1.${REBOUND}:${port}`]) {
        const r = await ask(port, path, { host });
        assert.equal(r.status, 403, `${path} as ${host}`);
        assert.doesNotMatch(r.text, /VirtualService|resources|<html/);
      }
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `dashboard.localhost:${port}`, `[::1]:${port}`, '10.0.0.7:15000']) {
        assert.equal((await ask(port, path, { host })).status, 200, `${path} as ${host}`);
      }
    }
  });
});

describe('the control plane\'s debug port under a DNS-rebinding page\'s name', () => {
  let server: Server;
  let port: number;
  before(async () => {
    server = createDebugServer(new ProxyRegistry({ log: pino({ level: 'silent' }) }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server?.close());

  it('lists no proxy to another DNS name; localhost still gets the inventory', async () => {
    assert.equal((await ask(port, '/debug/proxies', { host: `${REBOUND}:${port}` })).status, 403);
    const local = await ask(port, '/debug/proxies', { host: `localhost:${port}` });
    assert.deepEqual([local.status, JSON.parse(local.text)], [200, []]);
  });
});

describe('the agent port\'s lifecycle actions against a web page\'s POST', () => {
  it('a POST a page sent (Origin, or Sec-Fetch-Site other than none) neither ends nor drains the proxy; curl\'s does', async () => {
    const asked: string[] = [];
    const agent = createAppProbeServer({ probers: {}, appHost: '127.0.0.1', quit: () => asked.push('quit'), drain: () => asked.push('drain') });
    const port = await agent.listen(0, '127.0.0.1');
    try {
      for (const path of ['/quitquitquit', '/drain']) {
        for (const headers of <Array<Record<string, string>>>[{ origin: 'https://attacker.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: `http://127.0.0.1:${port}` }]) {
          const r = await ask(port, path, { 'content-type': 'application/x-www-form-urlencoded', ...headers }, 'POST');
          assert.equal(r.status, 403, `${path} ${JSON.stringify(headers)}`);
        }
      }
      assert.deepEqual(asked, []);
      assert.equal((await ask(port, '/drain', { 'sec-fetch-site': 'none' }, 'POST')).status, 200);
      assert.equal((await ask(port, '/quitquitquit', {}, 'POST')).status, 200);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(asked, ['drain', 'quit']);
    } finally {
      await agent.close();
    }
  });
});
