// Probes of the access log and of the trace headers as an attack surface, at a real gateway that
// logs every request (JSON) and traces every request to an OTLP receiver: control characters (ESC,
// BEL, DEL, CR) in logged headers over HTTP/1 and h2c, quotes and backslashes, and malformed or
// huge `traceparent`, `tracestate`, `b3`, `x-b3-*` and `baggage`; and how long a span's `http.url`
// may grow (the one finding here: it held the whole path).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2Connect } from 'node:http2';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { completeJsonLines, eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { rawExchange } from './helpers/raw-http.js';
import { attr, meshConfig, startReceiver } from './helpers/otlp-receiver.js';

const VS = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app}\nspec:\n  hosts: [app.example.com]\n  gateways: [gw]\n  http:\n  - route: [{destination: {host: app}}]\n';

describe('the access log and trace headers against hostile values', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let up: Upstream;
  let gw: TestGateway;
  let log: string;
  let logDir: string;
  before(async () => {
    receiver = await startReceiver();
    up = await startUpstream('app');
    logDir = await mkdtemp(join(tmpdir(), 'meshgate-log-probes-'));
    log = join(logDir, 'access.log');
    gw = await startTestGateway({ 'mesh-config.yaml': meshConfig(receiver.port, 100), 'gw.yaml': gatewayYaml(['app.example.com']), 'svc.yaml': serviceYaml('app', [{ pod: 'app-0', port: up.port }]), 'vs.yaml': VS }, { accessLog: log });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
    receiver?.server.close();
    await rm(logDir, { recursive: true, force: true });
  });

  const lineFor = async (path: string): Promise<Record<string, unknown>> => {
    let found: Record<string, unknown> | undefined;
    await eventually(async () => {
      found = completeJsonLines(await readFile(log, 'utf8').catch(() => '')).find((l) => l.path === path);
      return found !== undefined;
    });
    return found!;
  };

  it('h2c: a header value with ESC, BEL or DEL never reaches the log (node:http2 drops it); quotes and backslashes are escaped JSON', async () => {
    const session = h2Connect(`http://127.0.0.1:${gw.port}`);
    const ask = (path: string, headers: Record<string, string>): Promise<number> =>
      new Promise((resolve) => {
        const s = session.request({ ':path': path, ':authority': 'app.example.com', ...headers });
        let status = 0;
        s.on('response', (h) => (status = Number(h[':status'])));
        s.resume();
        s.on('close', () => resolve(status));
        s.on('error', () => undefined);
      });
    try {
      assert.equal(await ask('/esc', { 'user-agent': 'ua\u001b[2J\u001b]0;owned\u0007', 'x-request-id': 'id\u001b[31m' }), 200);
      assert.equal(await ask('/del', { 'user-agent': 'a\u007fb' }), 200);
      assert.equal(await ask('/quote', { 'user-agent': 'a" "forged" \\ b', 'x-forwarded-for': '1.2.3.4", "x' }), 200);
    } finally {
      session.close();
    }
    const esc = await lineFor('/esc');
    assert.equal(esc.user_agent, null);
    assert.match(String(esc.request_id), /^[0-9a-f-]{36}$/, 'a fresh request id, not the client\'s');
    assert.equal((await lineFor('/del')).user_agent, null);
    assert.equal((await lineFor('/quote')).user_agent, 'a" "forged" \\ b');
    const text = await readFile(log, 'utf8');
    assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f]/, 'no control character but the line ends');
    for (const l of text.trimEnd().split('\n')) JSON.parse(l);
  });

  it('HTTP/1: a control character in a header value is 400 before anything is logged as the request', async () => {
    for (const bad of ['\u001b[2J', '\u0007', '\u007f', 'a\rb']) {
      const r = await rawExchange(gw.port, `GET /h1 HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: x${bad}y\r\nConnection: close\r\n\r\n`);
      assert.equal(r.status, 400, JSON.stringify(bad));
    }
    assert.doesNotMatch(await readFile(log, 'utf8'), /[\u0000-\u0009\u000b-\u001f\u007f]/);
  });

  it('malformed or huge trace headers are served, and the upstream gets a well-formed context of the proxy\'s making', async () => {
    const parent = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
    const cases: Array<Record<string, string>> = [
      { traceparent: `${parent}-extra` },
      { traceparent: `ff-${'a'.repeat(32)}-${'b'.repeat(16)}-01` },
      { traceparent: `00-${'0'.repeat(32)}-${'b'.repeat(16)}-01` },
      { traceparent: parent, tracestate: Array.from({ length: 2000 }, (_, i) => `k${i}=v`).join(',') },
      { traceparent: parent, tracestate: '\u00ff=<script>' },
      { b3: 'a'.repeat(30_000) },
      { b3: '-'.repeat(30_000) },
      { b3: `${'a'.repeat(16)}-${'b'.repeat(16)}-1-<script>` },
      { 'x-b3-traceid': 'zz', 'x-b3-spanid': 'b'.repeat(16), 'x-b3-sampled': '<script>' },
      { 'x-b3-traceid': 'a'.repeat(32), 'x-b3-spanid': 'b'.repeat(16), 'x-b3-parentspanid': '<x>', 'x-b3-flags': '1' },
      { baggage: Array.from({ length: 1000 }, (_, i) => `k${i}=v`).join(',') },
    ];
    for (const headers of cases) {
      const r = await gw.get('app.example.com', '/trace', headers);
      assert.equal(r.status, 200, JSON.stringify(headers).slice(0, 80));
      const sent = r.json<{ headers: Record<string, string> }>().headers;
      assert.match(sent['traceparent'] ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
      assert.match(sent['x-b3-traceid'] ?? '', /^[0-9a-f]{32}$/);
      assert.match(sent['x-b3-spanid'] ?? '', /^[0-9a-f]{16}$/);
      if (sent['x-b3-parentspanid'] !== undefined) assert.match(sent['x-b3-parentspanid'], /^[0-9a-f]{16}$/);
      if (sent['b3'] !== undefined) assert.match(sent['b3'], /^[0-9a-f]{32}-[0-9a-f]{16}-[01](-[0-9a-f]{16})?$/);
    }
    await eventually(async () => receiver.spans.length >= cases.length);
  });

  it('an 8 KB path makes a span\'s http.url of at most 256 path characters, as Envoy cuts it (max_path_tag_length)', async () => {
    const path = `/${'p'.repeat(8000)}`;
    assert.equal((await gw.get('app.example.com', path, { 'x-request-id': 'long-path-span' })).status, 200);
    await eventually(async () => receiver.spans.some((s) => attr(s, 'guid:x-request-id') === 'long-path-span'));
    const span = receiver.spans.find((s) => attr(s, 'guid:x-request-id') === 'long-path-span')!;
    assert.equal(attr(span, 'http.url'), `http://app.example.com${path.slice(0, 256)}`);
  });
});
