// Security regressions from a probe of the gateway's edge that the fuzz and request-target tests do
// not cover, each compared with what Istio's Envoy does: HTTP/2 header values carrying CR, LF or NUL
// never reach the upstream; HTTP/2 `:path` values that are not origin-form are refused; a denied
// request with `Expect: 100-continue` is 403 and its body never forwarded; trailing `/` and `.` on a
// denied path; characters Envoy escapes in a path reach the upstream escaped.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HOST, targetGatewayForSuite } from './helpers/target-config.js';
import { h2Request, rawExchange } from './helpers/raw-http.js';
import { connect } from 'node:http2';
import { Flag, FrameType, frame, headerBlock, RawH2 } from './helpers/h2-frames.js';

describe('edge probes at the gateway (DENY on /private and /private/*)', () => {
  const suite = targetGatewayForSuite();

  /** One h2c request of raw header fields; what the upstream saw of it, and whether the stream was reset. */
  const h2 = async (fields: ReadonlyArray<readonly [string, string]>): Promise<{ reset: boolean; seen: typeof suite.app.seen }> => {
    const n = suite.app.seen.length;
    const c = await RawH2.open(suite.target.plain);
    try {
      c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, headerBlock(fields)));
      await c.until(() => c.on(1).some((f) => f.type === FrameType.RST_STREAM || (f.flags & Flag.END_STREAM) !== 0));
      return { reset: c.on(1).some((f) => f.type === FrameType.RST_STREAM), seen: suite.app.seen.slice(n) };
    } finally {
      c.close();
    }
  };
  const request = (path: string, authority = HOST): Array<[string, string]> => [[':method', 'GET'], [':scheme', 'http'], [':path', path], [':authority', authority]];

  it('HTTP/2 header values with CR, LF or NUL: never forwarded as such (Envoy resets the stream; node:http2 drops the field)', async () => {
    for (const value of ['a\r\nx-injected: 1', 'a\rb', 'a\nb', 'a\0b']) {
      const r = await h2([...request('/ok'), ['x-a', value]]);
      for (const e of r.seen) {
        assert.equal(e.headers['x-injected'], undefined, JSON.stringify(value));
        assert.ok(!/[\r\n\0]/.test(String(e.headers['x-a'] ?? '')), JSON.stringify(value));
      }
    }
  });

  it('HTTP/2 :path not in origin-form (absolute, relative, empty, with a space) is refused, never routed on its authority', async () => {
    for (const path of [`http://${HOST}/private`, 'http://other.example.com/ok', 'private', '', '/ok x']) {
      const r = await h2(request(path));
      assert.equal(r.reset, true, JSON.stringify(path));
      assert.deepEqual(r.seen, [], JSON.stringify(path));
    }
  });

  it('Expect: 100-continue on a denied path: 403, and the body is never forwarded', async () => {
    const n = suite.app.seen.length;
    const r = await rawExchange(suite.target.plain, `POST /private HTTP/1.1\r\nhost: ${HOST}\r\nexpect: 100-continue\r\ncontent-length: 5\r\nconnection: close\r\n\r\n`, { more: 'hello' });
    assert.match(r.text, /HTTP\/1\.1 403 /);
    assert.equal(suite.app.seen.length, n);
  });

  it('an Expect other than 100-continue goes through the pipeline, as Envoy passes it on: 403 on a denied path, over HTTP/1 and HTTP/2', async () => {
    // node:http and node:http2 answer it 417 themselves, before any request handler: no policy, no access log line, no x-request-id.
    const n = suite.app.seen.length;
    const r = await rawExchange(suite.target.plain, `POST /private HTTP/1.1\r\nhost: ${HOST}\r\nexpect: 200-ok\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello`);
    assert.equal(r.status, 403, r.text);
    assert.match(r.text, /\r\nx-request-id: /);
    const session = connect(`http://127.0.0.1:${suite.target.plain}`);
    try {
      assert.equal((await h2Request(session, { ':path': '/private', ':authority': HOST, expect: '200-ok' })).status, 403);
    } finally {
      session.destroy();
    }
    assert.equal(suite.app.seen.length, n);
  });

  it('a trailing `/`, `/.` or `/./` is still the denied path; `.` and `..` glued to it are other names, as in Envoy', async () => {
    const get = (p: string) => rawExchange(suite.target.plain, `GET ${p} HTTP/1.1\r\nhost: ${HOST}\r\nconnection: close\r\n\r\n`);
    for (const p of ['/private/', '/private/.', '/private/./', '/private/x/..']) assert.equal((await get(p)).status, 403, p);
    const n = suite.app.seen.length;
    for (const p of ['/private.', '/private..']) assert.equal((await get(p)).status, 200, p);
    assert.deepEqual(suite.app.seen.slice(n).map((e) => e.url), ['/private.', '/private..']);
  });

  it('characters Envoy escapes in a path reach the upstream escaped: `"` over HTTP/1, non-ASCII bytes over HTTP/2', async () => {
    const n = suite.app.seen.length;
    assert.equal((await rawExchange(suite.target.plain, `GET /a"b HTTP/1.1\r\nhost: ${HOST}\r\nconnection: close\r\n\r\n`)).status, 200);
    await h2(request('/priv\u00e9te'));
    assert.deepEqual(suite.app.seen.slice(n).map((e) => e.url), ['/a%22b', '/priv%E9te']);
  });
});
