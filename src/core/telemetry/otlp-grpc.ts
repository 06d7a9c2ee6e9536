// OpenTelemetry's OTLP/gRPC span exporter for an Istio `opentelemetry` provider without `http`: to
// `http://host:port`, plaintext as the OTLP/HTTP exporter's is, with the provider's `grpc` settings
// (the metadata sent with every export, `initialMetadata`, and the timeout of one export). This
// module, the exporter, protobufjs and @grpc/grpc-js are loaded with the first gRPC provider only:
// a few MB a sidecar that exports no spans over gRPC must not hold (docs/observability.md).

import { createRequire } from 'node:module';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';

export function otlpGrpcSpanExporter(url: string, metadata: Readonly<Record<string, string>>, timeoutMs: number | undefined): SpanExporter {
  const require = createRequire(import.meta.url);
  const { OTLPTraceExporter }: typeof import('@opentelemetry/exporter-trace-otlp-grpc') = require('@opentelemetry/exporter-trace-otlp-grpc');
  return new OTLPTraceExporter({ url, ...grpcOptions(require, metadata, timeoutMs) });
}

/** The exporter's options from a provider's metadata and timeout (@grpc/grpc-js loaded only for metadata). */
function grpcOptions(require: NodeJS.Require, metadata: Readonly<Record<string, string>>, timeoutMs: number | undefined): { metadata?: import('@grpc/grpc-js').Metadata; timeoutMillis?: number } {
  const entries = Object.entries(metadata);
  let md: import('@grpc/grpc-js').Metadata | undefined;
  if (entries.length > 0) {
    const { Metadata }: typeof import('@grpc/grpc-js') = require('@grpc/grpc-js');
    md = new Metadata();
    for (const [k, v] of entries) md.set(k, v);
  }
  return { ...(md ? { metadata: md } : {}), ...(timeoutMs !== undefined ? { timeoutMillis: timeoutMs } : {}) };
}

