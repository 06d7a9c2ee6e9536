// A minimal OTLP/HTTP (JSON) trace receiver on loopback, standing in for an OpenTelemetry collector:
// it keeps every span it is sent, for tests that follow a request's trace.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string; boolValue?: boolean } }[];
}

export interface OtlpReceiver {
  readonly server: Server;
  readonly port: number;
  readonly spans: OtlpSpan[];
}

export async function startReceiver(): Promise<OtlpReceiver> {
  const spans: OtlpSpan[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
        for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, spans };
}

/** A span attribute's value. */
export const attr = (s: OtlpSpan, key: string): string | boolean | undefined => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? v?.boolValue;
};

/** The `istio` ConfigMap with an OpenTelemetry provider at the receiver, and a default sampling. */
export const meshConfig = (port: number, sampling: number): string => `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    defaultConfig:
      tracing:
        sampling: ${sampling}
    extensionProviders:
    - name: otel
      opentelemetry:
        service: 127.0.0.1
        port: ${port}
        http: {path: /v1/traces}
    defaultProviders:
      tracing: [otel]
`;

/** A span as Zipkin's v2 JSON carries it. */
export interface ZipkinSpan {
  readonly traceId: string;
  readonly name: string;
  readonly kind: string;
  readonly tags: Record<string, string>;
}

/** A Zipkin collector stand-in: it keeps every span POSTed to /api/v2/spans. */
export async function startZipkin(): Promise<{ readonly server: Server; readonly port: number; readonly spans: ZipkinSpan[] }> {
  const spans: ZipkinSpan[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/api/v2/spans') spans.push(...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ZipkinSpan[]));
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, spans };
}

/** The `istio` ConfigMap with a `zipkin` provider at `port` on loopback, the default tracing provider unless `asDefault` is false. */
export const zipkinMeshConfig = (port: number, asDefault = true): string => `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    extensionProviders:
    - name: zipkin
      zipkin: {service: 127.0.0.1, port: ${port}}
${asDefault ? '    defaultProviders:\n      tracing: [zipkin]\n' : ''}`;
