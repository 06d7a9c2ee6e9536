// Istio's TCP metadata exchange frame (core/telemetry/tcp-peer-exchange.ts, peer-struct.ts): read
// off a stream's front whole, however it is cut into chunks, with the bytes after it kept; a stream
// that does not start with the magic number is passed on untouched, a short one included. Its
// payload is Envoy's google.protobuf.Any(Struct), checked with protobufjs both ways: what an Envoy
// sidecar sends is understood (workload, app, version), what meshgate sends parses as Envoy parses
// it. A payload that is no such thing is still kept out of the app's bytes; an oversized one ends
// the connection. At a sidecar, a client silent after the handshake (Envoy writes its frame with its
// first bytes) does not keep a server-first app from greeting, and its later frame is kept from it.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import protobuf from 'protobufjs';
import { PeerFrameStripper, peerFrame, readPeerFrame } from '../src/core/telemetry/tcp-peer-exchange.js';
import { describeWorkload, encodePeerMetadata } from '../src/core/telemetry/workload.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSidecar } from '../src/sidecar/main.js';
import { eventually } from './helpers/gateway.js';
import { sidecarOptions, testAuthority, workloadCertificate } from './helpers/mesh.js';
import { tls } from './helpers/tcp-probe.js';

// protobufjs (installed with the gRPC and OpenTelemetry packages) carries Google's well-known types.
const types = protobuf.Root.fromJSON(protobuf.common.get('google/protobuf/struct.proto')!).addJSON(protobuf.common.get('google/protobuf/any.proto')!.nested!);
const Any = types.lookupType('google.protobuf.Any');
const Struct = types.lookupType('google.protobuf.Struct');
/** A frame around `payload`: magic, length, bytes. */
const framed = (payload: Buffer): Buffer => {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0x3d230467, 0);
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
};
/** What an Envoy sidecar (ratings-v2 in default) sends: its node metadata, more fields than we read. */
const envoyFrame = (): Buffer => {
  const str = (v: string) => ({ stringValue: v });
  const node = {
    fields: {
      NAME: str('ratings-v2-5b8c7d9f-abcde'),
      NAMESPACE: str('default'),
      WORKLOAD_NAME: str('ratings-v2'),
      CLUSTER_ID: str('Kubernetes'),
      ISTIO_VERSION: str('1.28.0'),
      APP_CONTAINERS: str('ratings'),
      LABELS: { structValue: { fields: { app: str('ratings'), version: str('v2'), 'service.istio.io/canonical-name': str('ratings'), 'service.istio.io/canonical-revision': str('v2') } } },
      PLATFORM_METADATA: { structValue: { fields: {} } },
    },
  };
  const data = Struct.encode(Struct.fromObject({ fields: { 'x-envoy-peer-metadata': { structValue: node }, 'x-envoy-peer-metadata-id': str('sidecar~10.0.0.7~ratings-v2.default~default.svc.cluster.local') } })).finish();
  return framed(Buffer.from(Any.encode(Any.fromObject({ type_url: 'type.googleapis.com/google.protobuf.Struct', value: data })).finish()));
};
const told = (metadata: string | undefined): unknown => metadata && JSON.parse(Buffer.from(metadata, 'base64').toString('utf8'));

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
  const self = describeWorkload({ namespace: 'default', labels: { app: 'ratings', version: 'v2' }, serviceAccount: 'bookinfo-ratings' });
  const frame = peerFrame(encodePeerMetadata(self));

  it('a frame is taken off the front, whole, however the stream is cut', async () => {
    assert.equal(await strip([Buffer.concat([frame, Buffer.from('220 ready\n')])]), '220 ready\n');
    assert.equal(await strip(bytewise(Buffer.concat([frame, Buffer.from('hi')]))), 'hi');
  });

  it('a stream without a frame goes on untouched, a short one too', async () => {
    assert.equal(await strip([Buffer.from('hello world')]), 'hello world');
    assert.equal(await strip([Buffer.from('ok')]), 'ok');
    assert.equal(await strip(bytewise(Buffer.from('plain bytes'))), 'plain bytes');
  });

  it('an Envoy sidecar\'s frame: its workload, app and version are read; the app gets only what follows', async () => {
    const read = await readFrom(Buffer.concat([envoyFrame(), Buffer.from('port 9000\n')]), false);
    assert.equal(read?.rest.toString(), 'port 9000\n');
    assert.deepEqual(told(read?.peerMetadata), { workload: 'ratings-v2', namespace: 'default', cluster: 'Kubernetes', app: 'ratings', version: 'v2', canonicalService: 'ratings', canonicalRevision: 'v2' });
  });

  it('our frame parses as Envoy parses it: an Any holding a Struct with x-envoy-peer-metadata', () => {
    const size = frame.readUInt32BE(4);
    const any = Any.toObject(Any.decode(frame.subarray(8, 8 + size))) as { type_url: string; value: Uint8Array };
    assert.equal(any.type_url, 'type.googleapis.com/google.protobuf.Struct');
    const data = Struct.toObject(Struct.decode(any.value)) as { fields: Record<string, { structValue: { fields: Record<string, { stringValue?: string; structValue?: { fields: Record<string, { stringValue: string }> } }> } }> };
    const node = data.fields['x-envoy-peer-metadata']!.structValue.fields;
    assert.equal(node['WORKLOAD_NAME']?.stringValue, 'ratings-v2');
    assert.equal(node['NAMESPACE']?.stringValue, 'default');
    assert.equal(node['LABELS']?.structValue?.fields['version']?.stringValue, 'v2');
  });

  it('readPeerFrame: ours gives the workload; a payload that is not Istio\'s is read past; no frame leaves the bytes', async () => {
    const read = await readFrom(Buffer.concat([frame, Buffer.from('find ratings\n')]), false);
    assert.equal(read?.rest.toString(), 'find ratings\n');
    assert.equal((told(read?.peerMetadata) as { workload: string }).workload, 'ratings-v2');
    const junk = await readFrom(Buffer.concat([framed(Buffer.from('not protobuf at all')), Buffer.from('x')]), false);
    assert.deepEqual({ framed: junk?.framed, metadata: junk?.peerMetadata, rest: junk?.rest.toString() }, { framed: true, metadata: undefined, rest: 'x' });
    const none = await readFrom(Buffer.from('GET / HTTP/1.1\r\n'), false);
    assert.deepEqual({ framed: none?.framed, rest: none?.rest.toString() }, { framed: false, rest: 'GET / HTTP/1.1\r\n' });
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
      client.write(Buffer.concat([envoyFrame(), Buffer.from('HELO client\n')]));
      await eventually(async () => Buffer.concat(received).toString() === 'HELO client\n');
      client.destroy();
    } finally {
      await sidecar.destroy();
      app.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
