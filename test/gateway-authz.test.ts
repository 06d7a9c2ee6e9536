// Integration: AuthorizationPolicy enforced at the gateway, selected by the gateway's own labels and
// namespace exactly as at a sidecar (root-namespace policies apply everywhere). A DENY on `/admin*`
// for `istio: ingressgateway` answers 403 `RBAC: access denied` and the upstream never sees the
// request, whatever an AUDIT policy matching everything says; ALLOW-only policies deny what they do
// not name; `remoteIpBlocks` reads the client behind --trusted-proxies from x-forwarded-for and
// `ipBlocks` the connection's peer. A dry-run policy changes no answer and logs what it would have
// decided.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { join } from 'node:path';
import { completeJsonLines, eventually, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayTopologyYaml, gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { h2Request, rawExchange } from './helpers/raw-http.js';
import { connect } from 'node:http2';

const ROUTES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [app.example.com, other.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: app}}]
`;

function policy(name: string, ns: string, body: string): string {
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: ${ns}}
spec:
${body.trim().split('\n').map((l) => `  ${l}`).join('\n')}
`;
}

async function cluster(files: Record<string, string>, gateway: Record<string, unknown> = {}, accessLog?: string): Promise<{ up: Upstream; gw: TestGateway }> {
  const up = await startUpstream('app');
  const gw = await startTestGateway(
    {
      'gateway.yaml': gatewayYaml(['app.example.com', 'other.example.com']),
      'services.yaml': serviceYaml('app', [{ pod: 'app-1', port: up.port }]),
      'routes.yaml': ROUTES,
      ...files,
    },
    { gateway, ...(accessLog ? { accessLog } : {}) },
  );
  return { up, gw };
}

describe('gateway: DENY /admin* selecting istio: ingressgateway', () => {
  let up: Upstream;
  let gw: TestGateway;
  let logDir: string;
  before(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'meshgate-authz-log-'));
    ({ up, gw } = await cluster(
      {
        'deny-admin.yaml': policy('deny-admin', 'istio-system', `
selector: {matchLabels: {istio: ingressgateway}}
action: DENY
rules:
- to: [{operation: {paths: ["/admin*"]}}]`),
        // Not the gateway's: another namespace, another workload's labels.
        'elsewhere.yaml': policy('deny-all-default', 'default', 'selector: {matchLabels: {istio: ingressgateway}}\naction: DENY\nrules: [{}]'),
        'other-workload.yaml': policy('deny-egress', 'istio-system', 'selector: {matchLabels: {istio: egressgateway}}\naction: DENY\nrules: [{}]'),
        // AUDIT matches every request and decides nothing: what DENY denies stays denied, the rest passes.
        'audit-all.yaml': policy('audit-all', 'istio-system', 'selector: {matchLabels: {istio: ingressgateway}}\naction: AUDIT\nrules: [{}]'),
      },
      {},
      join(logDir, 'access.log'),
    ));
  });
  after(async () => {
    await gw.close();
    await up.close();
    await rm(logDir, { recursive: true, force: true });
  });

  it('GET /admin is 403 RBAC: access denied, and never reaches the upstream', async () => {
    const before = up.seen.length;
    for (const path of ['/admin', '/admin/users', '/admin?x=1', '/./admin', '/public/../admin']) {
      const r = await gw.get('app.example.com', path);
      assert.equal(r.status, 403, path);
      assert.equal(r.text, 'RBAC: access denied');
    }
    assert.equal(up.seen.length, before);
  });

  it('other paths pass; an AUDIT policy decides nothing, and policies of other namespaces and workloads do not apply', async () => {
    const r = await gw.get('app.example.com', '/user');
    assert.equal(r.status, 200);
    assert.equal(r.json().url, '/user');
  });

  it('the access log names the error code and the deciding policy', async () => {
    await gw.get('app.example.com', '/admin/log-check');
    let line = '';
    await eventually(async () => {
      const found = completeJsonLines(await readFile(join(logDir, 'access.log'), 'utf8').catch(() => '')).find((l) => String(l.path).includes('/admin/log-check'));
      line = found ? JSON.stringify(found) : '';
      return found !== undefined;
    });
    assert.match(line, /rbac_access_denied_matched_policy\[AuthorizationPolicy istio-system\/deny-admin\]/);
    assert.match(line, /403/);
    assert.equal(JSON.parse(line).meshgate_error_code, 'MESHGATE_ERR_RBAC_DENIED');
  });

  it('a policy written while serving applies to the next requests', async () => {
    await gw.write('deny-post.yaml', policy('deny-post', 'istio-system', 'action: DENY\nrules: [{to: [{operation: {methods: [POST]}}]}]'));
    await eventually(async () => (await gw.get('app.example.com', '/user', {}, 'POST', 'x')).status === 403);
    assert.equal((await gw.get('app.example.com', '/user')).status, 200);
  });
});

// Istio's tasks select the ingress gateway by `app: istio-ingressgateway` (the Ingress Access Control
// task, for one): a gateway started without labels carries Istio's ingress gateway labels, so such a
// DENY is enforced rather than silently skipped; one selecting a label it lacks is not its.
describe("gateway with startGateway's default labels: DENY selecting app: istio-ingressgateway", () => {
  let up: Upstream;
  let gw: TestGateway;
  before(async () => {
    ({ up, gw } = await cluster({
      'deny-by-app.yaml': policy('deny-by-app', 'istio-system', 'selector: {matchLabels: {app: istio-ingressgateway}}\naction: DENY\nrules: [{to: [{operation: {paths: ["/by-app*"]}}]}]'),
      'deny-by-version.yaml': policy('deny-by-version', 'istio-system', 'selector: {matchLabels: {app: istio-ingressgateway, version: v2}}\naction: DENY\nrules: [{}]'),
    }));
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  it('denies what the policy selecting app: istio-ingressgateway names, 403 RBAC: access denied', async () => {
    const before = up.seen.length;
    const r = await gw.get('app.example.com', '/by-app/1');
    assert.equal(r.status, 403);
    assert.equal(r.text, 'RBAC: access denied');
    assert.equal(up.seen.length, before);
  });

  it('a policy also selecting version: v2, a label the gateway lacks, does not apply', async () => {
    assert.equal((await gw.get('app.example.com', '/user')).status, 200);
  });
});

describe('gateway: ALLOW-only semantics', () => {
  let up: Upstream;
  let gw: TestGateway;
  before(async () => {
    ({ up, gw } = await cluster({
      'allow.yaml': policy('allow-public', 'istio-system', `
selector: {matchLabels: {istio: ingressgateway}}
rules:
- to: [{operation: {paths: ["/public/*"], methods: [GET], hosts: [app.example.com]}}]
- to: [{operation: {paths: ["/api/*"]}}]
  when: [{key: "request.headers[x-api-key]", values: ["k-*"]}]
- from: [{source: {ipBlocks: ["10.0.0.0/8"]}}]`),
    }));
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  it('what a rule names is allowed', async () => {
    assert.equal((await gw.get('app.example.com', '/public/a')).status, 200);
    assert.equal((await gw.get('app.example.com', '/api/x', { 'x-api-key': 'k-123' })).status, 200);
  });

  it('everything else is denied: another path, method, host, a missing header, a peer outside ipBlocks', async () => {
    assert.equal((await gw.get('app.example.com', '/private')).status, 403);
    assert.equal((await gw.get('app.example.com', '/public/a', {}, 'POST', 'x')).status, 403);
    assert.equal((await gw.get('other.example.com', '/public/a')).status, 403);
    assert.equal((await gw.get('app.example.com', '/api/x')).status, 403);
    assert.equal((await gw.get('app.example.com', '/api/x', { 'x-api-key': 'nope' })).status, 403);
    // /public/* does not match /public itself (Istio's semantics: a prefix with the slash).
    assert.equal((await gw.get('app.example.com', '/public')).status, 403);
  });

  it('a request for an unknown route is denied before routing (403, not 404)', async () => {
    assert.equal((await gw.get('nowhere.example.com', '/private')).status, 403);
  });
});

describe('gateway: a DENY on hosts holds for every spelling of the host the routes accept', () => {
  let up: Upstream;
  let gw: TestGateway;
  before(async () => {
    ({ up, gw } = await cluster({
      'deny-other.yaml': policy('deny-other', 'istio-system', `
selector: {matchLabels: {istio: ingressgateway}}
action: DENY
rules:
- to: [{operation: {hosts: [other.example.com]}}]`),
    }));
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  it('a trailing dot routes to the same virtual host, so it is denied too, and never reaches the upstream', async () => {
    const before = up.seen.length;
    for (const host of ['other.example.com', 'other.example.com.', 'OTHER.Example.com.']) {
      assert.equal((await gw.get(host, '/')).status, 403, host);
    }
    assert.equal(up.seen.length, before);
    const r = await gw.get('app.example.com.', '/');
    assert.equal(r.status, 200);
    assert.equal(up.seen.at(-1)?.headers.host, 'app.example.com', 'the upstream gets the host without the dot');
  });

  it('two trailing dots: one is dropped, as Envoy drops one, and the name left matches no route (404), over HTTP/1 and HTTP/2', async () => {
    // The route lookup used to drop a second dot, so `other.example.com..` was routed to other.example.com
    // while the DENY on hosts saw `other.example.com.` and did not apply.
    const before = up.seen.length;
    for (const host of ['other.example.com..', 'other.example.com..:80', 'app.example.com..']) {
      const r = await rawExchange(gw.port, `GET / HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
      assert.equal(r.status, 404, host);
    }
    const h2 = connect(`http://127.0.0.1:${gw.port}`);
    try {
      assert.equal((await h2Request(h2, { ':path': '/', ':authority': 'other.example.com..' })).status, 404);
    } finally {
      h2.destroy();
    }
    assert.equal(up.seen.length, before);
  });
});

describe('gateway: a policy file cut short keeps its DENY policies', () => {
  let up: Upstream;
  let gw: TestGateway;
  const denyPaths = (name: string, path: string): string => policy(name, 'istio-system', `
selector: {matchLabels: {istio: ingressgateway}}
action: DENY
rules:
- to: [{operation: {paths: ["${path}"]}}]`);
  const full = `${denyPaths('deny-a', '/a')}---\n${denyPaths('deny-admin', '/admin')}`;
  before(async () => {
    ({ up, gw } = await cluster({ 'policies.yaml': full }));
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  it('a file cut inside its first policy (still YAML, now invalid) keeps both policies until it is whole again', async () => {
    assert.equal((await gw.get('app.example.com', '/admin')).status, 403);
    // Cut where a writer might pause: the first document ends mid-rule, the second is gone.
    await gw.write('policies.yaml', full.slice(0, full.indexOf('rules:') + 'rules:\n- t'.length));
    await eventually(async () => /policies\.yaml.*deny-admin.*cut short/.test((await send(gw.gw.adminPort, 'localhost', '/problems')).text));
    assert.equal((await gw.get('app.example.com', '/admin')).status, 403);
    assert.equal((await gw.get('app.example.com', '/a')).status, 403);
    // Whole and valid again, without deny-admin: the removal applies.
    await gw.write('policies.yaml', denyPaths('deny-a', '/a'));
    await eventually(async () => (await gw.get('app.example.com', '/admin')).status === 200);
    assert.equal((await gw.get('app.example.com', '/a')).status, 403);
  });
});

describe('gateway: remoteIpBlocks behind --trusted-proxies, ipBlocks on the peer', () => {
  const files = {
    'deny-net.yaml': policy('deny-net', 'istio-system', `
action: DENY
rules:
- from: [{source: {remoteIpBlocks: ["203.0.113.0/24"]}}]
- from: [{source: {ipBlocks: ["192.0.2.0/24"]}}]`),
    'ports.yaml': policy('deny-port', 'istio-system', 'action: DENY\nrules: [{to: [{operation: {ports: ["1"]}}]}]'),
  };
  let one: { up: Upstream; gw: TestGateway };
  let none: { up: Upstream; gw: TestGateway };
  before(async () => {
    one = await cluster(files, { trustedProxies: 1 });
    none = await cluster(files);
  });
  after(async () => {
    for (const c of [one, none]) {
      await c.gw.close();
      await c.up.close();
    }
  });

  it('one trusted proxy: the rightmost x-forwarded-for entry is the client', async () => {
    assert.equal((await one.gw.get('app.example.com', '/', { 'x-forwarded-for': '203.0.113.9' })).status, 403);
    assert.equal((await one.gw.get('app.example.com', '/', { 'x-forwarded-for': '203.0.113.9, 198.51.100.1' })).status, 200);
    assert.equal((await one.gw.get('app.example.com', '/', { 'x-forwarded-for': '198.51.100.1, 203.0.113.9' })).status, 403);
    assert.equal((await one.gw.get('app.example.com', '/')).status, 200);
  });

  it('no trusted proxy: x-forwarded-for is the client talking and proves nothing', async () => {
    assert.equal((await none.gw.get('app.example.com', '/', { 'x-forwarded-for': '203.0.113.9' })).status, 200);
  });

  it('ipBlocks read the connection peer, never x-forwarded-for', async () => {
    assert.equal((await one.gw.get('app.example.com', '/', { 'x-forwarded-for': '192.0.2.7' })).status, 200);
  });
});

describe('gateway: numTrustedProxies from the mesh config (defaultConfig.gatewayTopology), as istioctl install sets it', () => {
  const files = {
    'deny-net.yaml': policy('deny-net', 'istio-system', 'action: DENY\nrules:\n- from: [{source: {remoteIpBlocks: ["203.0.113.0/24"]}}]'),
    'mesh.yaml': gatewayTopologyYaml(2),
  };
  let mesh: { up: Upstream; gw: TestGateway };
  let own: { up: Upstream; gw: TestGateway };
  before(async () => {
    mesh = await cluster(files);
    own = await cluster(files, { trustedProxies: 0 });
  });
  after(async () => {
    for (const c of [mesh, own]) {
      await c.gw.close();
      await c.up.close();
    }
  });

  it('two trusted proxies: the second x-forwarded-for entry from the right is the client', async () => {
    assert.equal((await mesh.gw.get('app.example.com', '/', { 'x-forwarded-for': '203.0.113.9, 198.51.100.1' })).status, 403);
    assert.equal((await mesh.gw.get('app.example.com', '/', { 'x-forwarded-for': '203.0.113.9, 198.51.100.1, 198.51.100.2' })).status, 200);
  });

  it("the gateway's own --trusted-proxies wins over the mesh config, as the pod annotation does in Istio", async () => {
    assert.equal((await own.gw.get('app.example.com', '/', { 'x-forwarded-for': '203.0.113.9, 198.51.100.1' })).status, 200);
  });
});

describe("gateway: a dry-run policy (istio.io/dry-run, Istio's dry-run task) logs what it would decide and enforces nothing", () => {
  let up: Upstream;
  let gw: TestGateway;
  const lines: Array<Record<string, unknown>> = [];
  before(async () => {
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    ({ up, gw } = await cluster(
      {
        'dry-run.yaml': policy('deny-path-headers', 'istio-system', `
selector: {matchLabels: {istio: ingressgateway}}
action: DENY
rules:
- to: [{operation: {paths: ["/headers"]}}]
`).replace('namespace: istio-system}', 'namespace: istio-system, annotations: {"istio.io/dry-run": "true"}}'),
      },
      { logger: pino({ level: 'info' }, stream) },
    ));
  });
  after(async () => {
    await gw?.close();
    await up?.close();
  });

  /** GETs `path` (it must pass: 200) and gives the log line of its dry-run evaluation. */
  async function passesAndLogs(path: string, requestId: string): Promise<Record<string, unknown>> {
    const r = await gw.get('app.example.com', path, { 'x-request-id': requestId });
    assert.equal(r.status, 200);
    await eventually(async () => lines.some((l) => l.requestId === requestId));
    return lines.find((l) => l.requestId === requestId)!;
  }

  it('/headers passes (200), and the log says the DENY would have denied it, naming the rule', async () => {
    const shadow = await passesAndLogs('/headers', 'dry-1');
    assert.equal(shadow.msg, 'rbac shadow denied, matched policy ns[istio-system]-policy[deny-path-headers]-rule[0]');
    assert.equal(shadow.authz_dry_run_action, 'deny');
    assert.equal(shadow.authz_dry_run_result, 'denied');
  });

  it('another path: the DENY would have allowed it', async () => {
    const shadow = await passesAndLogs('/ip', 'dry-2');
    assert.equal(shadow.authz_dry_run_result, 'allowed');
    assert.equal(shadow.policy, undefined);
  });
});
