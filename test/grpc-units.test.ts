// Unit tables for the gRPC and HTTP/2 pieces that decide without a socket: which requests are gRPC,
// Envoy's HTTP → gRPC status mapping for local replies, grpc-timeout parsing and how it bounds the
// route timeout, grpc-message encoding, the h2c preface sniff, and which clusters speak HTTP/2.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { boundedByGrpcTimeout, encodeGrpcMessage, grpcTimeoutMs, httpToGrpcStatus, isGrpcRequest } from '../src/core/proxy/grpc-status.js';
import { H2_PREFACE, sniffPreface } from '../src/core/proxy/h2c-sniff.js';
import type { IncomingMessage } from 'node:http';
import { appPortProtocol, clusterProtocol, speaksH2, upstreamH2 } from '../src/core/proxy/upstream-protocol.js';
import { kubePortProtocol } from '../src/core/registry/protocol.js';

describe('gRPC pieces', () => {
  it('knows a gRPC request by its content-type, as Envoy does', () => {
    for (const ct of ['application/grpc', 'application/grpc+proto', 'application/grpc;charset=utf-8']) assert.equal(isGrpcRequest({ 'content-type': ct }), true, ct);
    for (const ct of [undefined, 'application/grpc-web', 'application/grpc-web+proto', 'application/json', 'application/grpcx']) assert.equal(isGrpcRequest(ct ? { 'content-type': ct } : {}), false, String(ct));
  });

  it("maps local reply statuses the way Envoy's httpToGrpcStatus does", () => {
    const table: Array<[number, number]> = [
      [400, 13],
      [401, 16],
      [403, 7],
      [404, 12],
      [429, 14],
      [502, 14],
      [503, 14],
      [504, 14],
      [500, 2],
      [421, 2],
    ];
    for (const [http, grpc] of table) assert.equal(httpToGrpcStatus(http), grpc, String(http));
  });

  it('reads grpc-timeout in every unit and ignores malformed values', () => {
    assert.equal(grpcTimeoutMs({ 'grpc-timeout': '1H' }), 3_600_000);
    assert.equal(grpcTimeoutMs({ 'grpc-timeout': '2M' }), 120_000);
    assert.equal(grpcTimeoutMs({ 'grpc-timeout': '3S' }), 3000);
    assert.equal(grpcTimeoutMs({ 'grpc-timeout': '250m' }), 250);
    assert.equal(grpcTimeoutMs({ 'grpc-timeout': '1500u' }), 2);
    assert.equal(grpcTimeoutMs({ 'grpc-timeout': '5n' }), 1);
    assert.equal(grpcTimeoutMs({ 'grpc-timeout': '0m' }), 0);
    for (const bad of ['', '10', 'm', '123456789S', '1.5S', '10s', '-1S']) assert.equal(grpcTimeoutMs({ 'grpc-timeout': bad }), undefined, bad);
  });

  it('lets grpc-timeout shorten the route timeout, and alone bound a route without one', () => {
    assert.equal(boundedByGrpcTimeout(0, { 'grpc-timeout': '300m' }), 300);
    assert.equal(boundedByGrpcTimeout(1000, { 'grpc-timeout': '300m' }), 300);
    assert.equal(boundedByGrpcTimeout(200, { 'grpc-timeout': '300m' }), 200);
    assert.equal(boundedByGrpcTimeout(1000, {}), 1000);
    assert.equal(boundedByGrpcTimeout(0, {}), 0);
    assert.equal(boundedByGrpcTimeout(500, { 'grpc-timeout': 'soon' }), 500);
  });

  it('percent-encodes grpc-message outside printable ASCII, and % itself', () => {
    assert.equal(encodeGrpcMessage('upstream request timeout'), 'upstream request timeout');
    assert.equal(encodeGrpcMessage('50% caf\u00e9\n'), '50%25 caf%C3%A9%0A');
  });
});

describe('h2c prior knowledge sniff', () => {
  it('decides on the first differing byte, and on the whole preface', () => {
    assert.equal(sniffPreface(Buffer.from('GET / HTTP/1.1\r\n')), 'http1');
    assert.equal(sniffPreface(Buffer.from('P')), undefined);
    assert.equal(sniffPreface(Buffer.from('PRI * HTTP/2.0\r\n')), undefined);
    assert.equal(sniffPreface(Buffer.from('POST / HTTP/1.1')), 'http1');
    assert.equal(sniffPreface(Buffer.from('PRI * HTTP/1.1\r\n')), 'http1');
    assert.equal(sniffPreface(H2_PREFACE), 'h2');
    assert.equal(sniffPreface(Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0, 4])])), 'h2');
  });
});

describe('which upstreams speak HTTP/2', () => {
  const cluster = (protocol: string, h2UpgradePolicy?: string) => ({ port: { protocol }, policy: h2UpgradePolicy ? { connectionPool: { http: { h2UpgradePolicy } } } : {} });
  it('ports declared grpc or http2 (by name or appProtocol), and HTTP ports a DestinationRule upgrades', () => {
    for (const [name, appProtocol] of [
      ['grpc', undefined],
      ['grpc-api', undefined],
      ['http2', undefined],
      ['http2-web', undefined],
      ['web', 'grpc'],
      ['web', 'http2'],
      ['web', 'kubernetes.io/h2c'],
    ] as const) {
      assert.equal(speaksH2(cluster(kubePortProtocol(name, appProtocol, 'TCP'))), true, `${name} ${appProtocol}`);
    }
    assert.equal(speaksH2(cluster(kubePortProtocol('http', undefined, 'TCP'))), false);
    assert.equal(speaksH2(cluster(kubePortProtocol('grpc-web', undefined, 'TCP'))), false);
    assert.equal(speaksH2(cluster('HTTP', 'UPGRADE')), true);
    assert.equal(speaksH2(cluster('HTTP', 'DO_NOT_UPGRADE')), false);
    assert.equal(speaksH2(cluster('TCP', 'UPGRADE')), false);
  });

  it("a port left to detection speaks the client's protocol on a sidecar, not on a gateway; so does useClientProtocol", () => {
    const req = (major: number) => ({ httpVersionMajor: major }) as IncomingMessage;
    assert.equal(clusterProtocol(cluster('UNKNOWN'), true), 'downstream');
    assert.equal(clusterProtocol(cluster('UNKNOWN'), false), 'http1');
    assert.equal(clusterProtocol(cluster('HTTP'), true), 'http1');
    assert.equal(clusterProtocol(cluster('GRPC'), false), 'h2');
    assert.equal(clusterProtocol({ port: { protocol: 'HTTP' }, policy: { connectionPool: { http: { useClientProtocol: true } } } }, false), 'downstream');
    assert.deepEqual([upstreamH2('downstream', req(2)), upstreamH2('downstream', req(1)), upstreamH2('h2', req(1)), upstreamH2('http1', req(2))], [true, false, true, false]);
    // A sidecar's inbound cluster for the app's port.
    assert.deepEqual(['GRPC', 'HTTP2', 'UNKNOWN', 'HTTP', 'GRPC-WEB'].map(appPortProtocol), ['h2', 'h2', 'http1', 'http1', 'http1']);
  });
});
