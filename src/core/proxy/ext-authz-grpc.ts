// The check with an envoyExtAuthzGrpc provider: Envoy's `envoy.service.auth.v3.Authorization/Check`
// call over HTTP/2 (the pools' sessions, with Istio mTLS when the authorizer runs a sidecar), its
// CheckRequest carrying the request's attributes: the peers (address, port, SPIFFE principal) and
// the HTTP request with all its headers, pseudo-headers included, as Envoy sends a gRPC authorizer,
// and the body when the provider asks for it (`body`, or `raw_body` bytes with packAsBytes).
// The answer: status OK allows (OkHttpResponse headers onto the upstream request, headers_to_remove
// taken off it, response_headers_to_add onto the client's response); any other status denies with
// DeniedHttpResponse's status (403 when unset), headers and body; a call that fails (connection,
// timeout, a gRPC error status, bytes that are not a CheckResponse) is an error.

import { constants } from 'node:http2';
import type { ExtAuthzGrpcProvider } from '../policy/ext-authz-providers.js';
import { authorizerEndpoint, PARTIAL_BODY_HEADER, type CheckContext, type CheckOutcome, type CheckSubject } from './ext-authz-check.js';
import { decodeCheckResponse, encodeCheckRequest, type CheckAnswer, type HeaderOption } from './ext-authz-wire.js';

const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';
/** An answer larger than this is not a CheckResponse worth reading. */
const MAX_ANSWER_BYTES = 1024 * 1024;

export function checkGrpc(provider: ExtAuthzGrpcProvider, subject: CheckSubject, ctx: CheckContext): Promise<CheckOutcome> {
  const target = authorizerEndpoint(provider, subject, ctx.identity);
  if (!target.ok) return Promise.resolve({ kind: 'error', reason: target.reason });
  const message = encodeCheckRequest(attributesOf(subject, provider.body?.packAsBytes === true));
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  const headers = {
    ':method': 'POST',
    ':path': CHECK_PATH,
    ':authority': provider.cluster.service.hostname,
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-timeout': `${provider.timeoutMs}m`,
  };
  return new Promise((resolve) => {
    const opened = ctx.pools.h2Request(target.key, target.tls, provider.cluster.traffic?.limits, headers);
    if (!opened.ok) return resolve({ kind: 'error', reason: opened.error.message });
    const stream = opened.stream;
    const chunks: Buffer[] = [];
    let bytes = 0;
    let grpcStatus: string | undefined;
    let httpStatus = 0;
    let settled = false;
    const settle = (o: CheckOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
      resolve(o);
    };
    const timer = setTimeout(() => settle({ kind: 'error', reason: 'timeout' }), provider.timeoutMs);
    stream.on('response', (h) => {
      httpStatus = Number(h[':status'] ?? 0);
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    stream.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined) grpcStatus = String(t['grpc-status']);
    });
    stream.on('data', (c: Buffer) => {
      bytes += c.length;
      if (bytes > MAX_ANSWER_BYTES) return settle({ kind: 'error', reason: 'answer_too_large' });
      chunks.push(c);
    });
    stream.on('error', (err: Error) => settle({ kind: 'error', reason: (err as NodeJS.ErrnoException).code ?? err.message }));
    stream.on('close', () => {
      if (httpStatus !== 200) return settle({ kind: 'error', reason: `authorizer_http_status_${httpStatus}` });
      if (grpcStatus !== '0') return settle({ kind: 'error', reason: `authorizer_grpc_status_${grpcStatus ?? 'missing'}` });
      const body = Buffer.concat(chunks);
      if (body.length < 5 || body.length < 5 + body.readUInt32BE(1) || body[0] !== 0) return settle({ kind: 'error', reason: 'malformed_check_response' });
      try {
        settle(outcomeOf(decodeCheckResponse(body.subarray(5, 5 + body.readUInt32BE(1)))));
      } catch {
        settle({ kind: 'error', reason: 'malformed_check_response' });
      }
    });
    stream.end(frame);
  });
}

function attributesOf(s: CheckSubject, packAsBytes: boolean): Parameters<typeof encodeCheckRequest>[0] {
  const headers: Array<[string, string]> = [[':authority', s.authority], [':method', s.method], [':path', s.path]];
  for (const name in s.headers) {
    const v = s.headers[name];
    if (v === undefined || name === 'host' || name.charCodeAt(0) === 58) continue;
    headers.push([name, Array.isArray(v) ? v.join(',') : v]);
  }
  const body = s.body;
  // Envoy adds whether the body was cut to the headers it reports (x-envoy-auth-partial-body).
  if (body) headers.push([PARTIAL_BODY_HEADER, String(body.partial)]);
  const length = Number(s.headers['content-length']);
  return {
    source: { address: s.sourceIp, port: s.peer?.sourcePort ?? 0, principal: s.peer?.sourcePrincipal },
    destination: { address: s.peer?.destinationAddress ?? '', port: s.peer?.destinationPort ?? 0, principal: s.peer?.destinationPrincipal },
    timeMs: Date.now(),
    http: {
      id: s.peer?.requestId ?? '',
      method: s.method,
      headers,
      path: s.path,
      host: s.authority,
      scheme: s.peer?.scheme ?? 'http',
      size: Number.isFinite(length) && length > 0 ? length : undefined,
      protocol: s.peer?.protocol ?? 'HTTP/1.1',
      ...(body ? { body: body.bytes, packAsBytes: packAsBytes } : {}),
    },
  };
}

function outcomeOf(a: CheckAnswer): CheckOutcome {
  if (a.code !== 0) return { kind: 'deny', status: a.deniedStatus || 403, body: a.deniedBody, headers: merged(a.headers) };
  const remove = a.headersToRemove.filter((name) => name !== 'host' && name.charCodeAt(0) !== 58);
  return {
    kind: 'allow',
    upstream: merged(a.headers.filter((o) => !o.append)),
    upstreamAppend: merged(a.headers.filter((o) => o.append)),
    ...(remove.length > 0 ? { remove } : {}),
    downstream: merged(a.responseHeaders),
  };
}

/** HeaderValueOptions as one header set; a name given twice keeps both values. */
function merged(options: readonly HeaderOption[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const o of options) {
    const cur = out[o.key];
    out[o.key] = cur === undefined ? o.value : [...(Array.isArray(cur) ? cur : [cur]), o.value];
  }
  return out;
}
