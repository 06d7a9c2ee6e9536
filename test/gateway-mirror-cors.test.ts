// Integration: traffic mirroring and CORS through a real gateway on loopback. Mirrored copies reach
// the mirror with its Host unchanged (Istio ≥ 1.28) while a dead or hanging mirror changes nothing for the client;
// CORS preflights are answered by the gateway and actual responses carry the CORS headers.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closedPort, startUpstream, type Upstream } from './helpers/upstream.js';
import { chunked, eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';

const M = 'm.example.com';
const C = 'c.example.com';

const ROUTES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mirror}
spec:
  hosts: [${M}]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /mirrored}}]
    mirror: {host: shadow}
    route: [{destination: {host: main}}]
  - match: [{uri: {prefix: /half}}]
    mirrors: [{destination: {host: shadow-half}, percentage: {value: 50}}]
    route: [{destination: {host: main}}]
  - match: [{uri: {prefix: /dead-mirror}}]
    mirror: {host: dead}
    route: [{destination: {host: main}}]
  - match: [{uri: {prefix: /hanging-mirror}}]
    mirror: {host: hang}
    route: [{destination: {host: main}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cors}
spec:
  hosts: [${C}]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /ignore}}]
    corsPolicy:
      allowOrigins: [{exact: "https://app.example.com"}]
      unmatchedPreflights: IGNORE
    route: [{destination: {host: main}}]
  - match: [{uri: {prefix: /dead}}]
    corsPolicy: {allowOrigins: [{exact: "https://app.example.com"}]}
    route: [{destination: {host: dead}}]
  - match: [{uri: {prefix: /own-cors}}]
    corsPolicy: {allowOrigins: [{exact: "https://app.example.com"}]}
    route: [{destination: {host: own-cors}}]
  - corsPolicy:
      allowOrigins: [{exact: "https://app.example.com"}, {regex: "https://[a-z]+\\\\.trusted\\\\.org"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-token, content-type]
      exposeHeaders: [x-total]
      maxAge: 1h
      allowCredentials: true
    route: [{destination: {host: main}}]
`;

describe('gateway mirroring and CORS', () => {
  let main: Upstream, shadow: Upstream, shadowHalf: Upstream, hang: Upstream, ownCors: Upstream;
  let gw: TestGateway;

  before(async () => {
    main = await startUpstream('main');
    shadow = await startUpstream('shadow');
    shadowHalf = await startUpstream('shadow-half');
    hang = await startUpstream('hang', () => true);
    ownCors = await startUpstream('own-cors', (_req, res) => {
      res.writeHead(200, { 'access-control-allow-origin': '*', 'content-length': '2' });
      res.end('ok');
      return true;
    });
    const dead = await closedPort();
    gw = await startTestGateway({
      'gateway.yaml': gatewayYaml([M, C]),
      'services.yaml': [
        serviceYaml('main', [{ pod: 'main-1', port: main.port }]),
        serviceYaml('shadow', [{ pod: 'shadow-1', port: shadow.port }]),
        serviceYaml('shadow-half', [{ pod: 'shadow-half-1', port: shadowHalf.port }]),
        serviceYaml('hang', [{ pod: 'hang-1', port: hang.port }]),
        serviceYaml('dead', [{ pod: 'dead-1', port: dead }]),
        serviceYaml('own-cors', [{ pod: 'own-cors-1', port: ownCors.port }]),
      ].join('---\n'),
      'vs.yaml': ROUTES,
    });
  });

  after(async () => {
    await gw?.close();
    await Promise.all([main, shadow, shadowHalf, hang, ownCors].map((u) => u?.close()));
  });

  const seenWithId = (u: Upstream, id: string) => u.seen.filter((e) => e.headers['x-request-id'] === id);

  /** Waits until an upstream has seen no new request for a while (mirrors are fire-and-forget). */
  async function settled(u: Upstream): Promise<number> {
    let last = -1;
    await eventually(async () => {
      const now = u.seen.length;
      const same = now === last;
      last = now;
      await new Promise((r) => setTimeout(r, 50));
      return same && u.seen.length === now;
    });
    return u.seen.length;
  }

  describe('mirroring', () => {
    it('copies the request to the mirror with its Host unchanged, and the client gets the main answer', async () => {
      const r = await gw.get(M, '/mirrored/a?q=1', { 'x-request-id': 'mirror-1', 'x-custom': 'yes' });
      assert.equal(r.status, 200);
      assert.equal(r.json().name, 'main');
      await eventually(async () => seenWithId(shadow, 'mirror-1').length === 1);
      const copy = seenWithId(shadow, 'mirror-1')[0]!;
      assert.equal(copy.url, '/mirrored/a?q=1');
      assert.equal(copy.headers.host, M);
      assert.equal(copy.headers['x-custom'], 'yes');
      assert.equal(seenWithId(main, 'mirror-1')[0]?.headers.host, M);
    });

    it('mirrors a small body; a body too large to buffer is not mirrored', async () => {
      const small = await gw.get(M, '/mirrored', { 'x-request-id': 'mirror-small', 'content-type': 'text/plain' }, 'POST', 'hello mirror');
      assert.equal(small.status, 200);
      await eventually(async () => seenWithId(shadow, 'mirror-small').length === 1);
      assert.equal(seenWithId(shadow, 'mirror-small')[0]?.bodyBytes, 12);

      const large = await gw.get(M, '/mirrored', { 'x-request-id': 'mirror-large', 'content-type': 'application/octet-stream' }, 'POST', Buffer.alloc(200 * 1024, 7));
      assert.equal(large.status, 200);
      assert.equal(large.json().bodyBytes, 200 * 1024);
      // A later mirrored request arriving proves the large one was skipped, not merely late.
      await gw.get(M, '/mirrored', { 'x-request-id': 'mirror-after' });
      await eventually(async () => seenWithId(shadow, 'mirror-after').length === 1);
      await settled(shadow);
      assert.equal(seenWithId(shadow, 'mirror-large').length, 0);
    });

    it('mirrors a small body sent without Content-Length, once it has been read whole', async () => {
      const small = await gw.get(M, '/mirrored', { 'x-request-id': 'mirror-chunked' }, 'POST', chunked('hello chunks'));
      assert.equal(small.status, 200);
      await eventually(async () => seenWithId(shadow, 'mirror-chunked').length === 1);
      assert.equal(seenWithId(shadow, 'mirror-chunked')[0]?.bodyBytes, 12);

      const large = await gw.get(M, '/mirrored', { 'x-request-id': 'mirror-chunked-large' }, 'POST', chunked(Buffer.alloc(200 * 1024, 7)));
      assert.equal(large.json().bodyBytes, 200 * 1024);
      await gw.get(M, '/mirrored', { 'x-request-id': 'mirror-chunked-after' });
      await eventually(async () => seenWithId(shadow, 'mirror-chunked-after').length === 1);
      await settled(shadow);
      assert.equal(seenWithId(shadow, 'mirror-chunked-large').length, 0);
    });

    it('mirrors the configured share of requests', async () => {
      for (let i = 0; i < 400; i++) assert.equal((await gw.get(M, '/half')).status, 200);
      const mirrored = await settled(shadowHalf);
      assert.ok(Math.abs(mirrored / 400 - 0.5) <= 0.07, `mirrored ${mirrored} of 400`);
    });

    it('a dead mirror changes nothing for the client', async () => {
      for (let i = 0; i < 30; i++) {
        const r = await gw.get(M, '/dead-mirror', {}, 'POST', 'body');
        assert.equal(r.status, 200);
        assert.equal(r.json().bodyBytes, 4);
      }
    });

    it('a mirror that never answers changes nothing for the client', async () => {
      for (let i = 0; i < 30; i++) assert.equal((await gw.get(M, '/hanging-mirror')).status, 200);
      assert.ok(hang.seen.length > 0);
    });
  });

  describe('CORS', () => {
    const preflight = (origin: string, extra: Record<string, string> = {}) => ({ origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-token', ...extra });

    it('answers a preflight from an allowed origin itself', async () => {
      const r = await gw.get(C, '/api', preflight('https://app.example.com', { 'x-request-id': 'pf-1' }), 'OPTIONS');
      assert.equal(r.status, 200);
      assert.equal(r.text, '');
      assert.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
      assert.equal(r.headers['access-control-allow-methods'], 'GET,POST');
      assert.equal(r.headers['access-control-allow-headers'], 'x-token,content-type');
      assert.equal(r.headers['access-control-max-age'], '3600');
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
      assert.equal(seenWithId(main, 'pf-1').length, 0);
    });

    it('matches origins by regex', async () => {
      const r = await gw.get(C, '/api', preflight('https://shop.trusted.org'), 'OPTIONS');
      assert.equal(r.headers['access-control-allow-origin'], 'https://shop.trusted.org');
    });

    it('forwards a preflight from an origin not allowed (unmatchedPreflights FORWARD), without CORS headers', async () => {
      const r = await gw.get(C, '/api', preflight('https://evil.example.net', { 'x-request-id': 'pf-evil' }), 'OPTIONS');
      assert.equal(r.status, 200);
      assert.equal(r.json().method, 'OPTIONS');
      assert.equal(r.headers['access-control-allow-origin'], undefined);
      assert.equal(seenWithId(main, 'pf-evil').length, 1);
    });

    it('unmatchedPreflights IGNORE answers 200 without CORS headers and does not forward', async () => {
      const r = await gw.get(C, '/ignore', preflight('https://evil.example.net', { 'x-request-id': 'pf-ignore' }), 'OPTIONS');
      assert.equal(r.status, 200);
      assert.equal(r.text, '');
      assert.equal(r.headers['access-control-allow-origin'], undefined);
      assert.equal(seenWithId(main, 'pf-ignore').length, 0);
    });

    it('adds CORS headers to the actual response for an allowed origin only', async () => {
      const ok = await gw.get(C, '/api', { origin: 'https://app.example.com' });
      assert.equal(ok.status, 200);
      assert.equal(ok.json().name, 'main');
      assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com');
      assert.equal(ok.headers['access-control-allow-credentials'], 'true');
      assert.equal(ok.headers['access-control-expose-headers'], 'x-total');
      assert.equal(ok.headers['access-control-allow-methods'], undefined);

      const other = await gw.get(C, '/api', { origin: 'https://evil.example.net' });
      assert.equal(other.status, 200);
      assert.equal(other.headers['access-control-allow-origin'], undefined);
      const none = await gw.get(C, '/api');
      assert.equal(none.headers['access-control-allow-origin'], undefined);
    });

    it('overrides the upstream\'s own Access-Control-Allow-Origin', async () => {
      const r = await gw.get(C, '/own-cors', { origin: 'https://app.example.com' });
      assert.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
    });

    it('adds CORS headers to local replies too', async () => {
      const r = await gw.get(C, '/dead', { origin: 'https://app.example.com' });
      assert.equal(r.status, 503);
      assert.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
    });
  });
});
