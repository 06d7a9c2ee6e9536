// The fuzz test's requests and properties (fast-check, fixed seed, bounded runs), for every listener
// that serves HTTP: malformed HTTP/1 requests as raw bytes over real sockets, plaintext and TLS, and
// odd HTTP/2 requests (headers and pseudo-headers node:http2 lets through), against a recording
// upstream. Whatever is sent:
//   - the proxy does not crash, and still answers a plain request afterwards;
//   - nothing reaches the upstream that the client did not send: every upstream request carries a
//     header only the proxy sets (a request smuggled inside a body would reach the upstream with
//     none of the proxy's headers), and there are never more of them than requests the client sent;
//   - no policy bypass: a denied path (/admin, /admin/*, /user/admin, /private, /private/*) never
//     reaches the upstream, whatever its encoding (percent-encoding, `..`, `//`, `#`, `;`, case,
//     backslash) under Istio's default normalization, and no path upstream carries a fragment.

import assert from 'node:assert/strict';
import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2';
import fc from 'fast-check';
import { normalizePath } from '../../src/core/proxy/path-normalize.js';
import type { Echo, Upstream } from './upstream.js';
import { h2Request, h2Session, openSocket, readUntilClosed, type RawAnswer, type TlsClient } from './raw-http.js';
import { HOST } from './target-config.js';

const SEED = 0x5eed8;

/** The routes deny the first (a 403 direct response), the AuthorizationPolicy the others: none may reach the upstream. */
function denied(path: string): boolean {
  return path === '/user/admin' || path.startsWith('/admin') || path === '/private' || path.startsWith('/private/');
}

/** Path pieces that normalize, decode or confuse their way towards a denied path. */
const SEGMENTS = ['admin', 'Admin', 'ADMIN', '%61dmin', 'ad%6Din', '%2561dmin', 'private', '%70rivate', 'priv%61te', 'Private', 'private;x', 'private%2F', 'user', 'x', '..', '.', '%2e%2e', '%2E', '', ';', 'admin;x=1', 'admin%3B', '%2F', '%2fadmin', '%5C', 'admin%00', 'admin#', '#frag', '?q=1', 'admin?', '%23', '\\', 'a b', '%', '%zz', 'é'];
const SEPARATORS = ['/', '/', '/', '//', '\\', '/./', '/../'];
const PREFIXES = ['/', '/', '/', '//', '\\', '', '*', `http://${HOST}/`, `http://${HOST}`, 'http://evil.example.com/', `https://${HOST}:443/`, '/user/', '/user/../'];

const composedPathArb = fc
  .tuple(fc.constantFrom(...PREFIXES), fc.array(fc.tuple(fc.constantFrom(...SEGMENTS), fc.constantFrom(...SEPARATORS)), { maxLength: 5 }), fc.constantFrom(...SEGMENTS))
  .map(([prefix, parts, last]) => prefix + parts.map(([s, sep]) => s + sep).join('') + last);

/** The segment of a denied path that the disguises below rewrite. */
const DENIED_SEGMENT = /\/(admin|private)/;

/** One way of writing a path differently: each is a known bypass shape of the CVE classes named above. */
const DISGUISES: ReadonlyArray<(p: string) => string> = [
  (p) => `${p}#x`,
  (p) => `${p}#/../ok`,
  (p) => `${p}?#`,
  (p) => `${p};x=1`,
  (p) => `${p}%23x`,
  (p) => p.replace(DENIED_SEGMENT, '/./$1'),
  (p) => p.replace(DENIED_SEGMENT, '/x/../$1'),
  (p) => p.replace(DENIED_SEGMENT, '/x/%2e%2e/$1'),
  (p) => p.replace(DENIED_SEGMENT, '//$1'),
  (p) => p.replace(DENIED_SEGMENT, '\\$1'),
  (p) => p.replace(DENIED_SEGMENT, (_, w: string) => `/%${w.charCodeAt(0).toString(16)}${w.slice(1)}`),
  (p) => p.replace(DENIED_SEGMENT, (_, w: string) => `/%25${w.charCodeAt(0).toString(16)}${w.slice(1)}`),
  (p) => p.replace(DENIED_SEGMENT, '/%2f$1'),
  (p) => p.replace(DENIED_SEGMENT, (_, w: string) => `/${w.toUpperCase()}`),
  (p) => `http://${HOST}${p}`,
];

/** A denied path in one or more disguises. */
const disguisedPathArb = fc
  .tuple(fc.constantFrom('/user/admin', '/admin', '/admin/x', '/private', '/private/x'), fc.array(fc.nat(DISGUISES.length - 1), { minLength: 1, maxLength: 3 }))
  .map(([path, picks]) => picks.reduce<string>((p, i) => DISGUISES[i]!(p), path));

const pathArb = fc.oneof({ weight: 2, arbitrary: composedPathArb }, { weight: 1, arbitrary: disguisedPathArb });

const SMUGGLED = `GET /admin HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`;
const END_OF_RUN = `GET /end-of-run HTTP/1.1\r\nhost: ${HOST}\r\nconnection: close\r\n\r\n`;

/** Framing headers, alone and in the combinations smuggling attacks use. */
const FRAMING = [
  [],
  ['content-length: 5'],
  ['content-length: 0'],
  ['content-length: 5', 'content-length: 6'],
  ['content-length: -1'],
  ['content-length: +5'],
  ['content-length: 5, 5'],
  ['transfer-encoding: chunked'],
  ['transfer-encoding: chunked', 'content-length: 5'],
  ['transfer-encoding: chunked, identity'],
  ['transfer-encoding: identity, chunked'],
  ['transfer-encoding:  chunked'],
  ['transfer-encoding: xchunked'],
  ['transfer-encoding: chunked', 'transfer-encoding: chunked'],
  ['transfer-encoding:\tchunked'],
  [' transfer-encoding: chunked'],
  ['transfer-encoding : chunked'],
] as const;

const OTHER_HEADERS = [
  `host: ${HOST}`,
  `host: ${HOST}`,
  `host: ${HOST}`,
  'host: evil.example.com',
  `host: ${HOST}:80`,
  `Host: ${HOST.toUpperCase()}`,
  'host:',
  'host: a b',
  'connection: upgrade',
  'upgrade: h2c',
  'upgrade: websocket',
  'http2-settings: AAMAAABkAARAAAAAAAIAAAAA',
  'connection: keep-alive, x-drop',
  'x-drop: 1',
  'expect: 100-continue',
  'x-forwarded-for: 10.0.0.1',
  'x-envoy-original-path: /admin',
  'x-folded: a\r\n b',
  'x-bad\u0001: 1',
  ':authority: evil',
  'x-long: ' + 'a'.repeat(300),
];

const BODIES = ['', 'hello', '0\r\n\r\n', `0\r\n\r\n${SMUGGLED}`, `5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`, SMUGGLED, `hello${SMUGGLED}`, 'ffffffffffffffff\r\n'];

/** Mostly well-formed around one odd part, so that the odd part is what the gateway has to judge. */
const mostly = <T>(usual: T, odd: fc.Arbitrary<T>): fc.Arbitrary<T> => fc.oneof({ weight: 3, arbitrary: fc.constant(usual) }, { weight: 2, arbitrary: odd });

const h1Arb = fc.record({
  method: mostly('GET', fc.constantFrom('POST', 'PUT', 'OPTIONS', 'get', 'G ET', 'HEAD', 'DELETE', 'CONNECT', 'PRI')),
  path: pathArb,
  version: mostly('HTTP/1.1', fc.constantFrom('HTTP/1.0', 'HTTP/1.2', 'HTTP/2.0', 'http/1.1', 'HTTP/1.1 x')),
  host: mostly<string | undefined>(`host: ${HOST}`, fc.constantFrom(undefined, 'host: evil.example.com', `host: ${HOST}:80`, `Host: ${HOST.toUpperCase()}`, 'host:', 'host: a b')),
  framing: mostly<readonly string[]>([], fc.constantFrom(...FRAMING)),
  headers: fc.array(fc.constantFrom(...OTHER_HEADERS), { maxLength: 3 }),
  body: mostly('', fc.constantFrom(...BODIES)),
  eol: mostly('\r\n', fc.constantFrom('\n', '\r')),
  tls: fc.boolean(),
});

type H1Case = typeof h1Arb extends fc.Arbitrary<infer T> ? T : never;

function h1Bytes(c: H1Case): string {
  const lines = [`${c.method} ${c.path} ${c.version}`, ...(c.host !== undefined ? [c.host] : []), ...c.headers, ...c.framing];
  return lines.join(c.eol) + c.eol + c.eol + c.body;
}

const h2Arb = fc.record({
  path: pathArb,
  method: fc.constantFrom('GET', 'GET', 'POST', 'get', 'OPTIONS', 'CONNECT', 'X-Y'),
  authority: fc.constantFrom(HOST, HOST, `${HOST}:443`, 'evil.example.com', '', `u@${HOST}`, HOST.toUpperCase(), 'a b'),
  host: fc.constantFrom(undefined, undefined, HOST, 'evil.example.com', ''),
  extra: fc.array(
    fc.constantFrom<[string, string]>(['te', 'trailers'], ['te', 'gzip'], ['x-forwarded-for', '10.0.0.1'], ['x-envoy-original-path', '/admin'], ['content-length', '5'], ['content-length', 'x'], ['x-n', 'v'], ['cookie', 'a=b']),
    { maxLength: 3 },
  ),
  body: fc.constantFrom(undefined, undefined, 'hello', SMUGGLED),
});

/** A proxy listener under fuzz, in front of `app`. */
export interface FuzzTarget {
  readonly app: Upstream;
  readonly plain: number;
  readonly tlsPort: number;
  /** HTTP/1 over TLS. */
  readonly tls: TlsClient;
  /** HTTP/2 over TLS. */
  readonly h2: TlsClient;
  /** True for an upstream request the proxy sent: it carries a header only the proxy sets. */
  readonly fromProxy: (e: Echo) => boolean;
}

/** Upstream requests since `from`: the proxy's own, never denied, never with a fragment. */
function checkUpstream(t: FuzzTarget, from: number, what: string): void {
  for (const e of t.app.seen.slice(from)) {
    const path = e.url.split('?')[0]!;
    assert.ok(t.fromProxy(e), `${what}: upstream request without the proxy's own headers: ${e.url}`);
    assert.ok(!path.includes('#'), `${what}: fragment upstream: ${e.url}`);
    assert.ok(!denied(path) && !denied(normalizePath(path) ?? path), `${what}: denied path reached the upstream: ${e.url}`);
  }
}

/**
 * Sends the bytes and then a well-formed request that closes the connection, and reads until the
 * proxy closes it: whatever the proxy made of the bytes, the last request ends the exchange. A
 * request left waiting for a body that never comes is given up after a while (client side).
 */
async function exchange(t: FuzzTarget, c: H1Case): Promise<RawAnswer> {
  const socket = await openSocket(c.tls ? t.tlsPort : t.plain, c.tls ? t.tls : undefined);
  const answer = readUntilClosed(socket);
  const giveUp = setTimeout(() => socket.destroy(), 1500);
  socket.write(Buffer.from(h1Bytes(c) + END_OF_RUN, 'utf8'));
  const a = await answer;
  clearTimeout(giveUp);
  return a;
}

/** The HTTP/1 property over plaintext and TLS, then a plain request that must still be served. */
export async function fuzzHttp1(t: FuzzTarget, numRuns: number): Promise<void> {
  const firstSeen = t.app.seen.length;
  // Requests the client sent, counted over the whole property (an upstream request may land after its run's check).
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(h1Arb, async (c) => {
      const from = t.app.seen.length;
      // The request, any the body holds that the proxy may rightly read as pipelined, and the last one.
      sent += 2 + c.body.split(SMUGGLED).length - 1;
      await exchange(t, c);
      checkUpstream(t, from, JSON.stringify(h1Bytes(c)));
    }),
    { seed: SEED, numRuns, endOnFailure: true },
  );
  checkUpstream(t, firstSeen, 'HTTP/1 runs');
  assert.ok(t.app.seen.length - firstSeen <= sent, `${t.app.seen.length - firstSeen} upstream requests for ${sent} sent`);
  const ok = await exchange(t, { method: 'GET', path: '/alive', version: 'HTTP/1.1', host: `host: ${HOST}`, framing: [], headers: [], body: '', eol: '\r\n', tls: false });
  assert.deepEqual(ok.statuses, [200, 200]);
}

/** The HTTP/2 property over TLS, then a plain request that must still be served. */
export async function fuzzHttp2(t: FuzzTarget, numRuns: number): Promise<void> {
  const firstSeen = t.app.seen.length;
  let sent = 0;
  let session: ClientHttp2Session | undefined;
  const open = async (): Promise<ClientHttp2Session> => {
    if (!session || session.closed || session.destroyed) session = await h2Session(t.tlsPort, t.h2);
    return session;
  };
  try {
    await fc.assert(
      fc.asyncProperty(h2Arb, async (c) => {
        const s = await open();
        const headers: OutgoingHttpHeaders = { ':path': c.path, ':method': c.method, ':authority': c.authority };
        if (c.host !== undefined) headers.host = c.host;
        for (const [name, value] of c.extra) headers[name] = value;
        const from = t.app.seen.length;
        sent++;
        await h2Request(s, headers, c.method === 'GET' ? undefined : c.body);
        checkUpstream(t, from, JSON.stringify(headers));
      }),
      { seed: SEED, numRuns, endOnFailure: true },
    );
    checkUpstream(t, firstSeen, 'HTTP/2 runs');
    assert.ok(t.app.seen.length - firstSeen <= sent, `${t.app.seen.length - firstSeen} upstream requests for ${sent} streams`);
    assert.equal((await h2Request(await open(), { ':path': '/alive', ':authority': HOST })).status, 200);
  } finally {
    session?.destroy();
  }
}
