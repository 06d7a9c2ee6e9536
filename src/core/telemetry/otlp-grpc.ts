// What the OTLP/gRPC span exporter takes from an Istio `opentelemetry` provider's `grpc` settings
// besides its address: the metadata sent with every export (`initialMetadata`) and the timeout of one
// export. The address is always `http://host:port`, plaintext, as the OTLP/HTTP exporter's is.

/** The exporter's options from a provider's metadata and timeout (@grpc/grpc-js loaded only for metadata). */
export function grpcOptions(require: NodeJS.Require, metadata: Readonly<Record<string, string>>, timeoutMs: number | undefined): { metadata?: import('@grpc/grpc-js').Metadata; timeoutMillis?: number } {
  const entries = Object.entries(metadata);
  let md: import('@grpc/grpc-js').Metadata | undefined;
  if (entries.length > 0) {
    const { Metadata }: typeof import('@grpc/grpc-js') = require('@grpc/grpc-js');
    md = new Metadata();
    for (const [k, v] of entries) md.set(k, v);
  }
  return { ...(md ? { metadata: md } : {}), ...(timeoutMs !== undefined ? { timeoutMillis: timeoutMs } : {}) };
}

