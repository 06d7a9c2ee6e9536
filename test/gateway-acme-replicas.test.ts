// ACME with two replicas of one gateway behind one address, against a real ACME server (Debian's
// pebble) and the Kubernetes API stand-in, each replica with its own API client, as two pods:
// - one replica (the holder of the ACME Lease) places the order; pebble's HTTP-01 validation is sent
//   to the OTHER replica, which answers from the Secret the orderer published the token in; one
//   certificate is issued, and both replicas serve it from the Secret without a restart;
// - the orderer dies mid-order (cut off from the API server, gone without giving the Lease up): its
//   validation still succeeds, but its order is not finalized (it no longer orders); once the Lease
//   has run out the other replica takes it, clears what the dead one left, orders, and serves.
// Pebble's validation goes to a TCP gate the test steers, so it knows the order is in flight and
// decides which replica answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { startGateway, type RunningGateway } from '../src/gateway/main.js';
import { KubeSource } from '../src/core/sources/kube-source.js';
import { KubeSecrets } from '../src/core/sources/kube-secrets.js';
import { AcmeElection, ACME_ELECTION } from '../src/gateway/acme/acme-election.js';
import { CHALLENGE_SECRET } from '../src/gateway/acme/secret-challenges.js';
import { DEFAULT_GATEWAY_SERVICE_ACCOUNT } from '../src/core/model/gateway-names.js';
import { startPebble } from './helpers/pebble.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { startTcpGate } from './helpers/tcp-gate.js';
import { eventually } from './helpers/gateway.js';
import { rawExchange } from './helpers/raw-http.js';
import { certificateYaml, gatewayYaml, issuerYaml } from './helpers/cert-manager-yaml.js';
import { deployObjects, uncoveredCalls } from './helpers/rbac.js';

const logger = process.env.DEBUG_LOG ? pino({ level: 'debug' }, pino.destination(2)) : pino({ level: 'silent' });
const BACKOFF = { initialMs: 50, maxMs: 400 };
/**
 * Short, so that the takeover after a death is seconds away, not istiod's 30 s; not so short that a
 * loaded machine's slow answer (a try's request may take up to its period) moves the Lease.
 */
const LEASE = { leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 500 };

interface Replica {
  readonly identity: string;
  readonly token: string;
  readonly gw: RunningGateway;
  readonly httpPort: number;
  readonly httpsPort: number;
}

async function startReplica(api: KubeApiStandIn, identity: string, acmeCa: string, certsDir: string): Promise<Replica> {
  const { kubeconfig, token } = api.clientKubeconfig();
  const gw = await startGateway({
    source: new KubeSource({ kubeconfig, debounceMs: 20, backoff: BACKOFF, logger }),
    secrets: new KubeSecrets({ kubeconfig, namespace: 'istio-system', logger, backoff: BACKOFF }),
    acmeElection: new AcmeElection({ kubeconfig, namespace: 'istio-system', identity, logger, timing: LEASE }),
    certsDir,
    acmeCa,
    ports: new Map([[80, 0], [443, 0]]),
    listenHost: '127.0.0.1',
    statusPort: 0,
    adminPort: 0,
    accessLog: 'off',
    logger,
  });
  return { identity, token, gw, httpPort: gw.listenPorts.get(80)!, httpsPort: gw.listenPorts.get(443)! };
}

/** The certificate a replica serves for `host`. */
function served(r: Replica, host: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: r.httpsPort, servername: host, rejectUnauthorized: false }, () => {
      const raw = s.getPeerCertificate().raw;
      s.destroy();
      resolve(new X509Certificate(raw));
    });
    s.once('error', reject);
  });
}


test('two gateway replicas: one orders, the other answers the validation; when the orderer dies mid-order the other completes it', async (t) => {
  const gate = await startTcpGate();
  t.after(() => gate.close());
  const pebble = await startPebble(t, { httpPort: gate.port });
  if (!pebble) return;
  t.after(() => pebble.close());
  const api = await startKubeApi();
  t.after(() => api.close());
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-acme-replicas-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  api.applyYaml(issuerYaml(pebble.directoryUrl));
  api.applyYaml(certificateYaml('shop-tls', ['shop.example.test']));
  api.applyYaml(gatewayYaml('shop-tls', 'shop.example.test'));

  const replicas = [
    await startReplica(api, 'gateway-a', pebble.caPem, join(dir, 'a')),
    await startReplica(api, 'gateway-b', pebble.caPem, join(dir, 'b')),
  ];
  t.after(() => Promise.all(replicas.map((r) => r.gw.destroy())));
  const lease = () => api.get('coordination.k8s.io/v1', 'Lease', 'istio-system', ACME_ELECTION)?.spec?.holderIdentity as string | undefined;
  const board = () => Object.fromEntries(Object.entries((api.get('v1', 'Secret', 'istio-system', CHALLENGE_SECRET)?.data ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
  const metaOf = (secret: string) => JSON.parse(api.get('v1', 'Secret', 'istio-system', secret)?.metadata?.annotations?.['meshgate.io/acme'] ?? '{}') as { source?: string; orderer?: string };
  const issuedBy = async (r: Replica, host: string) => /pebble/i.test((await served(r, host).catch(() => undefined))?.issuer ?? '');

  // Pebble's validation request has come: the order is in flight. Whoever holds the Lease ordered.
  await gate.arrivals(1);
  const orderer = replicas.find((r) => r.identity === lease())!;
  const other = replicas.find((r) => r !== orderer)!;
  assert.ok(orderer, 'a replica holds the ACME Lease');
  const published = Object.values(board()).map((v) => JSON.parse(v) as { by: string });
  assert.deepEqual(published.map((p) => p.by), [orderer.identity], 'the token was in the Secret before the ACME server was told to validate');

  // The replica that did not order answers the validation.
  gate.forwardTo(other.httpPort);
  await api.until(() => metaOf('shop-tls').source === 'acme', 'the certificate written to Secret shop-tls', 20_000);
  // Pebble validates from more than one perspective, as Let's Encrypt does: each request got the answer.
  assert.ok(gate.answers.length > 0 && gate.answers.every((a) => a === 'HTTP/1.1 200 OK'), `${other.identity} answered every validation request: ${gate.answers.join(', ')}`);
  assert.equal(metaOf('shop-tls').orderer, orderer.identity, 'the orderer is recorded with the certificate');
  // Both serve it: the one that did not order picks the Secret up from its watch, without a restart.
  await eventually(async () => (await issuedBy(orderer, 'shop.example.test')) && (await issuedBy(other, 'shop.example.test')), 20_000);
  assert.equal((await served(orderer, 'shop.example.test')).serialNumber, (await served(other, 'shop.example.test')).serialNumber, 'the same certificate');
  await api.until(() => Object.keys(board()).length === 0, 'the token withdrawn after the order');
  const writes = (r: Replica) => api.requests.filter((q) => q.authorization === `Bearer ${r.token}` && ['POST', 'PUT'].includes(q.method) && q.path.includes('/secrets'));
  assert.deepEqual(writes(other), [], `${other.identity} wrote no Secret: it did not order`);
  assert.deepEqual(pebbleCounts(pebble.output()), { ordersPlaced: 1, finalized: 1, issued: 1 }, 'one order placed, by one replica');
  const unknown = await rawExchange(other.httpPort, `GET /.well-known/acme-challenge/${'x'.repeat(43)} HTTP/1.1\r\nHost: shop.example.test\r\nConnection: close\r\n\r\n`);
  assert.notEqual(unknown.status, 200, 'a token no order published: looked up again, then not answered');

  // The next certificate: the orderer takes it on, and dies while pebble's validation waits.
  gate.hold();
  const before = gate.arrived;
  const answered = gate.answers.length;
  api.applyYaml(certificateYaml('cart-tls', ['cart.example.test']));
  api.applyYaml(gatewayYaml('cart-tls', 'cart.example.test', { name: 'cart' }));
  await gate.arrivals(before + 1);
  assert.equal(lease(), orderer.identity);
  api.refuseToken(orderer.token, true);
  await orderer.gw.destroy(); // its Lease cannot be given up: the API server refuses it now
  assert.equal(lease(), orderer.identity, 'the dead orderer still holds the Lease');
  assert.deepEqual(Object.values(board()).map((v) => (JSON.parse(v) as { by: string }).by), [orderer.identity], 'its token is published');
  // Its validation goes through (the other replica answers from the Secret): the dead replica's
  // order could be finalized now, and must not be.
  gate.forwardTo(other.httpPort);

  await api.until(() => metaOf('cart-tls').source === 'acme', 'the other replica completes the order once the Lease has run out', 20_000);
  assert.equal(lease(), other.identity);
  assert.equal(metaOf('cart-tls').orderer, other.identity);
  await eventually(() => issuedBy(other, 'cart.example.test'), 20_000);
  assert.equal(gate.answers[answered], 'HTTP/1.1 200 OK', 'the dead orderer\'s validation was answered');
  await api.until(() => Object.keys(board()).length === 0, 'the dead orderer\'s token and the new one withdrawn');
  assert.deepEqual(pebbleCounts(pebble.output()), { ordersPlaced: 3, finalized: 2, issued: 2 }, 'the dead orderer\'s order left unfinished, the new orderer\'s placed and finalized');
  assert.ok(await issuedBy(other, 'shop.example.test'), 'the first certificate still served, not ordered again');

  const objects = await deployObjects();
  assert.deepEqual(uncoveredCalls(objects, { namespace: 'istio-system', name: DEFAULT_GATEWAY_SERVICE_ACCOUNT }, api.requests.filter((q) => q.status !== 401)), [], 'calls the replicas made that the gateway\'s RBAC does not allow');
});

/** What pebble's log says it did: new orders (`POST /order-plz`), finalizations, certificates issued. */
function pebbleCounts(output: string): { ordersPlaced: number; finalized: number; issued: number } {
  const lines = output.split('\n');
  const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
  return { ordersPlaced: count(/POST \/order-plz\b/), finalized: count(/POST \/finalize-order\//), issued: count(/Issued certificate serial/) };
}
