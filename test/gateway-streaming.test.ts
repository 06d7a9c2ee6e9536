// Integration: bodies stream both ways without being held, WebSocket upgrades pass through, and
// hop-by-hop headers stay on their hop.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';

const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app}
spec:
  hosts: [app.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: app}}]
`;

describe('gateway streaming', () => {
  let app: Upstream;
  let gw: TestGateway;

  before(async () => {
    app = await startUpstream('app', (req, res) => {
      if (req.url === '/download') {
        // 32 MiB in 64 KiB chunks, generated as it is read.
        let left = 512;
        const chunk = Buffer.alloc(65536, 97);
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const src = new Readable({ read() { this.push(left-- > 0 ? chunk : null); } });
        src.pipe(res);
        return true;
      }
      if (req.url === '/not-modified') {
        // The Content-Length the body would have had: allowed on a 304, which never has a body.
        res.writeHead(304, { etag: '"v1"', 'content-length': '12' });
        res.end();
        return true;
      }
      return false;
    });
    app.server.on('upgrade', (req, socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nx-saw-path: ${req.url}\r\n\r\n`);
      socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
    });
    gw = await startTestGateway({ 'gw.yaml': gatewayYaml(['app.example.com']), 'svc.yaml': serviceYaml('app', [{ pod: 'app-1', port: app.port }]), 'vs.yaml': vs });
  });

  after(async () => {
    await gw?.close();
    await app?.close();
  });

  it('streams a 64 MiB upload to the upstream', async () => {
    let left = 1024;
    const chunk = Buffer.alloc(65536, 98);
    const body = new Readable({ read() { this.push(left-- > 0 ? chunk : null); } });
    const r = await request(`http://127.0.0.1:${gw.port}/upload`, { method: 'POST', headers: { host: 'app.example.com' }, body });
    const echo = (await r.body.json()) as { bodyBytes: number };
    assert.equal(r.statusCode, 200);
    assert.equal(echo.bodyBytes, 64 * 1024 * 1024);
  });

  it('answers Expect: 100-continue itself and streams the upload that follows', async () => {
    // What curl does for a body over 1 MiB: send the headers, wait for 100 Continue, then the body.
    const size = 3_000_000;
    const answer = await new Promise<{ status: number; continued: boolean; body: string }>((resolve, reject) => {
      let continued = false;
      const req = httpRequest({
        host: '127.0.0.1',
        port: gw.port,
        method: 'POST',
        path: '/upload',
        headers: { host: 'app.example.com', expect: '100-continue', 'content-length': String(size) },
      });
      req.on('continue', () => {
        continued = true;
        req.end(Buffer.alloc(size, 99));
      });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, continued, body }));
      });
      req.on('error', reject);
    });
    assert.equal(answer.continued, true, 'the client was told to go on');
    assert.equal(answer.status, 200, answer.body);
    const echo = JSON.parse(answer.body) as { bodyBytes: number; headers: Record<string, string> };
    assert.equal(echo.bodyBytes, size);
    assert.equal(echo.headers.expect, undefined, 'expect stays on its hop');
  });

  it('streams a 32 MiB download to the client', async () => {
    const r = await request(`http://127.0.0.1:${gw.port}/download`, { headers: { host: 'app.example.com' } });
    let bytes = 0;
    for await (const c of r.body) bytes += (c as Buffer).length;
    assert.equal(bytes, 32 * 1024 * 1024);
  });

  it('passes a WebSocket upgrade through in both directions', async () => {
    const socket = connect(gw.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write('GET /chat HTTP/1.1\r\nhost: app.example.com\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\r\n\r\n') && !got.includes('echo:')) socket.write('ping');
    });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no echo; got ${JSON.stringify(got)}`)), 3000);
      socket.on('data', () => {
        if (got.includes('echo:ping')) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    socket.destroy();
    assert.match(got, /^HTTP\/1\.1 101/);
    assert.match(got, /x-saw-path: \/chat/);
  });

  it('drops hop-by-hop headers and those named in Connection', async () => {
    const socket = connect(gw.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write('GET /h HTTP/1.1\r\nhost: app.example.com\r\nconnection: close, x-secret\r\nx-secret: 1\r\nkeep-alive: timeout=5\r\nte: gzip\r\nx-kept: yes\r\n\r\n');
    let text = '';
    for await (const d of socket) text += (d as Buffer).toString();
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> };
    assert.equal(body.headers['x-secret'], undefined);
    assert.equal(body.headers['keep-alive'], undefined);
    assert.equal(body.headers.te, undefined, 'te other than "trailers" stays on its hop');
    assert.equal(body.headers['x-kept'], 'yes');
  });

  it('passes a 304 that names a Content-Length on as a whole answer, and the connection serves on', async () => {
    const socket = connect(gw.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write('GET /not-modified HTTP/1.1\r\nhost: app.example.com\r\nif-none-match: "v1"\r\n\r\nGET /after HTTP/1.1\r\nhost: app.example.com\r\n\r\n');
    let text = '';
    // Read until the second answer's JSON has ended, or the gateway closed the connection.
    for await (const d of socket) {
      text += (d as Buffer).toString();
      if (text.endsWith('}')) break;
    }
    socket.destroy();
    assert.match(text, /^HTTP\/1\.1 304 /, text);
    assert.match(text, /\r\netag: "v1"\r\n/i);
    const second = text.indexOf('HTTP/1.1 200 ');
    assert.ok(second > 0, `the next request on the connection is answered: ${JSON.stringify(text)}`);
    assert.equal((JSON.parse(text.slice(text.indexOf('\r\n\r\n', second) + 4)) as { url: string }).url, '/after');
  });
});
