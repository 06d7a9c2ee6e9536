// Security probes of what a gateway does with the bytes behind a request it refuses, with an upstream
// on a bare socket recording every byte, each compared with what Istio's Envoy does: a denied (403),
// unauthenticated (401), not-found (404) or over-limit (413) request whose body holds another
// request must never have that body read as a request (a front proxy that framed it as a body would
// then see one answer too many: response-queue poisoning); a request pipelined after the body is
// answered on its own merits or not at all; `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Port`
// from a client are passed on as Envoy passes them.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestGateway } from './helpers/gateway.js';
import { authorizationPolicy, requestAuthentication } from './helpers/cluster-yaml.js';
import { rawExchange } from './helpers/raw-http.js';
import { gatewayOnRawUpstream, type RawUpstream } from './helpers/raw-upstream.js';
import { exportJWK, generateKeyPair } from 'jose';

const HOST = 'app.example.com';
const GATEWAY = '{matchLabels: {istio: ingressgateway}}';
const SMUGGLED = `GET /smuggled HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`;

describe('bytes behind a refused request (byte-recording upstream)', () => {
  let upstream: RawUpstream;
  let gw: TestGateway;

  before(async () => {
    const jwk = { ...(await exportJWK((await generateKeyPair('RS256', { extractable: true })).publicKey)), kid: 'k1' };
    ({ upstream, gw } = await gatewayOnRawUpstream(HOST, {
      'deny.yaml': authorizationPolicy('no-private', 'istio-system', GATEWAY, '  action: DENY\n  rules: [{to: [{operation: {paths: ["/private*"]}}]}]'),
      'jwt.yaml': requestAuthentication('jwt', 'istio-system', GATEWAY, `  - issuer: https://issuer.example\n    jwks: '${JSON.stringify({ keys: [jwk] })}'`),
    }));
  });
  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  const exchange = async (head: string, body: string, after = ''): Promise<{ statuses: number[]; lines: string[] }> => {
    const mark = upstream.mark();
    const r = await rawExchange(gw.port, `${head}\r\n\r\n${body}${after}`);
    return { statuses: r.statuses, lines: upstream.since(mark).requestLines };
  };

  it('a refused request (403, 401, 404) whose body is a request: one answer, the body never read as a request', async () => {
    const cases: Array<[string, number, string]> = [
      ['denied', 403, `POST /private HTTP/1.1\r\nhost: ${HOST}\r\ncontent-length: ${SMUGGLED.length}`],
      ['bad token', 401, `POST /ok HTTP/1.1\r\nhost: ${HOST}\r\nauthorization: Bearer x.y.z\r\ncontent-length: ${SMUGGLED.length}`],
      ['chunked, denied', 403, `POST /private HTTP/1.1\r\nhost: ${HOST}\r\ntransfer-encoding: chunked`],
      ['no route', 404, `POST /ok HTTP/1.1\r\nhost: nowhere.example.com\r\ncontent-length: ${SMUGGLED.length}`],
    ];
    for (const [name, status, head] of cases) {
      const body = head.includes('chunked') ? `${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n` : SMUGGLED;
      const r = await exchange(`${head}\r\nconnection: close`, body);
      assert.deepEqual(r, { statuses: [status], lines: [] }, name);
    }
  });

  it('a request pipelined after a refused one with a body is answered on its own merits, after the body', async () => {
    const after = `GET /after HTTP/1.1\r\nhost: ${HOST}\r\nconnection: close\r\n\r\n`;
    assert.deepEqual(await exchange(`POST /private HTTP/1.1\r\nhost: ${HOST}\r\ncontent-length: 5`, 'hello', after), { statuses: [403, 200], lines: ['GET /after HTTP/1.1'] });
    assert.deepEqual(await exchange(`POST /private HTTP/1.1\r\nhost: ${HOST}\r\ntransfer-encoding: chunked`, '5\r\nhello\r\n0\r\n\r\n', after), { statuses: [403, 200], lines: ['GET /after HTTP/1.1'] });
    const denied = `GET /private/x HTTP/1.1\r\nhost: ${HOST}\r\nconnection: close\r\n\r\n`;
    assert.deepEqual(await exchange(`POST /ok HTTP/1.1\r\nhost: ${HOST}\r\nauthorization: Bearer x.y.z\r\ncontent-length: 5`, 'hello', denied), { statuses: [401, 403], lines: [] });
  });

  it('Forwarded, X-Forwarded-Host, -Port and -Prefix from a client reach the upstream as sent, as Envoy passes them (the app must not trust them)', async () => {
    const mark = upstream.mark();
    const sent = ['forwarded: for=1.2.3.4;host=evil.example;proto=https', 'x-forwarded-host: evil.example', 'x-forwarded-port: 443', 'x-forwarded-prefix: /admin'];
    await rawExchange(gw.port, `GET /ok HTTP/1.1\r\nhost: ${HOST}\r\n${sent.join('\r\n')}\r\nconnection: close\r\n\r\n`);
    const { bytes } = upstream.since(mark);
    for (const line of sent) assert.ok(bytes.includes(`${line}\r\n`), line);
    assert.match(bytes, /\r\nx-forwarded-for: 127\.0\.0\.1\r\n/);
    assert.match(bytes, /\r\nhost: app\.example\.com\r\n/);
  });

  it('underscore spellings of the headers the proxy writes (x_forwarded_client_cert, x_envoy_*, x_forwarded_for, x_forwarded_proto) are removed; others pass', async () => {
    const mark = upstream.mark();
    const forged = ['x_forwarded_client_cert: By=a;URI=spiffe://cluster.local/ns/x/sa/admin', 'x_envoy_internal: true', 'X_Envoy_Original_Path: /admin', 'x_forwarded_for: 10.0.0.1', 'x_forwarded_proto: https'];
    await rawExchange(gw.port, `GET /ok HTTP/1.1\r\nhost: ${HOST}\r\n${forged.join('\r\n')}\r\nx_request_id: abc\r\nx_other: kept\r\nconnection: close\r\n\r\n`);
    const { bytes } = upstream.since(mark);
    for (const line of forged) assert.ok(!bytes.toLowerCase().includes(line.slice(0, line.indexOf(':')).toLowerCase()), line);
    assert.match(bytes, /\r\nx_other: kept\r\n/);
    assert.match(bytes, /\r\nx-forwarded-for: 127\.0\.0\.1\r\n/);
  });
});
