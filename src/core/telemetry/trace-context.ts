// Trace context on the wire, as Envoy reads and writes it: W3C `traceparent`/`tracestate` and Zipkin
// B3 (`x-b3-traceid`, `x-b3-spanid`, `x-b3-parentspanid`, `x-b3-sampled`, `x-b3-flags`, and the single
// `b3` header). A proxy reads the caller's context, makes its own span the parent of what goes
// upstream, and writes that into the request's headers, so every way a request leaves (forward,
// relay to the app, upgrades) carries it without further code.

import type { IncomingHttpHeaders } from 'node:http';

export interface TraceContext {
  /** 32 lower-case hex digits. */
  readonly traceId: string;
  /** 16 lower-case hex digits. */
  readonly spanId: string;
  /** undefined when the caller made no sampling decision (B3 without x-b3-sampled). */
  readonly sampled?: boolean;
  readonly tracestate?: string;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const ZERO32 = '0'.repeat(32);
const ZERO16 = '0'.repeat(16);

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** A 64-bit B3 trace id is the low half of a 128-bit one. */
function traceId128(id: string): string | undefined {
  const lower = id.toLowerCase();
  if (HEX32.test(lower)) return lower === ZERO32 ? undefined : lower;
  if (HEX16.test(lower)) return lower === ZERO16 ? undefined : ZERO16 + lower;
  return undefined;
}

function sampledOf(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === '1' || v === 'true' || v === 'd') return true;
  if (v === '0' || v === 'false') return false;
  return undefined;
}

/** The caller's context: traceparent first, then single b3, then the x-b3-* headers. Invalid ones are ignored. */
export function extractContext(headers: IncomingHttpHeaders): TraceContext | undefined {
  const tp = one(headers['traceparent']);
  if (tp) {
    const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(tp.trim().toLowerCase());
    if (m && m[1] !== 'ff' && m[2] !== ZERO32 && m[3] !== ZERO16) {
      const state = one(headers['tracestate']);
      return { traceId: m[2]!, spanId: m[3]!, sampled: (parseInt(m[4]!, 16) & 1) === 1, ...(state ? { tracestate: state } : {}) };
    }
  }
  const b3 = one(headers['b3']);
  if (b3) {
    const parts = b3.trim().split('-');
    if (parts.length === 1) {
      // `b3: 0` / `b3: 1` / `b3: d`: a sampling decision alone, no context.
      const sampled = sampledOf(parts[0]);
      if (sampled !== undefined) return undefined;
    } else {
      const traceId = traceId128(parts[0] ?? '');
      const spanId = parts[1]?.toLowerCase();
      if (traceId && spanId && HEX16.test(spanId)) {
        const sampled = sampledOf(parts[2]);
        return { traceId, spanId, ...(sampled !== undefined ? { sampled } : {}) };
      }
    }
  }
  const tid = one(headers['x-b3-traceid']);
  const sid = one(headers['x-b3-spanid'])?.toLowerCase();
  if (tid && sid) {
    const traceId = traceId128(tid);
    if (traceId && HEX16.test(sid)) {
      const sampled = one(headers['x-b3-flags']) === '1' ? true : sampledOf(one(headers['x-b3-sampled']));
      return { traceId, spanId: sid, ...(sampled !== undefined ? { sampled } : {}) };
    }
  }
  return undefined;
}

/** A sampling decision without a context (`x-b3-sampled: 0` alone, `b3: 0`), which Envoy honours too. */
export function samplingOnly(headers: IncomingHttpHeaders): boolean | undefined {
  const b3 = one(headers['b3']);
  if (b3 && !b3.includes('-')) return sampledOf(b3.trim());
  return sampledOf(one(headers['x-b3-sampled']));
}

/**
 * Writes this proxy's span as the parent of the upstream request into the headers (both formats,
 * as Envoy does with B3 and W3C enabled); `parentSpanId` is the caller's span, when there was one.
 */
export function injectContext(headers: IncomingHttpHeaders, ctx: { traceId: string; spanId: string; sampled: boolean; tracestate?: string }, parentSpanId: string | undefined): void {
  const flag = ctx.sampled ? '1' : '0';
  headers['traceparent'] = `00-${ctx.traceId}-${ctx.spanId}-0${flag}`;
  if (ctx.tracestate) headers['tracestate'] = ctx.tracestate;
  headers['x-b3-traceid'] = ctx.traceId;
  headers['x-b3-spanid'] = ctx.spanId;
  if (parentSpanId) headers['x-b3-parentspanid'] = parentSpanId;
  else delete headers['x-b3-parentspanid'];
  headers['x-b3-sampled'] = flag;
  delete headers['x-b3-flags'];
  if (headers['b3'] !== undefined) headers['b3'] = `${ctx.traceId}-${ctx.spanId}-${flag}${parentSpanId ? `-${parentSpanId}` : ''}`;
}
