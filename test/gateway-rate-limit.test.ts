// Integration: RateLimitPolicy with store memory on a real gateway over real sockets. Counts are
// exact (every interval is an hour, so no window can roll over mid-test; nothing depends on time):
// requests + burst pass, the next one is a 429 with Retry-After and x-ratelimit-* headers, other
// routes and hosts are untouched, keys by header, client address behind trusted proxies, the
// certificate identity under mTLS, reloads that keep counts, and the access log line.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { startGateway, type RunningGateway } from '../src/gateway/main.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { eventually, send, startTestGateway, type Reply, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

function policyYaml(name: string, target: string, limit: string, store = 'memory'): string {
  return `apiVersion: meshgate.io/v1
kind: RateLimitPolicy
metadata: {name: ${name}, namespace: default}
spec:
  targetRef: ${target}
  limits:
  - ${limit}
  store: ${store}
`;
}

const ROUTES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: product, namespace: default}
spec:
  hosts: [product.example.com]
  gateways: [gw]
  http:
  - name: other
    match: [{uri: {prefix: /other}}]
    route: [{destination: {host: product-service}}]
  - name: main
    route: [{destination: {host: product-service}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com, "*.wild.example.com"]
  gateways: [gw]
  http:
  - route: [{destination: {host: product-service}}]
`;

async function statuses(send: () => Promise<Reply>, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await send()).status);
  return out;
}

describe('rate limiting, store memory', () => {
  let up: Upstream;
  let gw: TestGateway;
  let logDir: string;

  before(async () => {
    up = await startUpstream('product');
    logDir = await mkdtemp(join(tmpdir(), 'meshgate-rl-log-'));
    gw = await startTestGateway(
      {
        'gateway.yaml': gatewayYaml(['product.example.com', 'api.example.com', '*.wild.example.com']),
        'services.yaml': serviceYaml('product-service', [{ pod: 'product-1', port: up.port }]),
        'routes.yaml': ROUTES,
        'per-client.yaml': policyYaml('per-client', '{kind: VirtualService, name: product, route: main}', '{key: {clientIp: {}}, requests: 3, interval: 1h, burst: 2}'),
        'per-key.yaml': policyYaml('per-key', '{kind: VirtualService, name: api}', '{key: {header: {name: x-api-key}}, requests: 2, interval: 1h}'),
        'one-host.yaml': policyYaml('one-host', '{kind: Gateway, name: gw, host: a.wild.example.com}', '{key: {clientIp: {}}, requests: 1, interval: 1h}'),
      },
      { accessLog: join(logDir, 'access.log') },
    );
  });
  after(async () => {
    await gw.close();
    await up.close();
    await rm(logDir, { recursive: true, force: true });
  });

  it('lets requests + burst through per client, then answers 429 with Retry-After and x-ratelimit-* headers', async () => {
    const seenBefore = up.seen.length;
    const replies: Reply[] = [];
    for (let i = 0; i < 6; i++) replies.push(await gw.get('product.example.com', '/', { 'x-request-id': `rl-${i}` }));
    assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 200, 200, 429]);
    assert.equal(up.seen.length - seenBefore, 5, 'the refused request never reached the upstream');
    // The window's 3 count down; the 2 of the burst reserve ride on a used-up window.
    assert.deepEqual(replies.slice(0, 5).map((r) => [r.headers['x-ratelimit-limit'], r.headers['x-ratelimit-remaining']]), [
      ['3', '2'], ['3', '1'], ['3', '0'], ['3', '0'], ['3', '0'],
    ]);
    for (const r of replies.slice(0, 5)) assert.match(String(r.headers['x-ratelimit-reset']), /^\d+$/);
    const refused = replies[5]!;
    assert.equal(refused.text, 'local_rate_limited');
    assert.equal(refused.headers['server'], 'istio-envoy');
    assert.equal(refused.headers['x-request-id'], 'rl-5');
    assert.equal(refused.headers['x-ratelimit-limit'], '3');
    assert.equal(refused.headers['x-ratelimit-remaining'], '0');
    const retryAfter = Number(refused.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 3600, `Retry-After ${refused.headers['retry-after']}`);
    assert.equal(refused.headers['x-ratelimit-reset'], String(retryAfter));
  });

  it('a targetRef naming one http route leaves the other routes of the VirtualService alone', async () => {
    const replies = await Promise.all(Array.from({ length: 10 }, () => gw.get('product.example.com', '/other')));
    assert.deepEqual(replies.map((r) => r.status), Array(10).fill(200));
    assert.ok(replies.every((r) => r.headers['x-ratelimit-limit'] === undefined));
  });

  it('keys by header: each value has its own count, and a request without the header is not counted', async () => {
    const as = (key: string) => () => gw.get('api.example.com', '/', { 'x-api-key': key });
    assert.deepEqual(await statuses(as('k1'), 3), [200, 200, 429]);
    assert.deepEqual(await statuses(as('k2'), 3), [200, 200, 429]);
    assert.deepEqual(await statuses(as('k1'), 1), [429]);
    const anonymous = await gw.get('api.example.com', '/');
    assert.equal(anonymous.status, 200);
    assert.equal(anonymous.headers['x-ratelimit-limit'], undefined);
  });

  it('a Gateway host inside a wildcard virtual host limits that one name', async () => {
    assert.deepEqual(await statuses(() => gw.get('a.wild.example.com'), 2), [200, 429]);
    assert.deepEqual(await statuses(() => gw.get('b.wild.example.com'), 3), [200, 200, 200]);
  });

  it('without trusted proxies, x-forwarded-for, x-real-ip or x-envoy-external-address from the client make no new client', async () => {
    await gw.get('a.wild.example.com'); // the one request of this client's window, unless an earlier test took it
    for (const h of <Array<Record<string, string>>>[{ 'x-forwarded-for': '198.51.100.7' }, { 'x-real-ip': '198.51.100.8' }, { 'x-envoy-external-address': '198.51.100.9' }, { 'x-forwarded-for': '198.51.100.10, 198.51.100.11' }]) {
      assert.equal((await gw.get('a.wild.example.com', '/', h)).status, 429, JSON.stringify(h));
    }
  });

  it('a reload that leaves a limit unchanged keeps its count; changing the limit starts it over', async () => {
    const version = gw.gw.holder.current()!.version;
    await gw.write('extra.yaml', policyYaml('extra', '{kind: VirtualService, name: api}', '{key: {clientIp: {}}, requests: 100, interval: 1h}'));
    await eventually(async () => gw.gw.holder.current()!.version > version);
    assert.equal((await gw.get('product.example.com', '/')).status, 429, 'still refused after the reload');

    const again = gw.gw.holder.current()!.version;
    await gw.write('per-client.yaml', policyYaml('per-client', '{kind: VirtualService, name: product, route: main}', '{key: {clientIp: {}}, requests: 4, interval: 1h}'));
    await eventually(async () => gw.gw.holder.current()!.version > again);
    const r = await gw.get('product.example.com', '/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-ratelimit-limit'], '4');
    assert.equal(r.headers['x-ratelimit-remaining'], '3');
    const stats = gw.gw.rateLimitStats();
    assert.equal(stats.errors, 0);
    assert.equal(stats.redis, undefined);
  });

  it('the admin port lists the rules in force and the counts', async () => {
    const r = await send(gw.gw.adminPort, 'localhost', '/rate_limits');
    const body = r.json<{ allowed: number; limited: number; errors: number; rules: Array<{ id: string; requests: number; store: string }> }>();
    assert.deepEqual(body.rules.map((x) => [x.id, x.requests, x.store]).sort(), [
      ['default/extra[0]', 100, 'memory'], ['default/one-host[0]', 1, 'memory'], ['default/per-client[0]', 4, 'memory'], ['default/per-key[0]', 2, 'memory'],
    ]);
    assert.ok(body.allowed > 0 && body.limited > 0 && body.errors === 0, JSON.stringify(body));
  });

  it('the access log line of a refused request has flag RL and names the limit', async () => {
    await gw.gw.close(); // flushes the access log
    const lines = (await readFile(join(logDir, 'access.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const refused = lines.find((l) => l.request_id === 'rl-5');
    assert.ok(refused, 'line of the refused request');
    assert.equal(refused.response_code, 429);
    assert.equal(refused.response_flags, 'RL');
    assert.equal(refused.response_code_details, 'local_rate_limited{default/per-client[0]}');
    assert.equal(refused.route_name, 'main');
    assert.equal(refused.upstream_host, null);
    const allowed = lines.find((l) => l.request_id === 'rl-0');
    assert.equal(allowed?.response_flags, '-');
  });
});

describe('rate limiting by client address behind trusted proxies (--trusted-proxies 1)', () => {
  let up: Upstream;
  let gw: TestGateway;

  before(async () => {
    up = await startUpstream('app');
    gw = await startTestGateway(
      {
        'gateway.yaml': gatewayYaml(['app.example.com']),
        'services.yaml': serviceYaml('app', [{ pod: 'app-1', port: up.port }]),
        'vs.yaml': `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app, namespace: default}\nspec:\n  hosts: [app.example.com]\n  gateways: [gw]\n  http:\n  - route: [{destination: {host: app}}]\n`,
        'policy.yaml': policyYaml('per-ip', '{kind: VirtualService, name: app}', '{key: {clientIp: {}}, requests: 1, interval: 1h}'),
      },
      { gateway: { trustedProxies: 1 } },
    );
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  it('counts the rightmost x-forwarded-for address, whatever the client wrote to its left', async () => {
    const from = (xff?: string) => () => gw.get('app.example.com', '/', xff ? { 'x-forwarded-for': xff } : {});
    assert.deepEqual(await statuses(from('198.51.100.1'), 1), [200]);
    assert.deepEqual(await statuses(from('203.0.113.50, 198.51.100.1'), 1), [429], 'a spoofed left entry changes nothing');
    assert.deepEqual(await statuses(from('198.51.100.1, 198.51.100.2'), 2), [200, 429]);
    // Without the header (or with fewer entries than trusted proxies) the peer itself is the client.
    assert.deepEqual(await statuses(from(), 2), [200, 429]);
  });
});

describe('rate limiting by the client certificate identity (principal)', () => {
  let up: Upstream;
  let gw: RunningGateway;
  let dir: string;
  const root = issueCertificate({ subjectCN: 'rl test root', isCA: true, issuer: 'self', days: 1 });
  const clientRoot = issueCertificate({ subjectCN: 'rl client root', isCA: true, issuer: 'self', days: 1 });
  const client = (sa: string) => issueCertificate({ subjectCN: sa, uris: [`spiffe://cluster.local/ns/default/sa/${sa}`], issuer: clientRoot, days: 1, extKeyUsage: ['clientAuth'] });

  before(async () => {
    up = await startUpstream('app');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-rl-mtls-'));
    const cred = join(dir, 'certs', 'mtls-cert');
    await mkdir(cred, { recursive: true });
    const server = issueCertificate({ subjectCN: 'mtls.example.com', dnsNames: ['mtls.example.com'], issuer: root, days: 1 });
    await writeFile(join(cred, 'tls.crt'), server.certPem);
    await writeFile(join(cred, 'tls.key'), server.keyPem, { mode: 0o600 });
    await writeFile(join(cred, 'ca.crt'), clientRoot.certPem);
    await writeFile(join(dir, 'config.yaml'), `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [mtls.example.com]
    tls: {mode: OPTIONAL_MUTUAL, credentialName: mtls-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [mtls.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: app}}]
---
${policyYaml('per-identity', '{kind: Gateway, name: gw}', '{key: {principal: {}}, requests: 1, interval: 1h}')}---
${serviceYaml('app', [{ pod: 'app-1', port: up.port }])}`);
    gw = await startGateway({ configDir: dir, certsDir: join(dir, 'certs'), ports: new Map([[443, 0]]), listenHost: '127.0.0.1', statusPort: 0, adminPort: 0, accessLog: 'off', logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    await gw.destroy();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (cert?: { certPem: string; keyPem: string }): Promise<number> => {
    const dispatcher = new Agent({ connect: { servername: 'mtls.example.com', ca: root.certPem, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) } });
    try {
      const r = await request(`https://127.0.0.1:${gw.listenPorts.get(443)}/`, { headers: { host: 'mtls.example.com' }, dispatcher });
      await r.body.dump();
      return r.statusCode;
    } finally {
      await dispatcher.close();
    }
  };

  it('counts each verified SPIFFE identity on its own; a client without a certificate is not counted', async () => {
    const alice = client('alice');
    const bob = client('bob');
    assert.deepEqual([await get(alice), await get(alice)], [200, 429]);
    assert.deepEqual([await get(bob), await get(bob)], [200, 429]);
    assert.deepEqual([await get(), await get()], [200, 200]);
  });
});
