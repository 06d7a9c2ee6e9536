// Access-log lines sent to an OpenTelemetry collector, for Istio's `envoyOtelAls` provider: each line
// becomes one OTLP log record, sent over gRPC as Envoy's OpenTelemetry access logger sends it. The
// record's body is the provider's `logFormat.text` (Istio's default text format when unset), its
// attributes are `logFormat.labels` with their operators evaluated (access-log-format.ts, the same
// record the proxy's own log writes), its time is the request's start, and it carries the request's
// trace and span ids. The resource says which log and proxy it comes from (`log_name`,
// `cluster_name`, `node_name`, `zone_name`), the labels Envoy puts on it.
//
// Records are queued by OpenTelemetry's batch processor and exported off the request path: a
// collector that is slow or gone costs a request one enqueue, the queue is bounded (records past it
// are dropped), and failed exports are said at most once a minute (export-failures.ts).
//
// This module, the logs SDK, its exporter and @grpc/grpc-js are loaded only by a proxy whose
// telemetry policy names such a provider (proxy-telemetry.ts).

import { createRequire } from 'node:module';
import type { Logger, LogAttributes } from '@opentelemetry/api-logs';
import type { LoggerProvider } from '@opentelemetry/sdk-logs';
import { compileFormat, ISTIO_TEXT_FORMAT, type CompiledFormat, type Logged } from './access-log-format.js';
import type { OtelLogProvider } from './access-log-policy.js';
import { reportingFailures, settledWithin, type EventLog } from './export-failures.js';
import { extractContext } from './trace-context.js';
import { nodeIdOf, type WorkloadInfo } from './workload.js';

export interface OtelAccessLogOptions {
  readonly self: WorkloadInfo;
  readonly role: 'gateway' | 'sidecar';
  readonly events?: EventLog;
}

/** One provider's logger, its formats compiled, and the SDK provider to flush and shut down. */
interface Sink {
  readonly provider: LoggerProvider;
  readonly logger: Logger;
  readonly body: CompiledFormat;
  readonly labels: ReadonlyArray<readonly [string, CompiledFormat]>;
}

/** How many records wait for export per collector before new ones are dropped (the SDK's default). */
const MAX_QUEUE = 2048;

export class OtelAccessLogs {
  readonly #o: OtelAccessLogOptions;
  readonly #sinks = new Map<string, Sink>();
  /** Each policy's provider object to its sink: a line finds it without making the key. */
  #byProvider = new WeakMap<OtelLogProvider, Sink>();
  #closed = false;

  constructor(o: OtelAccessLogOptions) {
    this.#o = o;
  }

  /** Opens the provider's exporter ahead of the first line, off the request path. */
  prepare(p: OtelLogProvider): void {
    if (!this.#closed) this.#sinkFor(p);
  }

  write(p: OtelLogProvider, e: Logged): void {
    if (this.#closed) return;
    const sink = this.#sinkFor(p);
    const attributes: LogAttributes = {};
    for (const [key, format] of sink.labels) attributes[key] = format.format(e);
    const trace = 'method' in e && e.request ? extractContext(e.request.headers) : undefined;
    const api = otelApi();
    sink.logger.emit({
      timestamp: e.startTime,
      body: sink.body.format(e),
      attributes,
      ...(trace ? { context: api.trace.setSpanContext(api.ROOT_CONTEXT, { traceId: trace.traceId, spanId: trace.spanId, traceFlags: trace.sampled ? 1 : 0 }) } : {}),
    });
  }

  #sinkFor(p: OtelLogProvider): Sink {
    const known = this.#byProvider.get(p);
    if (known) return known;
    // A new snapshot makes new provider objects: the same settings keep the same exporter and queue.
    const key = `${p.url} ${p.logName} ${p.text ?? ''} ${JSON.stringify(p.labels)}`;
    let sink = this.#sinks.get(key);
    if (!sink) {
      const require = createRequire(import.meta.url);
      const { LoggerProvider, BatchLogRecordProcessor }: typeof import('@opentelemetry/sdk-logs') = require('@opentelemetry/sdk-logs');
      const { OTLPLogExporter }: typeof import('@opentelemetry/exporter-logs-otlp-grpc') = require('@opentelemetry/exporter-logs-otlp-grpc');
      const { resourceFromAttributes }: typeof import('@opentelemetry/resources') = require('@opentelemetry/resources');
      const self = this.#o.self;
      const exporter = reportingFailures(new OTLPLogExporter({ url: p.url }), 'access log', p.url, this.#o.events);
      const provider = new LoggerProvider({
        resource: resourceFromAttributes({
          log_name: p.logName,
          zone_name: '',
          cluster_name: `${self.canonicalService ?? self.workload}.${self.namespace}`,
          node_name: nodeIdOf(this.#o.role, self),
        }),
        processors: [new BatchLogRecordProcessor(exporter, { maxQueueSize: MAX_QUEUE, scheduledDelayMillis: 1000 })],
      });
      sink = {
        provider,
        logger: provider.getLogger('meshgate'),
        body: compileFormat(p.text ?? ISTIO_TEXT_FORMAT),
        labels: Object.entries(p.labels).map(([k, v]) => [k, compileFormat(v)] as const),
      };
      this.#sinks.set(key, sink);
    }
    this.#byProvider.set(p, sink);
    return sink;
  }

  /** Sends what is queued (tests, close). */
  async flush(): Promise<void> {
    await Promise.all([...this.#sinks.values()].map((s) => s.provider.forceFlush().catch(() => undefined)));
  }

  async close(): Promise<void> {
    this.#closed = true;
    await settledWithin(Promise.all([...this.#sinks.values()].map((s) => s.provider.shutdown().catch(() => undefined))));
    this.#sinks.clear();
    this.#byProvider = new WeakMap();
  }
}

let api: typeof import('@opentelemetry/api') | undefined;
function otelApi(): typeof import('@opentelemetry/api') {
  return (api ??= createRequire(import.meta.url)('@opentelemetry/api') as typeof import('@opentelemetry/api'));
}
