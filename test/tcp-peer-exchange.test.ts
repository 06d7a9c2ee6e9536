// Istio's TCP metadata exchange frame (core/telemetry/tcp-peer-exchange.ts): read off a stream's
// front whole, however it is cut into chunks, with the bytes after it kept; a stream that does not
// start with the magic number is passed on untouched, a short one included; a payload carrying no
// node metadata is still taken out of what the app reads; an oversized one ends the connection. At a
// sidecar, a client silent after the handshake (Envoy writes its frame with its first bytes) does not
// keep a server-first app from greeting, and its later frame is kept from it.
// Envoy's own frames, end to end: envoy-peer-exchange.test.ts.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { PeerFrameStripper, peerFrame, readPeerFrame } from '../src/core/telemetry/tcp-peer-exchange.js';
import { peerMetadataOf } from '../src/core/telemetry/peer-metadata.js';
import { describeWorkload } from '../src/core/telemetry/workload.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSidecar } from '../src/sidecar/main.js';
import { eventually } from './helpers/gateway.js';
import { sidecarOptions, testAuthority, workloadCertificate } from './helpers/mesh.js';
import { tls } from './helpers/tcp-probe.js';

const strip = async (chunks: Buffer[]): Promise<string> => {
  const out: Buffer[] = [];
  for await (const c of Readable.from(chunks).pipe(new PeerFrameStripper())) out.push(c as Buffer);
  return Buffer.concat(out).toString('latin1');
};
const bytewise = (b: Buffer): Buffer[] => [...b].map((x) => Buffer.from([x]));

/** A connected socket pair: what `send` writes, read by readPeerFrame on the other end. */
async function readFrom(send: Buffer, end = true): Promise<Awaited<ReturnType<typeof readPeerFrame>>> {
  const server = createServer();
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const socket = await accepted;
  if (end) client.end(send);
  else client.write(send);
  const read = await readPeerFrame(socket);
  client.destroy();
  socket.destroy();
  server.close();
  return read;
}

describe('TCP metadata exchange frames', () => {
  const ratings = peerMetadataOf(describeWorkload({ namespace: 'bookinfo', labels: { app: 'ratings', version: 'v2' }, serviceAccount: 'bookinfo-ratings' }), 'sidecar~10.0.0.7~ratings-v2.bookinfo~bookinfo.svc.cluster.local');
  const frame = peerFrame(ratings.exchange);

  it('a frame is taken off the front, whole, however the stream is cut', async () => {
    assert.equal(await strip([Buffer.concat([frame, Buffer.from('220 ready\n')])]), '220 ready\n');
    assert.equal(await strip(bytewise(Buffer.concat([frame, Buffer.from('hi')]))), 'hi');
  });

  it('a stream without a frame goes on untouched, a short one too', async () => {
    assert.equal(await strip([Buffer.from('hello world')]), 'hello world');
    assert.equal(await strip([Buffer.from('ok')]), 'ok');
    assert.equal(await strip(bytewise(Buffer.from('plain bytes'))), 'plain bytes');
  });

  it('a payload without node metadata is read past: the app never sees it', async () => {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(0x3d230467, 0);
    const protobuf = Buffer.from([0x0a, 0x2c, ...Buffer.from('type.googleapis.com/google.protobuf.Struct'), 0x12, 0x00]);
    header.writeUInt32BE(protobuf.length, 4);
    const read = await readFrom(Buffer.concat([header, protobuf, Buffer.from('port 9000\n')]), false);
    assert.equal(read?.rest.toString(), 'port 9000\n');
    assert.deepEqual({ framed: read?.framed, peerMetadata: read?.peerMetadata }, { framed: true, peerMetadata: undefined }, 'a frame, but no node metadata: the peer known by its principal alone');
  });

  it('readPeerFrame: our frame gives its payload; no frame leaves the bytes for the app', async () => {
    const read = await readFrom(Buffer.concat([frame, Buffer.from('find ratings\n')]), false);
    assert.deepEqual({ peerMetadata: read?.peerMetadata, rest: read?.rest.toString() }, { peerMetadata: ratings.header, rest: 'find ratings\n' });
    const none = await readFrom(Buffer.from('GET / HTTP/1.1\r\n'), false);
    assert.deepEqual({ framed: none?.framed, peerMetadata: none?.peerMetadata, rest: none?.rest.toString() }, { framed: false, peerMetadata: undefined, rest: 'GET / HTTP/1.1\r\n' });
    const short = await readFrom(Buffer.from('ab'));
    assert.equal(short?.rest.toString(), 'ab');
  });

  it('an oversized frame is refused', async () => {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(0x3d230467, 0);
    header.writeUInt32BE(1 << 20, 4);
    assert.equal(await readFrom(header, false), undefined);
    await assert.rejects(strip([header]));
  });
});

describe('TCP metadata exchange at a sidecar, with a client that writes its frame only with its first bytes (as Envoy does)', () => {
  it('a server-first app greets first; the frame that comes later never reaches it', async () => {
    const ca = await testAuthority();
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-mx-'));
    const received: Buffer[] = [];
    const app = createServer((s) => {
      s.on('error', () => s.destroy());
      s.write('220 ready\n');
      s.on('data', (d) => received.push(d));
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const sidecar = await startSidecar(sidecarOptions(ca, dir, 'mail', (app.address() as AddressInfo).port));
    try {
      const client = await tls(sidecar.inboundPort, ca.rootCertPem, ['istio-peer-exchange', 'istio'], workloadCertificate(ca, 'default', 'sender'));
      const greeting = await new Promise<string>((resolve) => client.once('data', (d: Buffer) => resolve(d.toString())));
      // The server's own frame, answering none, is not sent: the greeting is the first thing back.
      assert.equal(greeting, '220 ready\n');
      client.write(Buffer.concat([peerFrame(peerMetadataOf(describeWorkload({ namespace: 'default', labels: { app: 'sender' }, serviceAccount: 'sender' }), 'sidecar~10.0.0.9~sender.default~default.svc.cluster.local').exchange), Buffer.from('HELO client\n')]));
      await eventually(async () => Buffer.concat(received).toString() === 'HELO client\n');
      client.destroy();
    } finally {
      await sidecar.destroy();
      app.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
