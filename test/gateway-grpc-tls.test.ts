// Integration: a gRPC call over TLS + HTTP/2 at the edge to a cleartext HTTP/2 upstream, trailers
// included.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startGateway } from '../src/gateway/main.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { writeCredential } from './helpers/credentials.js';

describe('gRPC through the gateway', () => {
  it('carries a gRPC call over TLS + HTTP/2 to a cleartext HTTP/2 upstream, trailers included', async () => {
    const { createServer: createH2cServer, connect: h2connect } = await import('node:http2');
    const upstream = createH2cServer();
    upstream.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-saw-te': String(headers.te) }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' }));
        stream.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamPort = (upstream.address() as { port: number }).port;
    const root = issueCertificate({ subjectCN: 'grpc root', isCA: true, issuer: 'self', days: 1 });
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-grpc-'));
    await writeCredential(join(dir, 'certs'), 'grpc-cert', issueCertificate({ subjectCN: 'grpc.example.com', dnsNames: ['grpc.example.com'], issuer: root, days: 1 }));
    await writeFile(
      join(dir, 'all.yaml'),
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [grpc.example.com]
    tls: {mode: SIMPLE, credentialName: grpc-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: grpc}
spec:
  hosts: [grpc.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: greeter}}]
---
${serviceYaml('greeter', [{ pod: 'greeter-1', port: upstreamPort }], { port: 9000, portName: 'grpc' })}`,
    );
    const gw = await startGateway({ configDir: dir, certsDir: join(dir, 'certs'), ports: new Map([[443, 0]]), listenHost: '127.0.0.1', statusPort: 0, adminPort: 0, accessLog: 'off', logger: pino({ level: 'silent' }) });
    const session = h2connect(`https://127.0.0.1:${gw.listenPorts.get(443)}`, { servername: 'grpc.example.com', ca: root.certPem });
    try {
      const result = await new Promise<{ headers: Record<string, unknown>; trailers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/helloworld.Greeter/SayHello', ':authority': 'grpc.example.com', 'content-type': 'application/grpc', te: 'trailers' });
        let headers: Record<string, unknown> = {};
        const body: Buffer[] = [];
        req.on('response', (h) => (headers = h));
        req.on('data', (c: Buffer) => body.push(c));
        req.on('trailers', (trailers) => resolve({ headers, trailers, body: Buffer.concat(body) }));
        req.on('error', reject);
        req.end(Buffer.from([0, 0, 0, 0, 2, 8, 1]));
      });
      assert.equal(result.headers[':status'], 200);
      assert.equal(result.headers['x-saw-te'], 'trailers');
      assert.equal(result.trailers['grpc-status'], '0');
      assert.equal(result.trailers['grpc-message'], 'ok');
      assert.deepEqual([...result.body], [0, 0, 0, 0, 2, 8, 1]);
    } finally {
      session.close();
      await gw.destroy();
      upstream.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
