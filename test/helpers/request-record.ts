// A finished request's record as the access log, the metrics and the span read it, for tests of the
// formats and policies that need no proxy: Istio's task request (curl to httpbin, answered 418).

import type { IncomingMessage } from 'node:http';
import type { RequestRecord } from '../../src/core/telemetry/access-log.js';

export const sampleRecord = (over: Partial<RequestRecord> = {}): RequestRecord =>
  ({
    startTime: new Date('2026-12-07T10:11:12.345Z'),
    method: 'GET',
    path: '/status/418?x=1',
    protocol: 'HTTP/1.1',
    responseCode: 418,
    flags: '-',
    details: 'via_upstream',
    bytesReceived: 0,
    bytesSent: 135,
    durationMs: 4,
    upstreamServiceTime: 3,
    userAgent: 'curl/8',
    requestId: 'rid-1',
    authority: 'httpbin:8000',
    upstreamHost: '10.44.1.27:80',
    upstreamCluster: 'outbound|8000||httpbin.foo.svc.cluster.local',
    routeName: 'default',
    downstreamRemoteAddress: '10.44.1.23:46520',
    reporter: 'source',
    grpc: false,
    request: { headers: { 'x-tenant': 'blue', traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` }, socket: { localAddress: '10.0.45.184', localPort: 8000 } } as unknown as IncomingMessage,
    ...over,
  }) as RequestRecord;
