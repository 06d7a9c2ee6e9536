// An OpenTelemetry collector stand-in speaking OTLP over gRPC on loopback (@grpc/grpc-js's server):
// the trace service decodes with the protobuf code @opentelemetry/otlp-transformer ships; that package
// ships nothing that decodes logs, so the logs service reads them with @grpc/proto-loader from the
// few OTLP log messages written out below (the field numbers of opentelemetry-proto's logs.proto).

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface CollectedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Readonly<Record<string, string | boolean | number>>;
  readonly resource: Readonly<Record<string, string>>;
  /** The gRPC metadata the export came with. */
  readonly metadata: Readonly<Record<string, string>>;
}

export interface CollectedLog {
  readonly body: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly resource: Readonly<Record<string, string>>;
  readonly traceId: string;
  readonly spanId: string;
  readonly timeUnixNano: string;
}

export interface OtlpGrpcCollector {
  readonly port: number;
  readonly spans: CollectedSpan[];
  readonly logs: CollectedLog[];
  close(): Promise<void>;
}

const LOGS_PROTO = `syntax = "proto3";
package opentelemetry.proto.collector.logs.v1;
service LogsService { rpc Export(ExportLogsServiceRequest) returns (ExportLogsServiceResponse) {} }
message ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }
message ExportLogsServiceResponse {}
message ResourceLogs { Resource resource = 1; repeated ScopeLogs scope_logs = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeLogs { Scope scope = 1; repeated LogRecord log_records = 2; string schema_url = 3; }
message Scope { string name = 1; string version = 2; }
message LogRecord {
  fixed64 time_unix_nano = 1; int32 severity_number = 2; string severity_text = 3; AnyValue body = 5;
  repeated KeyValue attributes = 6; uint32 dropped_attributes_count = 7; fixed32 flags = 8;
  bytes trace_id = 9; bytes span_id = 10; fixed64 observed_time_unix_nano = 11; string event_name = 12;
}
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
`;

interface Kv {
  key: string;
  value?: { stringValue?: string; boolValue?: boolean; intValue?: number | string | { toNumber(): number }; doubleValue?: number };
}

const hex = (b: Uint8Array | null | undefined): string => (b ? Buffer.from(b).toString('hex') : '');

function values(kvs: readonly Kv[] | null | undefined): Record<string, string | boolean | number> {
  const out: Record<string, string | boolean | number> = {};
  for (const kv of kvs ?? []) {
    const v = kv.value;
    const int = v?.intValue;
    out[kv.key] = v?.stringValue ?? v?.boolValue ?? (int !== undefined && int !== null ? Number(typeof int === 'object' ? int.toNumber() : int) : undefined) ?? v?.doubleValue ?? '';
  }
  return out;
}

const strings = (kvs: readonly Kv[] | null | undefined): Record<string, string> => Object.fromEntries(Object.entries(values(kvs)).map(([k, v]) => [k, String(v)]));

export async function startOtlpGrpcCollector(): Promise<OtlpGrpcCollector> {
  const spans: CollectedSpan[] = [];
  const logs: CollectedLog[] = [];
  const root = createRequire(import.meta.url)('@opentelemetry/otlp-transformer/build/src/generated/root.js') as {
    opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: { decode(b: Uint8Array): unknown } } } } } };
  };
  const TraceRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
  const server = new grpc.Server();
  server.addService(
    {
      Export: {
        path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
        requestStream: false,
        responseStream: false,
        requestSerialize: (x: Buffer) => x,
        requestDeserialize: (b: Buffer) => TraceRequest.decode(b),
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: () => ({}),
      },
    },
    {
      Export: (call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
        const metadata = Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)]));
        type Req = { resourceSpans: { resource?: { attributes: Kv[] }; scopeSpans: { spans: { traceId: Uint8Array; spanId: Uint8Array; parentSpanId?: Uint8Array; name: string; kind: number; attributes: Kv[] }[] }[] }[] };
        for (const rs of (call.request as Req).resourceSpans) {
          for (const ss of rs.scopeSpans) {
            for (const s of ss.spans) {
              spans.push({ traceId: hex(s.traceId), spanId: hex(s.spanId), parentSpanId: hex(s.parentSpanId), name: s.name, kind: s.kind, attributes: values(s.attributes), resource: strings(rs.resource?.attributes), metadata });
            }
          }
        }
        done(null, {});
      },
    },
  );
  const dir = await mkdtemp(join(tmpdir(), 'otlp-logs-proto-'));
  const file = join(dir, 'logs.proto');
  await writeFile(file, LOGS_PROTO);
  const definition = protoLoader.loadSync(file, { longs: String, defaults: false, oneofs: true });
  await rm(dir, { recursive: true, force: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { opentelemetry: { proto: { collector: { logs: { v1: { LogsService: { service: grpc.ServiceDefinition } } } } } } };
  server.addService(pkg.opentelemetry.proto.collector.logs.v1.LogsService.service, {
    Export: (call: grpc.ServerUnaryCall<unknown, unknown>, done: grpc.sendUnaryData<unknown>) => {
      type Req = { resourceLogs: { resource?: { attributes: Kv[] }; scopeLogs: { logRecords: { timeUnixNano: string; body?: { stringValue?: string }; attributes: Kv[]; traceId: Uint8Array; spanId: Uint8Array }[] }[] }[] };
      for (const rl of (call.request as Req).resourceLogs) {
        for (const sl of rl.scopeLogs) {
          for (const l of sl.logRecords) {
            logs.push({ body: l.body?.stringValue ?? '', attributes: strings(l.attributes), resource: strings(rl.resource?.attributes), traceId: hex(l.traceId), spanId: hex(l.spanId), timeUnixNano: l.timeUnixNano });
          }
        }
      }
      done(null, {});
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return {
    port,
    spans,
    logs,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
