// CONNECT at a sidecar's inbound side. Istio's inbound HTTP connection manager allows no CONNECT
// upgrade and its routes match no CONNECT (an HTTP/1 CONNECT has no path), so Envoy's router answers
// 404 `route_not_found` (NR). meshgate answers the same through its one pipeline, with an access-log
// line, on HTTP/1 (plaintext and mutual TLS) and HTTP/2; the app sees nothing, and a request sent
// after the CONNECT on the same connection is never read. Before, HTTP/1 was closed unanswered and
// HTTP/2 answered 405 by node:http2 itself, neither logged; plaintext HTTP/2 with prior knowledge
// (h2c, PERMISSIVE) still was, until the h2c server got the listener's CONNECT handler too.
// AuthorizationPolicy comes first, as Envoy's RBAC filter runs before its router: a peer a policy
// denies gets 403 `RBAC: access denied` (before, 404, so it learnt what an allowed peer would). A
// CONNECT has no path: a DENY rule on `paths` does not catch it, one on `notPaths` does.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { FileSource } from '../src/core/sources/file-source.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { fixedIdentity, testAuthority, untilSnapshot, workloadCertificate } from './helpers/mesh.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { completeJsonLines, eventually } from './helpers/gateway.js';
import { h2Request, h2Session, rawExchange, type TlsClient } from './helpers/raw-http.js';
import { authorizationPolicy } from './helpers/cluster-yaml.js';
import { connect as http2Connect } from 'node:http2';

describe('CONNECT at the sidecar inbound side', () => {
  let dir: string;
  let app: Upstream;
  let sidecar: RunningSidecar;
  let mtls: TlsClient;
  let accessLog: string;
  let config: string;

  before(async () => {
    const ca = await testAuthority();
    app = await startUpstream('app');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-inbound-connect-'));
    accessLog = join(dir, 'access.log');
    config = join(dir, 'config');
    await mkdir(config);
    sidecar = await startSidecar({
      statusPort: 0,
      adminPort: 0,
      outboundPort: 0,
      inboundPort: 0,
      listenHost: '127.0.0.1',
      accessLog,
      logger: pino({ level: 'silent' }),
      namespace: 'default',
      identity: fixedIdentity(ca, 'default', 'app'),
      source: new FileSource({ dir: config }),
      serviceAccount: 'app',
      labels: { app: 'app' },
      appPort: app.port,
    });
    await writeFile(join(config, 'services.yaml'), serviceYaml('app', [{ pod: 'app-0', port: sidecar.inboundPort, serviceAccount: 'app' }]));
    await untilSnapshot(sidecar.holder, (snap) => snap.registry.lookup('app.default.svc.cluster.local') !== undefined);
    const client = workloadCertificate(ca, 'default', 'client');
    mtls = { ca: ca.rootCertPem, servername: 'app', cert: client.certChainPem, key: client.keyPem, alpn: ['istio-http/1.1', 'http/1.1'] };
  });
  after(async () => {
    await sidecar?.destroy();
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const logged = async (id: string): Promise<Record<string, unknown>> => {
    let line: Record<string, unknown> | undefined;
    await eventually(async () => (line = completeJsonLines(await readFile(accessLog, 'utf8').catch(() => '')).find((l) => l.request_id === id)) !== undefined);
    return line!;
  };

  it('is 404 NR (route_not_found) on HTTP/1, plaintext and mutual TLS, logged; the app sees nothing and nothing after it is read', async () => {
    for (const [name, tls] of [['plaintext', undefined], ['mutual TLS', mtls]] as const) {
      const before = app.seen.length;
      const id = `connect-${name.replace(' ', '-')}`;
      const r = await rawExchange(sidecar.inboundPort, `CONNECT 127.0.0.1:${app.port} HTTP/1.1\r\nhost: 127.0.0.1:${app.port}\r\nx-request-id: ${id}\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: app\r\n\r\n`, tls ? { tls } : {});
      assert.match(r.text, /^HTTP\/1\.1 404 /, `${name}: ${r.text}`);
      assert.equal(r.text.match(/HTTP\/1\.1 /g)?.length, 1, `${name}: one answer, then the connection ends`);
      assert.equal(app.seen.length, before, `${name}: the app saw nothing`);
      const line = await logged(id);
      assert.deepEqual([line.method, line.response_code, line.response_flags, line.response_code_details], ['CONNECT', 404, 'NR', 'route_not_found'], name);
    }
  });

  it('is 404 on HTTP/2 too, mutual TLS and plaintext h2c, through the same pipeline (node:http2 alone would answer 405)', async () => {
    for (const [id, tls] of [['connect-h2', true], ['connect-h2c', false]] as const) {
      assert.equal(await h2Connect(id, tls), 404, id);
      const line = await logged(id);
      assert.deepEqual([line.method, line.response_code, line.response_flags], ['CONNECT', 404, 'NR'], id);
    }
  });
  const connect = (id: string, tls?: TlsClient): Promise<{ status: number; text: string }> =>
    rawExchange(sidecar.inboundPort, `CONNECT 127.0.0.1:${app.port} HTTP/1.1\r\nhost: 127.0.0.1:${app.port}\r\nx-request-id: ${id}\r\n\r\n`, tls ? { tls } : {});
  /** An HTTP/2 CONNECT over mutual TLS, or plaintext with prior knowledge (h2c: PERMISSIVE lets it in). */
  const h2Connect = async (id: string, tls = true): Promise<number> => {
    const session = tls ? await h2Session(sidecar.inboundPort, { ...mtls, alpn: ['istio-h2', 'h2'] }) : http2Connect(`http://127.0.0.1:${sidecar.inboundPort}`);
    try {
      return (await h2Request(session, { ':method': 'CONNECT', ':authority': `127.0.0.1:${app.port}`, 'x-request-id': id })).status;
    } finally {
      session.destroy();
    }
  };
  /** Writes the workload's policy and waits until the sidecar serves it. */
  const apply = async (spec: string, ready: (status: number) => boolean): Promise<void> => {
    await writeFile(join(config, 'policy.yaml'), authorizationPolicy('policy', 'default', '{matchLabels: {app: app}}', spec));
    await eventually(async () => ready((await rawExchange(sidecar.inboundPort, 'GET /probe HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n')).status));
  };

  it('a peer a policy denies everything gets 403 RBAC, not 404: HTTP/1 (plaintext, mutual TLS) and HTTP/2, logged', async () => {
    await apply('', (s) => s === 403);
    const before = app.seen.length;
    for (const [name, tls] of [['plaintext', undefined], ['mutual TLS', mtls]] as const) {
      const id = `denied-${name.replace(' ', '-')}`;
      const r = await connect(id, tls);
      assert.match(r.text, /^HTTP\/1\.1 403 /, `${name}: ${r.text}`);
      assert.match(r.text, /RBAC: access denied/, name);
      const line = await logged(id);
      assert.deepEqual([line.method, line.response_code], ['CONNECT', 403], name);
      assert.match(String(line.response_code_details), /^rbac_access_denied/, name);
    }
    assert.equal(await h2Connect('denied-h2'), 403);
    assert.equal(await h2Connect('denied-h2c', false), 403);
    assert.equal(app.seen.length, before, 'the app saw nothing');
  });

  it('an allowed peer gets 404 NR', async () => {
    await apply('  rules: [{}]', (s) => s === 200);
    const r = await connect('allowed-mtls', mtls);
    assert.match(r.text, /^HTTP\/1\.1 404 /, r.text);
    const line = await logged('allowed-mtls');
    assert.deepEqual([line.response_code, line.response_flags, line.response_code_details], [404, 'NR', 'route_not_found']);
    assert.equal(await h2Connect('allowed-h2'), 404);
    assert.equal(await h2Connect('allowed-h2c', false), 404);
  });

  it('CONNECT has no path: DENY on `paths` lets it reach the 404, DENY on `notPaths` refuses it', async () => {
    await apply('  action: DENY\n  rules: [{to: [{operation: {paths: ["*"]}}]}]', (s) => s === 403);
    assert.match((await connect('paths-deny')).text, /^HTTP\/1\.1 404 /);
    await apply('  action: DENY\n  rules: [{to: [{operation: {notPaths: ["/probe"]}}]}]', (s) => s === 200);
    assert.match((await connect('not-paths-deny')).text, /^HTTP\/1\.1 403 /);
  });
});
