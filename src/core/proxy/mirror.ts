// Traffic mirroring (VirtualService `mirror`/`mirrors`, docs/reference/routing.md): a copy of the request, as it
// goes upstream, is sent to each mirror destination at its percentage, with its Host unchanged: Istio
// ≥ 1.28 no longer appends Envoy's `-shadow` suffix (DISABLE_SHADOW_HOST_SUFFIX). Fire-and-forget:
// the answer is read and thrown away, failures are swallowed, and nothing here can delay or fail the
// main request.
//
// Bodies: the main request streams its body to its own upstream, so a copy exists only when the body
// was small enough to be held in memory (the same limit as retry replay). forward() therefore mirrors
// requests without a body, or with a body it buffered, and skips mirroring the others rather than
// sending the mirror a truncated or empty body.

import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { constants } from 'node:http2';
import type { IdentityProvider } from '../pki/types.js';
import { endpointPort } from '../registry/types.js';
import type { MirrorPolicy } from '../routing/types.js';
import { decideUpstreamTls } from '../tls/upstream-tls.js';
import { UpstreamPools } from './upstream-pools.js';
import { speaksH2 } from './upstream-protocol.js';

const MILLION = 1_000_000;

export interface MirrorRequest {
  readonly path: string;
  readonly method: string;
  /** The headers as sent to the main upstream (route header rules applied). */
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly body?: Buffer;
}

export interface MirrorContext {
  readonly pools: UpstreamPools;
  readonly random: () => number;
  readonly identity?: IdentityProvider;
  /** For the mirror cluster's load balancer (hash policies). */
  readonly requestHeaders: IncomingHttpHeaders;
  readonly sourceIp: string;
  readonly query: ReadonlyMap<string, string>;
  /** The route timeout also bounds a mirrored request; 0 = none (as for the main request). */
  readonly timeoutMs: number;
}

/** Starts the mirrored copies that this request draws; returns at once. */
export function sendMirrors(mirrors: readonly MirrorPolicy[], req: MirrorRequest, ctx: MirrorContext): void {
  for (const m of mirrors) {
    if (m.chance < MILLION && Math.floor(ctx.random() * MILLION) >= m.chance) continue;
    try {
      mirrorOnce(m, req, ctx);
    } catch {
      /* pools closing, no endpoint, bad TLS material: the mirror just does not get this request */
    }
  }
}

function mirrorOnce(m: MirrorPolicy, req: MirrorRequest, ctx: MirrorContext): void {
  const cluster = m.cluster;
  if (!cluster || cluster.endpoints.length === 0) return;
  const pick = cluster.lb.pick({ headers: ctx.requestHeaders, sourceIp: ctx.sourceIp, query: ctx.query });
  if (!pick) return;
  const host = String(req.headers.host ?? '');
  const tls = decideUpstreamTls(cluster, pick.endpoint, ctx.identity, host);
  if (!tls.ok) return;
  const key = UpstreamPools.key(pick.endpoint.address, endpointPort(pick.endpoint, cluster.port));
  const headers = { ...req.headers, host };
  if (speaksH2(cluster)) return mirrorH2(key, tls.profile, cluster.traffic?.limits, headers, req, ctx);

  const lease = ctx.pools.acquire(key, tls.profile);
  let controller: Dispatcher.DispatchController | undefined;
  let timer: NodeJS.Timeout | undefined;
  const done = (): void => {
    clearTimeout(timer);
    lease.end();
  };
  if (ctx.timeoutMs > 0) timer = setTimeout(() => controller?.abort(new Error('mirror timeout')), ctx.timeoutMs);
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
    },
    onResponseStart() {},
    onResponseData() {},
    onResponseEnd: done,
    onResponseError: done,
  };
  try {
    lease.pool.dispatch({ path: req.path, method: req.method as Dispatcher.HttpMethod, headers, body: req.body ?? null }, handler);
  } catch {
    done();
  }
}

function mirrorH2(
  key: string,
  profile: Parameters<UpstreamPools['h2Request']>[1],
  limits: Parameters<UpstreamPools['h2Request']>[2],
  headers: Record<string, string | string[]>,
  req: MirrorRequest,
  ctx: MirrorContext,
): void {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) if (k !== 'host') out[k] = v;
  out[':method'] = req.method;
  out[':path'] = req.path;
  out[':authority'] = String(headers.host);
  const opened = ctx.pools.h2Request(key, profile, limits, out);
  if (!opened.ok) return;
  const stream = opened.stream;
  stream.on('error', () => undefined);
  stream.resume();
  if (ctx.timeoutMs > 0) {
    const timer = setTimeout(() => stream.close(constants.NGHTTP2_CANCEL), ctx.timeoutMs);
    stream.on('close', () => clearTimeout(timer));
  }
  stream.end(req.body);
}
