// A span per request, as Envoy's tracer makes one in every proxy of Istio: the caller's context is
// honoured (its sampling decision included), a new trace is sampled at the configured percentage,
// this proxy's span becomes the parent of the upstream request (trace-context.ts rewrites the
// request's headers, so whatever sends it upstream carries it), and the span is ended from the
// same request record the access log and the metrics use, with Istio's span name and tags.
// Spans go out with OpenTelemetry's SDK, batched off the request path by its batch span processor,
// through one of three exporters: OTLP over gRPC to an `opentelemetry` provider without `http` (as
// Istio reads it), OTLP/HTTP to one with `http`, Zipkin's JSON to a `zipkin` one.

import { nodeIdOf } from './workload.js';
import { randomFillSync } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type { Attributes, SpanContext } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { FinishedSpan, type SpanStart } from './finished-span.js';
import type { RequestRecord } from './access-log.js';
import type { ServiceName } from './istio-metrics.js';
import { extractContext, injectContext, samplingOnly } from './trace-context.js';
import type { TelemetryPolicy, TraceProvider } from './telemetry-policy.js';
import { customTagValues } from './trace-custom-tags.js';
import type { WorkloadInfo } from './workload.js';
import { reportingFailures, settledWithin, type EventLog } from './export-failures.js';
import { whenNeeded } from '../runtime/when-needed.js';

/** OpenTelemetry's API and SDK, the same copies an import would give (they are CommonJS packages). */
interface Otel {
  readonly api: typeof import('@opentelemetry/api');
  readonly core: typeof import('@opentelemetry/core');
  readonly resources: typeof import('@opentelemetry/resources');
  readonly sdk: typeof import('@opentelemetry/sdk-trace-base');
  /** An OTLP/HTTP (JSON) span exporter to this URL with these headers (and timeout). */
  readonly otlpExporter: (url: string, headers: Record<string, string>, timeoutMs?: number) => SpanExporter;
}

let otelLoaded: Otel | undefined;

// OpenTelemetry's OTLP/gRPC span exporter, loaded with the first gRPC provider only (otlp-grpc.ts).
const otlpGrpc = whenNeeded<typeof import('./otlp-grpc.js')>('./otlp-grpc.js', import.meta.url);

// Loaded when a policy that exports spans comes into force, not when the proxy starts: most proxies
// export no traces, and the SDK with its exporter is some 150 modules a sidecar would otherwise hold
// for nothing.
function otel(): Otel {
  if (!otelLoaded) {
    const require = createRequire(import.meta.url);
    otelLoaded = {
      api: require('@opentelemetry/api'),
      core: require('@opentelemetry/core'),
      resources: require('@opentelemetry/resources'),
      sdk: require('@opentelemetry/sdk-trace-base'),
      otlpExporter: otlpExporterFactory(require),
    };
  }
  return otelLoaded;
}

/**
 * The OTLP/HTTP exporter made of the pieces it is built from (the exporter base, its node:http
 * transport, the JSON span serializer), as @opentelemetry/exporter-trace-otlp-http's own class
 * does with the same calls and arguments. That package's entry point loads the whole of
 * otlp-transformer with it: the metrics SDK, the logs API and protobufjs, some 100 modules and 2 MB
 * of heap a proxy that sends JSON spans never uses, and every major GC marks. Should the pieces
 * move in a later version, the package's own class is used instead.
 */
function otlpExporterFactory(require: NodeJS.Require): Otel['otlpExporter'] {
  try {
    const base: typeof import('@opentelemetry/otlp-exporter-base') = require('@opentelemetry/otlp-exporter-base');
    const http: typeof import('@opentelemetry/otlp-exporter-base/node-http') = require('@opentelemetry/otlp-exporter-base/node-http');
    const { JsonTraceSerializer } = require('@opentelemetry/otlp-transformer/build/src/trace/json') as Pick<typeof import('@opentelemetry/otlp-transformer'), 'JsonTraceSerializer'>;
    if (!base.OTLPExporterBase || !http.createOtlpHttpExportDelegate || !http.convertLegacyHttpOptions || !JsonTraceSerializer) throw new Error('moved');
    return (url, headers, timeoutMs) =>
      new base.OTLPExporterBase(http.createOtlpHttpExportDelegate(http.convertLegacyHttpOptions({ url, headers, ...(timeoutMs !== undefined ? { timeoutMillis: timeoutMs } : {}) }, 'TRACES', 'v1/traces', { 'Content-Type': 'application/json' }), JsonTraceSerializer));
  } catch {
    const { OTLPTraceExporter }: typeof import('@opentelemetry/exporter-trace-otlp-http') = require('@opentelemetry/exporter-trace-otlp-http');
    return (url, headers, timeoutMs) => new OTLPTraceExporter({ url, headers, ...(timeoutMs !== undefined ? { timeoutMillis: timeoutMs } : {}) });
  }
}

// Every request gets ids, sampled or not: taken from a pool filled 4 KB at a time (as crypto.randomUUID
// does) rather than one call into OpenSSL per id, which was a few percent of a sidecar's CPU.
const idPool = Buffer.alloc(4096);
let idPoolAt = idPool.length;

function randomHex(bytes: number): string {
  if (idPoolAt + bytes > idPool.length) {
    randomFillSync(idPool);
    idPoolAt = 0;
  }
  idPoolAt += bytes;
  return idPool.toString('hex', idPoolAt - bytes, idPoolAt);
}

/** `address:port` without `:port` (the digits after the last colon, when there are some). */
function withoutPort(addressPort: string): string {
  const colon = addressPort.lastIndexOf(':');
  if (colon < 0 || colon === addressPort.length - 1) return addressPort;
  for (let i = colon + 1; i < addressPort.length; i++) {
    const c = addressPort.charCodeAt(i);
    if (c < 48 || c > 57) return addressPort;
  }
  return addressPort.slice(0, colon);
}

export interface TracerOptions {
  readonly self: WorkloadInfo;
  readonly role: 'gateway' | 'sidecar';
  /** The policy in force (telemetry-policy.ts), read per request. */
  readonly policy: () => TelemetryPolicy;
  readonly selfService?: () => ServiceName | undefined;
  readonly random?: () => number;
  /** Where an exporter's failures are said (rate-limited: export-failures.ts). */
  readonly events?: EventLog;
}

/** A provider's span processor (the SDK's batch processor, its exporter behind it) and the resource its spans carry. */
interface Exporting {
  readonly processor: SpanProcessor;
  readonly resource: Resource;
}

/** The instrumentation scope of every span, as the SDK's getTracer('meshgate') named it. */
const SCOPE = Object.freeze({ name: 'meshgate', version: undefined, schemaUrl: undefined });

export class ProxyTracer {
  readonly #o: TracerOptions;
  readonly #random: () => number;
  readonly #nodeId: string;
  readonly #exporters = new Map<string, Exporting>();
  #closed = false;

  constructor(o: TracerOptions) {
    this.#o = o;
    this.#random = o.random ?? Math.random;
    this.#nodeId = nodeIdOf(o.role, o.self);
  }

  /** At the start of a request: decide, start the span, and make it the upstream's parent. */
  start(req: IncomingMessage, record: RequestRecord): void {
    const headers = req.headers;
    const parent = extractContext(headers);
    const policy = this.#o.policy();
    const sampled = parent?.sampled ?? samplingOnly(headers) ?? this.#random() * 100 < policy.samplingPercent;
    const exporting = sampled && policy.traceProvider ? this.#exporterFor(policy.traceProvider) : undefined;
    if (!exporting) {
      // Not recorded here, but the trace goes on: the next hop sees the same trace and decision. A
      // new trace takes both ids from one read of the pool.
      let traceId: string;
      let spanId: string;
      if (parent) {
        traceId = parent.traceId;
        spanId = randomHex(8);
      } else {
        const ids = randomHex(24);
        traceId = ids.slice(0, 32);
        spanId = ids.slice(32);
      }
      injectContext(headers, { traceId, spanId, sampled, tracestate: parent?.tracestate }, parent?.spanId);
      return;
    }
    // Sampled: the ids and the caller's context now, the span itself when the request ends (finished-span.ts).
    const { SpanKind, TraceFlags, createTraceState, trace } = otel().api;
    let caller: SpanContext | undefined;
    if (parent) {
      const c: SpanContext = { traceId: parent.traceId, spanId: parent.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true, ...(parent.tracestate ? { traceState: createTraceState(parent.tracestate) } : {}) };
      // A context the SDK would not take as a parent (an all-zero span id in B3) starts a new trace, as it did.
      if (trace.isSpanContextValid(c)) caller = c;
    }
    const spanId = randomHex(8);
    const traceId = caller?.traceId ?? randomHex(16);
    const start: SpanStart = {
      context: { traceId, spanId, traceFlags: TraceFlags.SAMPLED, ...(caller?.traceState ? { traceState: caller.traceState } : {}) },
      parent: caller,
      kind: record.reporter === 'destination' ? SpanKind.SERVER : SpanKind.CLIENT,
      startTime: record.startTime,
    };
    // Header tags read the request as it arrived, before this proxy rewrites its trace headers.
    const custom = policy.traceCustomTags ? customTagValues(policy.traceCustomTags, headers) : undefined;
    injectContext(headers, { traceId, spanId, sampled: true, tracestate: parent?.tracestate }, parent?.spanId);
    record.span = { end: (r) => this.#end(exporting, start, r, custom) };
  }

  #end(exporting: Exporting, start: SpanStart, r: RequestRecord, custom: Record<string, string> | undefined): void {
    const self = this.#o.self;
    const cluster = r.upstreamCluster;
    const server = r.reporter === 'destination';
    let name: string;
    if (cluster?.startsWith('outbound|')) {
      const [, port, , host] = cluster.split('|');
      name = `${host}:${port}/*`;
    } else if (server) {
      const svc = this.#o.selfService?.();
      name = `${svc?.host ?? r.authority}:${cluster?.split('|')[1] ?? ''}/*`;
    } else name = `${r.authority}/*`;
    // One literal of fixed keys, the optional ones added after: a spread of a conditional object
    // made it a copy through the generic path each time, and a regex ran for the port.
    const attributes: Attributes = {
      'istio.canonical_service': self.canonicalService ?? self.workload,
      'istio.canonical_revision': self.canonicalRevision ?? 'latest',
      'istio.mesh_id': 'cluster.local',
      'istio.namespace': self.namespace,
      node_id: this.#nodeId,
      component: 'proxy',
      'guid:x-request-id': r.requestId,
      // Envoy's tracer names the path the client asked for (x-envoy-original-path when rewritten),
      // cut to its max_path_tag_length: a client's 60 KiB path must not make every span 60 KiB.
      'http.url': `http://${r.authority}${pathTag(r.originalPath ?? r.path)}`,
      'http.method': r.method,
      'http.protocol': r.protocol,
      'http.status_code': String(r.responseCode),
      response_flags: r.flags || '-',
      request_size: String(r.bytesReceived),
      response_size: String(r.bytesSent),
      upstream_cluster: cluster ?? '-',
      'upstream_cluster.name': cluster ?? '-',
      downstream_cluster: '-',
      'peer.address': withoutPort(r.downstreamRemoteAddress),
    };
    if (r.userAgent) attributes['user_agent'] = r.userAgent;
    const { api: { SpanStatusCode }, core: { hrTimeDuration, millisToHrTime } } = otel();
    // Envoy marks 5xx answers (and no answer) as errors.
    const error = r.responseCode >= 500 || r.responseCode === 0;
    if (error) attributes['error'] = true;
    // Istio's tracing tags for the RBAC filter's shadow result, one pair per dry-run action.
    for (const d of r.rbacDryRun?.results ?? []) {
      if (d.rule) attributes[`istio.authorization.dry_run.${d.action}_policy.name`] = d.rule;
      attributes[`istio.authorization.dry_run.${d.action}_policy.result`] = d.result;
    }
    if (custom) Object.assign(attributes, custom);
    const status = { code: error ? SpanStatusCode.ERROR : SpanStatusCode.UNSET };
    exporting.processor.onEnd(new FinishedSpan(start, { name, attributes, status, durationMs: r.durationMs, resource: exporting.resource, scope: SCOPE, millisToHrTime, hrTimeDuration }));
  }

  /**
   * Loads the SDK and opens the provider's exporter ahead of the first sampled request, off the
   * request path: loading some 230 modules inside a request held that request and every other one
   * behind it. Called when a policy that will export spans comes into force.
   */
  prepare(p: TraceProvider): void {
    if (!this.#closed) this.#exporterFor(p);
  }

  #exporterFor(p: TraceProvider): Exporting {
    const key = `${p.kind} ${p.protocol} ${p.url} ${JSON.stringify(p.headers)} ${p.timeoutMs ?? ''}`;
    let e = this.#exporters.get(key);
    if (!e) {
      const { otlpExporter, resources: { resourceFromAttributes }, sdk: { BatchSpanProcessor } } = otel();
      const exporter: SpanExporter = p.kind === 'zipkin'
        ? new ZipkinJsonExporter(p.url, this.#o.self.canonicalService ?? this.#o.self.workload)
        : p.protocol === 'grpc'
          ? otlpGrpc().otlpGrpcSpanExporter(p.url, p.headers, p.timeoutMs)
          : otlpExporter(p.url, { ...p.headers }, p.timeoutMs);
      e = {
        processor: new BatchSpanProcessor(reportingFailures(exporter, 'span', p.url, this.#o.events), { scheduledDelayMillis: 1000, ...(p.timeoutMs !== undefined ? { exportTimeoutMillis: p.timeoutMs } : {}) }),
        resource: resourceFromAttributes({ 'service.name': `${this.#o.self.canonicalService ?? this.#o.self.workload}.${this.#o.self.namespace}` }),
      };
      this.#exporters.set(key, e);
    }
    return e;
  }

  /** Sends what is batched (close, tests). */
  async flush(): Promise<void> {
    await Promise.all([...this.#exporters.values()].map((e) => e.processor.forceFlush().catch(() => undefined)));
  }

  async close(): Promise<void> {
    this.#closed = true;
    await settledWithin(Promise.all([...this.#exporters.values()].map((e) => e.processor.shutdown().catch(() => undefined))));
    this.#exporters.clear();
  }
}

/** Zipkin v2 JSON over HTTP, for an Istio `zipkin` extension provider. */
class ZipkinJsonExporter implements SpanExporter {
  constructor(
    private readonly url: string,
    private readonly serviceName: string,
  ) {}

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const micros = (t: [number, number]): number => Math.round(t[0] * 1e6 + t[1] / 1e3);
    const body = spans.map((s) => ({
      traceId: s.spanContext().traceId,
      id: s.spanContext().spanId,
      ...(s.parentSpanContext?.spanId ? { parentId: s.parentSpanContext.spanId } : {}),
      name: s.name,
      kind: s.kind === otel().api.SpanKind.SERVER ? 'SERVER' : 'CLIENT',
      timestamp: micros(s.startTime),
      duration: Math.max(1, micros(s.duration)),
      localEndpoint: { serviceName: this.serviceName },
      tags: Object.fromEntries(Object.entries(s.attributes).map(([k, v]) => [k, String(v)])),
    }));
    const { ExportResultCode } = otel().core;
    fetch(this.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(
      (r) => done({ code: r.ok ? ExportResultCode.SUCCESS : ExportResultCode.FAILED }),
      (err: unknown) => done({ code: ExportResultCode.FAILED, error: err as Error }),
    );
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Envoy's DefaultMaxPathTagLength (Istio's `tracing.maxPathTagLength` default). */
const MAX_PATH_TAG_LENGTH = 256;

function pathTag(path: string): string {
  return path.length > MAX_PATH_TAG_LENGTH ? path.slice(0, MAX_PATH_TAG_LENGTH) : path;
}
