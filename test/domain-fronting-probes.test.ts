// Domain-fronting probes of a gateway port with two TLS servers: SIMPLE for a.example.com and MUTUAL
// (a client certificate required) for b.example.com, both routed to one upstream that records every
// byte it is sent. Istio's Envoy gives each server its own filter chain and route table, so b's
// routes are not reachable over a connection made for a. meshgate answers a request for b on a's
// connection 421 (Misdirected Request), whatever spells b: Host in any case, with a port or a
// trailing dot, an absolute-form target, a WebSocket or h2c upgrade, HTTP/2 `:authority`, or a `host`
// field without `:authority`; a's connection without a Host reaches no host of b; and a
// ClientHello naming b, in any spelling, or naming nothing, never skips b's client certificate.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { startGateway, type RunningGateway } from '../src/gateway/main.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { authorizationPolicy, serviceYaml } from './helpers/cluster-yaml.js';
import { writeCredential } from './helpers/credentials.js';
import { startRawUpstream, type RawUpstream } from './helpers/raw-upstream.js';
import { rawExchange, type TlsClient } from './helpers/raw-http.js';
import { Flag, FrameType, frame, headerBlock, RawH2, responseStatus } from './helpers/h2-frames.js';

const A = 'a.example.com';
const B = 'b.example.com';

describe('domain fronting: SNI a.example.com (SIMPLE), Host b.example.com (MUTUAL)', () => {
  let upstream: RawUpstream;
  let gw: RunningGateway;
  let dir: string;
  let port: number;
  let root: string;
  let client: { certPem: string; keyPem: string };

  before(async () => {
    const ca = issueCertificate({ subjectCN: 'fronting root', isCA: true, issuer: 'self', days: 2, keyType: 'ec' });
    const clientRoot = issueCertificate({ subjectCN: 'fronting client root', isCA: true, issuer: 'self', days: 2, keyType: 'ec' });
    client = issueCertificate({ subjectCN: 'alice', dnsNames: ['alice.example.com'], issuer: clientRoot, days: 2, keyType: 'ec', extKeyUsage: ['clientAuth'] });
    root = ca.certPem;
    upstream = await startRawUpstream();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-fronting-'));
    const config = join(dir, 'config');
    const certs = join(dir, 'certs');
    await mkdir(config);
    // a's certificate names b too, as a shared or wildcard certificate would: what a browser would
    // reuse a's HTTP/2 connection for.
    await writeCredential(certs, 'a-cert', issueCertificate({ subjectCN: A, dnsNames: [A, B], issuer: ca, days: 2, keyType: 'ec' }));
    await writeCredential(certs, 'b-cert', issueCertificate({ subjectCN: B, dnsNames: [B], issuer: ca, days: 2, keyType: 'ec' }), clientRoot.certPem);
    await writeFile(
      join(config, 'gw.yaml'),
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-a, protocol: HTTPS}
    hosts: [${A}]
    tls: {mode: SIMPLE, credentialName: a-cert}
  - port: {number: 443, name: https-b, protocol: HTTPS}
    hosts: [${B}]
    tls: {mode: MUTUAL, credentialName: b-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [${A}, ${B}]
  gateways: [edge]
  http:
  - route: [{destination: {host: app}}]
`,
    );
    await writeFile(join(config, 'svc.yaml'), serviceYaml('app', [{ pod: 'app-1', port: upstream.port }]));
    // b's own authorization: only a client with a verified certificate.
    await writeFile(
      join(config, 'authz.yaml'),
      authorizationPolicy('b-needs-cert', 'istio-system', '{matchLabels: {istio: ingressgateway}}', `  action: DENY
  rules:
  - to: [{operation: {hosts: [${B}, "${B}:*"]}}]
    from: [{source: {notPrincipals: ["*"]}}]`),
    );
    gw = await startGateway({
      configDir: config,
      certsDir: certs,
      ports: new Map([[443, 0]]),
      listenHost: '127.0.0.1',
      statusPort: 0,
      adminPort: 0,
      accessLog: 'off',
      logger: pino({ level: 'silent' }),
    });
    port = gw.listenPorts.get(443)!;
  });
  after(async () => {
    await gw?.destroy();
    await upstream?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const overA: TlsClient = { ca: '', servername: A };
  /** One HTTP/1 exchange on a connection made for `servername`: the status line and the request lines that reached the upstream. */
  const h1 = async (request: string, tls: TlsClient = overA): Promise<{ status: string; lines: string[] }> => {
    const mark = upstream.mark();
    const r = await rawExchange(port, request, { tls: { ...tls, ca: root } });
    return { status: r.text.split('\r\n')[0]!, lines: upstream.since(mark).requestLines };
  };
  /** Streams of raw header fields on one HTTP/2 connection made for a: each one's status, and what reached the upstream. */
  const h2 = async (...requests: ReadonlyArray<ReadonlyArray<readonly [string, string]>>): Promise<{ statuses: number[]; lines: string[]; hosts: string[] }> => {
    const mark = upstream.mark();
    const c = await RawH2.openTls(port, root, A);
    const statuses: number[] = [];
    try {
      for (let i = 0; i < requests.length; i++) {
        const stream = 2 * i + 1;
        c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, stream, headerBlock(requests[i]!)));
        await c.until(() => c.on(stream).some((f) => f.type === FrameType.HEADERS || f.type === FrameType.RST_STREAM));
        const f = c.on(stream).find((x) => x.type === FrameType.HEADERS);
        statuses.push(f ? responseStatus(f) : 0);
      }
    } finally {
      c.close();
    }
    const bytes = upstream.since(mark);
    return { statuses, lines: bytes.requestLines, hosts: [...bytes.bytes.matchAll(/\r\nhost: ([^\r]*)/gi)].map((m) => m[1]!) };
  };
  const get = (authority: string | null, extra: Array<[string, string]> = []): Array<[string, string]> => [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/'],
    ...(authority === null ? [] : ([[':authority', authority]] as Array<[string, string]>)),
    ...extra,
  ];
  /** Whether a handshake naming `servername` (none when undefined) completes without a client certificate and serves a request. */
  const handshakeServes = (servername: string | undefined): Promise<boolean> =>
    new Promise((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: root, ...(servername === undefined ? {} : { servername }), checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'] });
      let text = '';
      s.on('secureConnect', () => s.write(`GET / HTTP/1.1\r\nhost: ${B}\r\nconnection: close\r\n\r\n`));
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      s.on('error', () => undefined);
      s.on('close', () => resolve(/^HTTP\/1\.1 200 /.test(text)));
    });

  it('HTTP/1.1 on a\'s connection: Host b in any spelling, or an absolute-form b, is 421; nothing reaches the upstream', async () => {
    for (const host of [B, 'B.EXAMPLE.COM', `${B}.`, `${B}:443`, `${B}.:443`]) {
      const r = await h1(`GET / HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
      assert.deepEqual([r.status, r.lines], ['HTTP/1.1 421 Misdirected Request', []], host);
    }
    const abs = await h1(`GET https://${B}/ HTTP/1.1\r\nhost: ${A}\r\nconnection: close\r\n\r\n`);
    assert.deepEqual([abs.status, abs.lines], ['HTTP/1.1 421 Misdirected Request', []]);
    const ws = await h1(`GET / HTTP/1.1\r\nhost: ${B}\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n`);
    assert.deepEqual([ws.status, ws.lines], ['HTTP/1.1 421 Misdirected Request', []], 'a WebSocket upgrade');
    // An h2c upgrade is served as HTTP/1.1 on the same connection (replayed to a's server): still 421.
    const h2c = await h1(`GET / HTTP/1.1\r\nhost: ${B}\r\nupgrade: h2c\r\nconnection: upgrade, http2-settings, close\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`);
    assert.deepEqual([h2c.status, h2c.lines], ['HTTP/1.1 421 Misdirected Request', []], 'an h2c upgrade');
    const own = await h1(`GET / HTTP/1.1\r\nhost: ${A}\r\nconnection: close\r\n\r\n`);
    assert.deepEqual([own.status, own.lines], ['HTTP/1.1 200 OK', ['GET / HTTP/1.1']], 'a itself is served');
  });

  it('HTTP/1.0 without Host on a\'s connection reaches no host of b: 404', async () => {
    const r = await h1('GET / HTTP/1.0\r\n\r\n');
    assert.deepEqual([r.status, r.lines], ['HTTP/1.1 404 Not Found', []]);
  });

  it('HTTP/2 coalescing: a then b on one connection is 200 then 421; `host: b` without `:authority` is 421 too', async () => {
    // One connection per spelling: a second 421 on a connection would come from HPACK's dynamic table.
    for (const [name, second] of [['b', get(B)], ['host b', get(null, [['host', B]])], ['B.EXAMPLE.COM:443', get('B.EXAMPLE.COM:443')]] as const) {
      const r = await h2(get(A), second);
      assert.deepEqual([r.statuses, r.lines], [[200, 421], ['GET / HTTP/1.1']], name);
    }
  });

  it('HTTP/2 `:authority` a with `host` b: served as a, and the upstream is told a, never b', async () => {
    const r = await h2(get(A, [['host', B]]));
    assert.deepEqual([r.statuses, r.hosts], [[200], [A]]);
  });

  it('a ClientHello naming b in any spelling, or naming nothing, never serves b without a client certificate', async () => {
    for (const sni of [B, 'B.EXAMPLE.COM', `${B}.`, undefined]) assert.equal(await handshakeServes(sni), false, String(sni));
  });

  it('b with its client certificate is served (and passes b\'s own policy)', async () => {
    const r = await h1(`GET / HTTP/1.1\r\nhost: ${B}\r\nconnection: close\r\n\r\n`, { ca: root, servername: B, cert: client.certPem, key: client.keyPem });
    assert.deepEqual([r.status, r.lines], ['HTTP/1.1 200 OK', ['GET / HTTP/1.1']]);
  });
});
