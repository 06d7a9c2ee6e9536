// Integration: an upstream answers with a status the client's protocol cannot carry — 600 to an
// HTTP/2 client (HTTP/1.1 takes any three digits, HTTP/2 none above 599). Writing it throws; from an
// HTTP/2 upstream the throw came inside node:http2's own callback and ended the gateway's process.
// Nothing has reached the client then: the answer is 502 UPE, and the gateway serves on.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2Connect, type ClientHttp2Session } from 'node:http2';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { frame, headerBlock, Flag, FrameType } from './helpers/h2-frames.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';

const PREFACE_LENGTH = 24;

/** An HTTP/2 upstream of bare frames answering every stream `status`, with a body or as headers `alone`. */
function frameServer(status: string, alone = false): Server {
  return createServer((s: Socket) => {
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let preface = false;
    s.write(frame(FrameType.SETTINGS, 0, 0));
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!preface) {
        if (buf.length < PREFACE_LENGTH) return;
        buf = buf.subarray(PREFACE_LENGTH);
        preface = true;
      }
      while (buf.length >= 9) {
        const length = buf.readUIntBE(0, 3);
        if (buf.length < 9 + length) return;
        const [type, flags] = [buf[3]!, buf[4]!];
        const id = buf.readUInt32BE(5) & 0x7fffffff;
        buf = buf.subarray(9 + length);
        if (type === FrameType.SETTINGS && (flags & Flag.ACK) === 0) s.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
        if (type !== FrameType.HEADERS) continue;
        if (alone) s.write(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, headerBlock([[':status', status]])));
        else s.write(Buffer.concat([frame(FrameType.HEADERS, Flag.END_HEADERS, id, headerBlock([[':status', status]])), frame(FrameType.DATA, Flag.END_STREAM, id, Buffer.from('body'))]));
      }
    });
  });
}

/** An HTTP/1.1 upstream that answers 600 to every request. */
function http1Server(): Server {
  return createServer((s: Socket) => {
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      if (d.includes('\r\n\r\n')) s.write('HTTP/1.1 600 Beyond\r\ncontent-length: 2\r\n\r\nno');
    });
  });
}

function get(session: ClientHttp2Session, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = session.request({ ':path': path, ':authority': 'status.example.com' });
    let status = 0;
    r.on('response', (h) => (status = Number(h[':status'])));
    r.on('error', reject);
    r.resume();
    r.on('end', () => resolve(status));
    r.end();
  });
}

describe('an upstream status the client cannot be told', () => {
  const servers = [http1Server(), frameServer('600'), frameServer('600', true), frameServer('200')];
  let gw: TestGateway;
  let session: ClientHttp2Session;

  before(async () => {
    for (const s of servers) await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const [h1, withBody, alone, fine] = servers.map((s) => (s.address() as AddressInfo).port);
    gw = await startTestGateway({
      'gateway.yaml': gatewayYaml(['status.example.com']),
      'services.yaml': [
        serviceYaml('beyond', [{ pod: 'beyond-1', port: h1! }]),
        serviceYaml('with-body', [{ pod: 'with-body-1', port: withBody! }], { portName: 'http2-frames' }),
        serviceYaml('alone', [{ pod: 'alone-1', port: alone! }], { portName: 'http2-frames' }),
        serviceYaml('fine', [{ pod: 'fine-1', port: fine! }], { portName: 'http2-frames' }),
      ].join('---\n'),
      'vs.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: status}
spec:
  hosts: [status.example.com]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /http1}}]
    route: [{destination: {host: beyond}}]
  - match: [{uri: {prefix: /with-body}}]
    route: [{destination: {host: with-body}}]
  - match: [{uri: {prefix: /alone}}]
    route: [{destination: {host: alone}}]
  - route: [{destination: {host: fine}}]
`,
    });
    session = h2Connect(`http://127.0.0.1:${gw.port}`);
  });

  after(async () => {
    session?.close();
    await gw?.close();
    for (const s of servers) s.close();
  });

  it('from an HTTP/2 upstream, with a body or as headers alone: 502, and the gateway serves on', async () => {
    assert.equal(await get(session, '/with-body'), 502);
    assert.equal(await get(session, '/alone'), 502);
    assert.equal(await get(session, '/fine'), 200);
  });

  it('from an HTTP/1.1 upstream: 502 rather than a reset stream', async () => {
    assert.equal(await get(session, '/http1'), 502);
    assert.equal(await get(session, '/fine'), 200);
  });
});
