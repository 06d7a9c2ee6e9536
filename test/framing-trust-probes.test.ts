// Security probes of how a gateway frames what it forwards, with an upstream on a bare socket that
// records every byte, each compared with what Istio's Envoy does: a `Connection` header naming the
// framing headers themselves (`content-length`, `transfer-encoding`) must not unframe the body it
// forwards; request trailers (which could carry x-forwarded-client-cert or x-envoy-* past the header
// sanitizing) are not forwarded; and an Upgrade the upstream refuses (no 101) never turns the client's
// connection into a tunnel through which a later, denied request reaches the upstream unchecked.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestGateway } from './helpers/gateway.js';
import { authorizationPolicy } from './helpers/cluster-yaml.js';
import { openSocket, rawExchange, readUntilClosed } from './helpers/raw-http.js';
import { gatewayOnRawUpstream, type RawUpstream } from './helpers/raw-upstream.js';

const HOST = 'app.example.com';

describe('framing and trust of what a gateway forwards (byte-recording upstream)', () => {
  let upstream: RawUpstream;
  let gw: TestGateway;

  before(async () => {
    ({ upstream, gw } = await gatewayOnRawUpstream(HOST, {
      'deny.yaml': authorizationPolicy('no-private', 'istio-system', '{matchLabels: {istio: ingressgateway}}', '  action: DENY\n  rules: [{to: [{operation: {paths: ["/private*"]}}]}]'),
    }));
  });
  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it('Connection naming content-length or transfer-encoding: the body still reaches the upstream framed, once, and a request after it stays a request', async () => {
    for (const [hop, framing, body] of [
      ['content-length', 'content-length: 5', 'hello'],
      ['transfer-encoding', 'transfer-encoding: chunked', '5\r\nhello\r\n0\r\n\r\n'],
    ] as const) {
      const mark = upstream.mark();
      const r = await rawExchange(
        gw.port,
        `POST /a HTTP/1.1\r\nhost: ${HOST}\r\n${framing}\r\nconnection: ${hop}\r\n\r\n${body}GET /private HTTP/1.1\r\nhost: ${HOST}\r\nconnection: close\r\n\r\n`,
      );
      assert.deepEqual(r.statuses, [200, 403], hop);
      const seen = upstream.since(mark);
      assert.deepEqual(seen.requestLines, ['POST /a HTTP/1.1'], hop);
      // Framed one way or the other, the five bytes arrive as the body and nothing follows them.
      assert.match(seen.bytes, /\r\n\r\n(hello|5\r\nhello\r\n0\r\n\r\n)$/, hop);
    }
  });

  it('request trailers are not forwarded: proxy-only headers cannot ride in them past the sanitizing', async () => {
    const mark = upstream.mark();
    const r = await rawExchange(
      gw.port,
      `POST /a HTTP/1.1\r\nhost: ${HOST}\r\ntransfer-encoding: chunked\r\ntrailer: x-forwarded-client-cert\r\nconnection: close\r\n\r\n` +
        '5\r\nhello\r\n0\r\nx-forwarded-client-cert: By=spiffe://cluster.local/ns/admin/sa/admin\r\nx-envoy-internal: true\r\n\r\n',
    );
    assert.equal(r.status, 200);
    const seen = upstream.since(mark).bytes;
    assert.doesNotMatch(seen, /x-forwarded-client-cert|x-envoy-internal|spiffe/i);
  });

  it('an Upgrade the upstream answers without 101: no tunnel; a denied request sent after it never reaches the upstream', async () => {
    const socket = await openSocket(gw.port);
    const answer = readUntilClosed(socket);
    const mark = upstream.mark();
    socket.write(`GET /a HTTP/1.1\r\nhost: ${HOST}\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n`);
    socket.write(`GET /private HTTP/1.1\r\nhost: ${HOST}\r\nconnection: close\r\n\r\n`);
    const r = await answer;
    assert.equal(r.status, 200);
    assert.ok(!r.statuses.includes(101));
    assert.deepEqual(upstream.since(mark).requestLines, ['GET /a HTTP/1.1']);
  });
});
