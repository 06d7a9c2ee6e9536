// gRPC under transparent capture, end to end in network namespaces with real iptables (helpers/
// netns.ts): a plaintext grpc-js client in a meshed pod dials `product-service:50051` as any gRPC
// client does (HTTP/2 with prior knowledge, no proxy setting); its sidecar captures the connection,
// tells h2c from HTTP/1 by the preface, routes by the original destination and carries the call over
// mutual TLS to the server pod's sidecar, which hands it to the grpc-js app over h2c. Status, message,
// binary metadata and trailers must arrive unchanged, errors included (UNAVAILABLE is not INTERNAL).
// Also: a port whose protocol is left to detection keeps the client's HTTP/2 (Istio's
// USE_DOWNSTREAM_PROTOCOL); plaintext h2c from outside the mesh reaches the app (PERMISSIVE); and
// HTTP/2 that is not gRPC reaches an app whose port is declared `grpc` as HTTP/2.
// Needs root (network namespaces, iptables): skipped with the reason otherwise.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { APP_UID, NetnsLab, netnsSkipReason, NODE } from './helpers/netns.js';

const IP = { cp: '10.77.0.2', a: '10.77.0.3', b: '10.77.0.4', out: '10.77.0.5' };
/** product-service: port 50051 named `grpc`. */
const GRPC_IP = '10.77.1.20';
/** product-api, on the same pod: port 50052 with no protocol (detected). */
const API_IP = '10.77.1.21';
const GRPC_HELPERS = new URL('./helpers/grpc.js', import.meta.url).href;

/** The server app: grpc-js echo servers on the pod's address, plaintext (h2c only). */
const SERVER_APP = `
const { startEchoServer } = await import(${JSON.stringify(GRPC_HELPERS)});
await startEchoServer(${JSON.stringify(`${IP.b}:50051`)});
await startEchoServer(${JSON.stringify(`${IP.b}:50052`)});
console.error('echo serving');
`;

/** A client app's calls to TARGET (host:port) with AUTHORITY: what each returned, as one JSON line. */
const CLIENT_CALLS = `
const { echoClient, unary, grpc } = await import(${JSON.stringify(GRPC_HELPERS)});
const [host, port] = process.env.TARGET.split(':');
const client = echoClient(Number(port), process.env.AUTHORITY, host);
const opts = () => ({ deadline: Date.now() + 5000 });
const hex = (v) => (v === undefined ? undefined : Buffer.from(v).toString('hex'));
const md = new grpc.Metadata();
md.set('trace-bin', Buffer.from([0, 255, 7]));
const ok = await unary(client, { message: 'captured' }, md, opts());
const out = { ok: { code: ok.err?.code ?? 0, details: ok.err?.details, message: ok.reply?.message, echo: hex(ok.headers?.get('echo-bin')[0]), xfcc: ok.headers?.get('echo-xfcc')[0] ?? null, trailer: hex(ok.trailers?.get('trailer-bin')[0]) } };
if (out.ok.code === 0) {
  const unavailable = await unary(client, { message: 'down for now', failWith: grpc.status.UNAVAILABLE }, new grpc.Metadata(), opts());
  const notFound = await unary(client, { message: 'no such thing', failWith: grpc.status.NOT_FOUND }, new grpc.Metadata(), opts());
  out.unavailable = { code: unavailable.err?.code, details: unavailable.err?.details };
  out.notFound = { code: notFound.err?.code, details: notFound.err?.details, errBin: hex(notFound.trailers?.get('err-bin')[0]) };
  const stream = client.serverStream({ count: 3, intervalMs: 1 }, new grpc.Metadata(), opts());
  out.stream = await new Promise((resolve) => {
    const got = [];
    stream.on('data', (m) => got.push(m.message));
    stream.on('error', () => undefined);
    stream.on('status', (s) => resolve({ code: s.code, messages: got }));
  });
}
client.close();
console.log(JSON.stringify(out));
`;

/** A client app's HTTP/2 request with prior knowledge that is not gRPC: the status it got. */
const PLAIN_H2 = `
const http2 = require('node:http2');
const [host, port] = process.env.TARGET.split(':');
const s = http2.connect('http://' + process.env.AUTHORITY, { createConnection: () => require('node:net').connect(Number(port), host) });
s.on('error', (e) => console.log(JSON.stringify({ error: e.code || e.message })));
const r = s.request({ ':path': '/', ':authority': process.env.AUTHORITY });
r.on('response', (h) => { console.log(JSON.stringify({ status: h[':status'] })); s.close(); });
r.on('error', (e) => console.log(JSON.stringify({ error: e.code || e.message })));
r.resume();
r.end();
`;

const reason = netnsSkipReason();

describe('gRPC under transparent capture in network namespaces', { skip: reason ?? false }, () => {
  let lab: NetnsLab<keyof typeof IP>;

  before(async () => {
    lab = new NetnsLab(IP);
    lab.up();
    const pod = { pod: 'product-b', address: IP.b, serviceAccount: 'product-service', labels: { app: 'product-service', 'security.istio.io/tlsMode': 'istio' } };
    await lab.control('cp', {
      'product.yaml': serviceYaml('product-service', [{ ...pod, port: 50051 }], { port: 50051, portName: 'grpc', clusterIP: GRPC_IP }),
      'api.yaml': serviceYaml('product-api', [{ ...pod, pod: 'product-b-api', port: 50052 }], { port: 50052, portName: 'api', clusterIP: API_IP }),
      // PERMISSIVE: mesh clients still use mutual TLS; plaintext callers outside the mesh get in too.
      'mtls.yaml': 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: PERMISSIVE}}\n',
    }, ['client-app', 'product-service']);
    for (const k of ['a', 'b'] as const) {
      const init = await lab.iptables(k);
      assert.ok(init.ok, `meshgate iptables in ${k}: ${init.err}`);
    }
    const sb = lab.sidecar('b', 'product-service', ['--app-port', '50051']);
    const sa = lab.sidecar('a', 'client-app');
    const app = lab.daemon('b', [NODE, '--input-type=module', '-e', SERVER_APP], APP_UID);
    await lab.untilLogged(app, /echo serving/);
    await lab.waitReady('b', 'http://127.0.0.1:15021/healthz/ready', sb);
    await lab.waitReady('a', 'http://127.0.0.1:15021/healthz/ready', sa);
  });

  after(() => lab?.down());

  /** The client calls from host `k`, retried while the sidecar may not have the service yet, as an app would. */
  const calls = async (k: 'a' | 'out', target: string, authority: string): Promise<Record<string, { code?: number; details?: string; [k: string]: unknown }>> => {
    let result: Record<string, { code?: number; details?: string }> = {};
    for (let i = 0; i < 20; i++) {
      const run = await lab.run(k, [NODE, '--input-type=module', '-e', CLIENT_CALLS], APP_UID, { TARGET: target, AUTHORITY: authority });
      result = JSON.parse(run.out.trim().split('\n').pop() || '{}');
      if (result.ok?.code === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(result.ok?.code, 0, `${JSON.stringify(result)}\n${lab.logs()}`);
    return result;
  };

  /** Every call arrived as the app answered it: reply, binary metadata both ways, trailers, errors, a stream. */
  const assertIntact = (r: Record<string, { [k: string]: unknown }>): void => {
    assert.equal(r.ok!.message, 'captured');
    assert.equal(r.ok!.echo, '00ff07');
    assert.equal(r.ok!.trailer, '090807');
    assert.deepEqual(r.unavailable, { code: 14, details: 'down for now' });
    assert.deepEqual(r.notFound, { code: 5, details: 'no such thing', errBin: '000102ff' });
    assert.deepEqual(r.stream, { code: 0, messages: ['tick 0', 'tick 1', 'tick 2'] });
  };

  it('a plaintext gRPC client calls product-service:50051 with no proxy setting: captured, mutual TLS between the sidecars, h2c to the app', async () => {
    const r = await calls('a', `${GRPC_IP}:50051`, 'product-service:50051');
    assertIntact(r);
    // The server's sidecar told the app who called: the hop between the pods was mutual TLS.
    assert.match(String(r.ok!.xfcc), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/client-app/);
  });

  it('keeps HTTP/2 to a port whose protocol is left to detection, as the client spoke it', async () => {
    const r = await calls('a', `${API_IP}:50052`, 'product-api:50052');
    assertIntact(r);
    assert.match(String(r.ok!.xfcc), /sa\/client-app/);
  });

  it('takes plaintext h2c from outside the mesh to the app port (PERMISSIVE), through the sidecar to the app', async () => {
    const r = await calls('out', `${IP.b}:50051`, `${IP.b}:50051`);
    assertIntact(r);
    assert.equal(r.ok!.xfcc, null, 'no mesh identity for a plaintext caller');
  });

  it('carries HTTP/2 that is not gRPC to an app whose port is declared grpc as HTTP/2', async () => {
    const run = await lab.run('a', [NODE, '-e', PLAIN_H2], APP_UID, { TARGET: `${GRPC_IP}:50051`, AUTHORITY: 'product-service:50051' });
    // grpc-js answers a request without a gRPC content-type 415: HTTP/2 reached it (HTTP/1.1 would not).
    assert.deepEqual(JSON.parse(run.out.trim().split('\n').pop() || '{}'), { status: 415 }, `${run.out}${run.err}\n${lab.logs()}`);
  });
});
