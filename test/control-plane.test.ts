// Integration: the control plane on 127.0.0.1 over real TLS, a gateway subscribed to it through
// ControlPlaneSource, and the CA endpoint. Versions, acknowledgements and refusals are read from the
// loopback debug port's /debug/proxies the way an operator would; nothing waits on a clock.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { request } from 'undici';
import { validateAll } from '../src/core/config/validate.js';
import type { Resource } from '../src/core/model/resource.js';
import { loadOrCreateAuthority, type CertificateAuthority } from '../src/core/pki/authority.js';
import { createWorkloadCsr } from '../src/core/pki/csr.js';
import { IdentityClient } from '../src/core/pki/identity-client.js';
import { spiffeIdsOfCertificate } from '../src/core/pki/spiffe.js';
import { ControlPlaneClient } from '../src/core/sources/control-plane-client.js';
import { ControlPlaneSource } from '../src/core/sources/control-plane-source.js';
import { decodeResources, type ProxyDescription, type StreamMessage } from '../src/core/sources/control-plane-wire.js';
import type { ProxyStatus } from '../src/control/proxy-registry.js';
import { startControlPlane, type RunningControlPlane } from '../src/control/main.js';
import { FileTokenAuthenticator, bearerToken, parseTokenFile } from '../src/control/token-authenticator.js';
import { startGateway, type RunningGateway } from '../src/gateway/main.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { eventually, send } from './helpers/gateway.js';
import { seededRandom } from './helpers/random.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const GATEWAY_TOKEN = 'gateway-token-0123456789';
const REVIEWS_TOKEN = 'reviews-token-0123456789';
const TOKENS = `- {token: ${GATEWAY_TOKEN}, namespace: istio-system, serviceAccount: ingress}
- {token: ${REVIEWS_TOKEN}, namespace: shop, serviceAccount: reviews}
`;
const GATEWAY_ID = 'spiffe://cluster.local/ns/istio-system/sa/ingress';
const REVIEWS_ID = 'spiffe://cluster.local/ns/shop/sa/reviews';
const silent = pino({ level: 'silent' });

const route = (service: string, weight = '') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app}
spec:
  hosts: [app.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: ${service}}${weight}}]
`;

/** A folder, a CA folder and a token file, and a control plane on them that can be stopped and started again. */
class Fixture {
  cp!: RunningControlPlane;
  ca!: CertificateAuthority;
  port = 0;
  /** When set, the control plane passes VirtualService `app` whatever it holds, as an older control plane might. */
  lax = false;
  readonly clients: ControlPlaneClient[] = [];

  private constructor(readonly dir: string, readonly configDir: string, readonly caDir: string, readonly tokensFile: string) {}

  static async create(files: Record<string, string>): Promise<Fixture> {
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-cp-'));
    const f = new Fixture(dir, join(dir, 'config'), join(dir, 'ca'), join(dir, 'tokens.yaml'));
    await import('node:fs/promises').then((fs) => fs.mkdir(f.configDir));
    for (const [name, text] of Object.entries(files)) await f.write(name, text);
    await writeFile(f.tokensFile, TOKENS);
    await f.start();
    return f;
  }

  async start(): Promise<void> {
    const authority = loadOrCreateAuthority(this.caDir);
    assert.ok(authority.ok, authority.ok ? '' : authority.message);
    this.ca = authority.ca;
    const tokens = await FileTokenAuthenticator.load(this.tokensFile);
    assert.ok(tokens.ok);
    this.cp = await startControlPlane({
      configDir: this.configDir,
      ca: this.ca,
      authenticator: tokens.authenticator,
      port: this.port,
      statusPort: 0,
      debugPort: 0,
      listenHost: '127.0.0.1',
      debounceMs: 10,
      validate: (rs: readonly Resource[]) => {
        const strict = validateAll(rs);
        return this.lax ? { valid: rs.filter((r) => r.metadata.name === 'app' || strict.valid.includes(r)), problems: [] } : strict;
      },
      logger: silent,
    });
    this.port = this.cp.port;
  }

  write(name: string, text: string): Promise<void> {
    return writeFile(join(this.configDir, name), text);
  }

  client(token = GATEWAY_TOKEN, rootCertPem = this.ca.rootCertPem): ControlPlaneClient {
    const c = new ControlPlaneClient({ url: `https://127.0.0.1:${this.port}`, rootCertPem, token });
    this.clients.push(c);
    return c;
  }

  async proxies(): Promise<ProxyStatus[]> {
    const r = await request(`http://127.0.0.1:${this.cp.debugPort}/debug/proxies`);
    assert.equal(r.statusCode, 200);
    return (await r.body.json()) as ProxyStatus[];
  }

  async proxy(id: string): Promise<ProxyStatus | undefined> {
    return (await this.proxies()).find((p) => p.id === id);
  }

  /** The version `id` was last sent, once it has acknowledged it. */
  async converged(id: string): Promise<string> {
    let version = '';
    await eventually(async () => {
      const p = await this.proxy(id);
      version = p?.sentVersion ?? '';
      return p?.connected === true && p.sentVersion !== null && p.acknowledgedVersion === p.sentVersion;
    });
    return version;
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.close();
    await this.cp.destroy();
    await rm(this.dir, { recursive: true, force: true });
  }
}

const GATEWAY: ProxyDescription = { role: 'gateway', labels: { istio: 'ingressgateway' } };

/** Reads one stream until `count` messages arrived. */
function firstMessages(client: ControlPlaneClient, proxyId: string, count: number, description: ProxyDescription = GATEWAY): Promise<StreamMessage[]> {
  return new Promise((resolve, reject) => {
    const got: StreamMessage[] = [];
    const s = client.openStream(proxyId, {
      onMessage: (m) => {
        if (m.type === 'heartbeat') return;
        got.push(m);
        if (got.length === count) {
          s.close();
          resolve(got);
        }
      },
      onEnd: reject,
    }, description);
  });
}

function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) }), lines };
}

describe('control plane: configuration stream', () => {
  let a: Upstream, b: Upstream;
  let f: Fixture;
  let gw: RunningGateway;
  let source: ControlPlaneSource;
  const get = async (): Promise<string> => (await send(gw.listenPorts.get(80)!, 'app.example.com', '/')).json().name as string;

  before(async () => {
    a = await startUpstream('a');
    b = await startUpstream('b');
    f = await Fixture.create({
      'gw.yaml': gatewayYaml(['app.example.com']),
      'svc.yaml': serviceYaml('svc-a', [{ pod: 'a-1', port: a.port }]) + '---\n' + serviceYaml('svc-b', [{ pod: 'b-1', port: b.port }]),
      'vs.yaml': route('svc-a'),
      'broken.yaml': route('svc-a', ', weight: -1').replace('name: app', 'name: broken'),
    });
  });

  after(async () => {
    await gw?.destroy();
    await f?.close();
    await a?.close();
    await b?.close();
  });

  it('is ready once the first set is loaded', async () => {
    const r = await request(`http://127.0.0.1:${f.cp.statusPort}/healthz/ready`);
    await r.body.dump();
    assert.equal(r.statusCode, 200);
  });

  it('sends a subscriber the validated set at once, each resource with its file and lines', async () => {
    const [hello, config] = await firstMessages(f.client(), 'reader-1', 2);
    assert.equal(hello?.type, 'hello');
    assert.equal(hello.type === 'hello' && hello.identity, GATEWAY_ID);
    assert.ok(config?.type === 'config');
    assert.equal(config.version, (await f.proxy('reader-1'))?.sentVersion);
    const { resources, problems } = decodeResources(config.resources);
    assert.deepEqual(problems, []);
    const names = resources.map((r) => `${r.kind}/${r.metadata.name}`);
    assert.ok(names.includes('VirtualService/app') && names.includes('Gateway/gw') && names.includes('Service/svc-b'), names.join(' '));
    // It did not validate at the control plane, so no proxy ever sees it.
    assert.ok(!names.includes('VirtualService/broken'));
    const vs = resources.find((r) => r.kind === 'VirtualService')!;
    assert.equal(vs.origin.file, join(f.configDir, 'vs.yaml'));
    assert.equal(vs.origin.line, 1);
    assert.equal(vs.origin.lineOf(['spec', 'http', 0, 'route', 0, 'destination', 'host']), 8);
    assert.equal(vs.origin.lineOf(['spec', 'hosts']), 5);
  });

  it('feeds a gateway; an edit in the folder arrives as a new version and is acknowledged', async () => {
    source = new ControlPlaneSource({ client: f.client(), proxyId: 'gw-1', description: GATEWAY, backoff: { initialMs: 20, maxMs: 200 }, random: seededRandom(1) });
    gw = await startGateway({ source, ports: new Map([[80, 0]]), listenHost: '127.0.0.1', statusPort: 0, adminPort: 0, accessLog: 'off', logger: silent });
    assert.equal(await get(), 'a');
    const first = await f.converged('gw-1');
    const listed = (await f.proxy('gw-1'))!;
    assert.equal(listed.identity, GATEWAY_ID);
    assert.equal(listed.connected, true);
    assert.equal(listed.sentVersion, first);

    await f.write('vs.yaml', route('svc-b'));
    await eventually(async () => (await get()) === 'b');
    const second = await f.converged('gw-1');
    assert.notEqual(second, first);
  });

  it('a version the proxy refuses leaves its snapshot serving and is listed as rejected, with file:line', async () => {
    const serving = gw.holder.current()!.version;
    const accepted = await f.converged('gw-1');
    f.lax = true;
    await f.write('vs.yaml', route('svc-a', ', weight: -1'));
    await eventually(async () => ((await f.proxy('gw-1'))?.sentVersion ?? accepted) !== accepted);
    const refused = (await f.proxy('gw-1'))!.sentVersion;
    await eventually(async () => (await f.proxy('gw-1'))?.rejectedVersion === refused);
    const listed = (await f.proxy('gw-1'))!;
    assert.equal(listed.acknowledgedVersion, accepted);
    assert.match(listed.rejectedBecause.join('\n'), new RegExp(`${join(f.configDir, 'vs.yaml').replace(/[.]/g, '\\.')}:8 VirtualService default/app spec\\.http\\[0\\]\\.route\\[0\\]\\.weight`));
    assert.equal(gw.holder.current()!.version, serving);
    assert.equal(await get(), 'b');

    f.lax = false;
    await f.write('vs.yaml', route('svc-a'));
    await eventually(async () => (await get()) === 'a');
  });

  it('keeps serving while the control plane is down, and resubscribes when it is back on the same port and CA', async () => {
    const before = await f.converged('gw-1');
    const global = f.cp.version();
    const serving = gw.holder.current()!.version;
    await f.cp.close();
    assert.equal(await get(), 'a');
    assert.equal(gw.holder.current()!.version, serving);

    await f.start();
    // The same content is the same version: acknowledged again, not rebuilt.
    assert.equal(f.cp.version(), global);
    assert.equal(await f.converged('gw-1'), before);
    assert.equal(gw.holder.current()!.version, serving);

    await f.write('vs.yaml', route('svc-b'));
    await eventually(async () => (await get()) === 'b');
    assert.notEqual(await f.converged('gw-1'), before);
  });

  it('refuses an acknowledgement for a proxy that subscribed as someone else', async () => {
    await assert.rejects(f.client(REVIEWS_TOKEN).ack({ proxy: 'gw-1', version: 'x', accepted: true }), /403/);
  });

  it('does not let another identity take over the id of a connected proxy', async () => {
    const end = await new Promise<Error>((resolve) => f.client(REVIEWS_TOKEN).openStream('gw-1', { onMessage: () => undefined, onEnd: resolve }));
    assert.match(end.message, /409/);
    assert.equal((await f.proxy('gw-1'))?.identity, GATEWAY_ID);
  });
});

describe('control plane: certificates and authentication', () => {
  let f: Fixture;
  let other: CertificateAuthority;
  let otherDir: string;

  before(async () => {
    f = await Fixture.create({ 'gw.yaml': gatewayYaml(['app.example.com']) });
    otherDir = await mkdtemp(join(tmpdir(), 'meshgate-other-ca-'));
    const o = loadOrCreateAuthority(otherDir);
    assert.ok(o.ok);
    other = o.ca;
  });

  after(async () => {
    await f?.close();
    await rm(otherDir, { recursive: true, force: true });
  });

  it("signs for the token's identity even when the CSR asks for another; the chain runs leaf to root", async () => {
    const keyFile = join(f.dir, 'key.pem');
    await writeFile(keyFile, createWorkloadCsr().keyPem);
    const csr = execFileSync('openssl', ['req', '-new', '-key', keyFile, '-subj', '/CN=admin', '-addext', 'subjectAltName=URI:spiffe://cluster.local/ns/kube-system/sa/admin'], { encoding: 'utf8' });
    const chain = await f.client(REVIEWS_TOKEN).requestCertificate(csr, 3600);
    const certs = chain.map((pem) => new X509Certificate(pem));
    assert.deepEqual(spiffeIdsOfCertificate(certs[0]!), [REVIEWS_ID]);
    const root = new X509Certificate(f.ca.rootCertPem);
    assert.ok(certs.at(-1)!.raw.equals(root.raw), 'the last element is the root');
    assert.ok(certs[0]!.verify(certs[1]!.publicKey));
  });

  it('serves IdentityClient: a proxy gets its workload certificate through the client', async () => {
    const client = f.client(GATEWAY_TOKEN);
    const identity = new IdentityClient({ requestCertificate: client.requestCertificate, rootCertPem: f.ca.rootCertPem, keyType: 'ec' });
    try {
      await identity.start();
      assert.equal(identity.current().spiffeId, GATEWAY_ID);
    } finally {
      identity.close();
    }
  });

  it('answers 401 to an unknown or missing token, on every path', async () => {
    const stranger = f.client('not-a-token');
    await assert.rejects(stranger.requestCertificate(createWorkloadCsr({ keyType: 'ec' }).csrPem, 3600), /401/);
    const streamEnd = await new Promise<Error>((resolve) => stranger.openStream('p', { onMessage: () => undefined, onEnd: resolve }));
    assert.match(streamEnd.message, /401/);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest(`https://127.0.0.1:${f.port}/v1/certificates`, { ca: f.ca.rootCertPem, method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 401);
  });

  it('lists proxies on its loopback debug port only: a valid token gets nothing on the proxies port', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest(`https://127.0.0.1:${f.port}/v1/proxies`, { ca: f.ca.rootCertPem, headers: { authorization: `Bearer ${REVIEWS_TOKEN}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 404);
    // Every other port on 127.0.0.2; the debug port stays on 127.0.0.1.
    const tokens = await FileTokenAuthenticator.load(f.tokensFile);
    assert.ok(tokens.ok);
    const cp = await startControlPlane({ configDir: f.configDir, ca: f.ca, authenticator: tokens.authenticator, port: 0, statusPort: 0, debugPort: 0, listenHost: '127.0.0.2', logger: silent });
    try {
      const listed = await request(`http://127.0.0.1:${cp.debugPort}/debug/proxies`);
      assert.equal(listed.statusCode, 200);
      assert.ok(Array.isArray(await listed.body.json()));
      await assert.rejects(request(`http://127.0.0.2:${cp.debugPort}/debug/proxies`), /ECONNREFUSED/);
      const ready = await request(`http://127.0.0.2:${cp.statusPort}/healthz/ready`);
      await ready.body.dump();
      assert.equal(ready.statusCode, 200);
    } finally {
      await cp.destroy();
    }
  });

  it('picks up a token added to the token file', async () => {
    const late = f.client('late-token-0123456789');
    const ask = () => late.requestCertificate(createWorkloadCsr({ keyType: 'ec' }).csrPem, 3600);
    await assert.rejects(ask(), /401/);
    await writeFile(f.tokensFile, `${TOKENS}- {token: late-token-0123456789, namespace: shop, serviceAccount: late}\n`);
    await eventually(async () => Array.isArray(await ask().catch(() => undefined)));
  });

  it('the client refuses a control plane whose certificate does not chain to its root', async () => {
    const mistrusting = f.client(GATEWAY_TOKEN, other.rootCertPem);
    await assert.rejects(mistrusting.requestCertificate(createWorkloadCsr({ keyType: 'ec' }).csrPem, 3600), /not trusted/);
    const { logger, lines } = capture();
    const source = new ControlPlaneSource({ client: mistrusting, proxyId: 'mistrusting', logger, backoff: { initialMs: 20, maxMs: 100 } });
    let updates = 0;
    const started = source.start(() => updates++);
    await eventually(async () => lines.some((l) => /not trusted/.test(l)));
    await source.close();
    await assert.rejects(started, /closed before the first configuration/);
    assert.equal(updates, 0);
    assert.equal(await f.proxy('mistrusting'), undefined);
  });
});

describe('token file', () => {
  it('skips bad entries, refuses a token given to two identities, and fails on a file that is not a list', () => {
    const r = parseTokenFile(
      `- {token: a, namespace: shop, serviceAccount: x}
- {token: b, namespace: shop}
- {token: c, namespace: 'no/slash', serviceAccount: x}
- {token: d, namespace: shop, serviceAccount: one}
- {token: d, namespace: shop, serviceAccount: two}
- {token: a, namespace: shop, serviceAccount: x}
`,
      'tokens.yaml',
    );
    assert.ok(r.ok);
    assert.deepEqual(r.entries.map((e) => e.caller), [{ namespace: 'shop', serviceAccount: 'x' }]);
    assert.equal(r.problems.length, 3);
    assert.match(r.problems.join('\n'), /entry 1 needs namespace and serviceAccount/);
    assert.match(r.problems.join('\n'), /entry 4 repeats a token already given to shop\/one/);
    const bad = parseTokenFile('token: a\n', 'tokens.yaml');
    assert.ok(!bad.ok && /must be a YAML list/.test(bad.message));
  });

  it('reads the bearer token of an authorization header', () => {
    assert.equal(bearerToken('Bearer abc.def'), 'abc.def');
    assert.equal(bearerToken('bearer  abc'), 'abc');
    assert.equal(bearerToken('Basic abc'), undefined);
    assert.equal(bearerToken('Bearer a b'), undefined);
    assert.equal(bearerToken(undefined), undefined);
  });
});

describe('control plane client: heartbeats', () => {
  it('gives up on a stream that falls silent and subscribes again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-hb-'));
    const auth = loadOrCreateAuthority(dir);
    assert.ok(auth.ok);
    const tls = auth.ca.issueServerCertificate(['127.0.0.1']);
    let subscriptions = 0;
    // A control plane that says hello, sends one set, then never writes again (a half-dead connection).
    const server = createHttpsServer({ cert: tls.certChainPem, key: tls.keyPem }, (req, res) => {
      subscriptions++;
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(`${JSON.stringify({ type: 'hello', proxy: 'p', identity: GATEWAY_ID, heartbeatMs: 20 })}\n`);
      res.write(`${JSON.stringify({ type: 'config', version: 'v1', resources: [] })}\n`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = new ControlPlaneClient({ url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, rootCertPem: auth.ca.rootCertPem, token: 't' });
    const source = new ControlPlaneSource({ client, proxyId: 'p', backoff: { initialMs: 10, maxMs: 50 } });
    let updates = 0;
    try {
      await source.start(() => updates++);
      await eventually(async () => subscriptions >= 3);
      // Every subscription repeated version v1: built once.
      assert.equal(updates, 1);
    } finally {
      await source.close();
      client.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
