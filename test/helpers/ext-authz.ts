// A small external authorizer for tests, answering the way Istio's ext-authz sample does: a request
// carrying `x-ext-authz: allow` is allowed (200, `x-ext-authz-check-result: allowed`), any other is
// denied (403, `x-ext-authz-check-result: denied` and a body saying why). `x-ext-authz: crash`
// answers 500 and `x-ext-authz: hang` never answers, for the error paths. A check whose body (sent
// under includeRequestBodyInCheck) holds `deny-me` is denied whatever the header says. It records
// every check.

import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export const DENY_BODY = 'denied by ext_authz for not found header `x-ext-authz: allow` in the request';

/** A request body holding this is denied by both test authorizers, when they are sent the body. */
export const BODY_DENIED = 'deny-me';

export interface SeenCheck {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface TestAuthorizer {
  readonly port: number;
  readonly seen: SeenCheck[];
  close(): Promise<void>;
}

export async function startHttpAuthorizer(): Promise<TestAuthorizer> {
  const seen: SeenCheck[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      const asked = req.headers['x-ext-authz'];
      if (asked === 'hang') return;
      if (asked === 'crash') return void res.writeHead(500, { 'content-type': 'text/plain' }).end('authorizer broke');
      const allowed = asked === 'allow' && !Buffer.concat(chunks).includes(BODY_DENIED);
      res.setHeader('x-ext-authz-check-result', allowed ? 'allowed' : 'denied');
      res.setHeader('x-ext-authz-check-received', `${req.method} ${req.url}`);
      if (allowed) {
        res.setHeader('set-cookie', ['session=abc', 'theme=dark']);
        return void res.writeHead(200).end();
      }
      res.writeHead(403, { 'content-type': 'text/plain', 'www-authenticate': 'Basic realm="sample"' }).end(DENY_BODY);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** The `istio` ConfigMap of istio-system with `mesh` holding these lines (already indented by four). */
export function meshConfigMap(meshLines: string): string {
  return `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |-
${meshLines}
`;
}

/** An AuthorizationPolicy selecting the gateway that sends requests to `paths` to `provider` (CUSTOM). */
export function gatewayCustomPolicy(name: string, provider: string, paths: readonly string[]): string {
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: CUSTOM
  provider: {name: ${provider}}
  rules:
  - to: [{operation: {paths: ${JSON.stringify(paths)}}}]
`;
}

/** What the gRPC authorizer saw of one check (the CheckRequest as proto-loader decodes it). */
export interface SeenGrpcCheck {
  readonly attributes: {
    source?: { address?: { socketAddress?: { address: string; portValue: number } }; principal: string };
    destination?: { address?: { socketAddress?: { address: string; portValue: number } }; principal: string };
    request?: { http?: { id: string; method: string; headers: Record<string, string>; path: string; host: string; scheme: string; protocol: string; body: string; rawBody: Buffer } };
  };
}

export interface TestGrpcAuthorizer {
  readonly port: number;
  readonly seen: SeenGrpcCheck[];
  close(): Promise<void>;
}

/**
 * The sample's gRPC side (Envoy's Authorization/Check): `x-ext-authz: allow` is OK with
 * `x-ext-authz-check-result: allowed` for the upstream, `x-removed` taken off the request and a
 * response header for the client; anything else (or a body holding `deny-me`) is PERMISSION_DENIED
 * with a 403 DeniedHttpResponse.
 * `x-ext-authz: crash` fails the call itself (INTERNAL).
 */
export async function startGrpcAuthorizer(): Promise<TestGrpcAuthorizer> {
  const grpc = await import('@grpc/grpc-js');
  const loader = await import('@grpc/proto-loader');
  const { repoPath } = await import('./route-table.js');
  const definition = loader.loadSync(repoPath('test/fixtures/grpc/ext-authz.proto'), { keepCase: false, defaults: true, longs: Number });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const service = (grpc.loadPackageDefinition(definition) as any).envoy.service.auth.v3.Authorization.service;
  const seen: SeenGrpcCheck[] = [];
  const server = new grpc.Server();
  const header = (key: string, value: string) => ({ header: { key, value } });
  server.addService(service, {
    check(call: { request: SeenGrpcCheck }, cb: (err: { code: number; details: string } | null, reply?: unknown) => void) {
      seen.push(call.request);
      const http = call.request.attributes.request?.http;
      const asked = http?.headers['x-ext-authz'];
      if (asked === 'crash') return cb({ code: grpc.status.INTERNAL, details: 'authorizer broke' });
      const bodyDenied = `${http?.body ?? ''}${http?.rawBody?.toString() ?? ''}`.includes(BODY_DENIED);
      if (asked === 'allow' && !bodyDenied) {
        return cb(null, {
          status: { code: 0 },
          okResponse: { headers: [header('x-ext-authz-check-result', 'allowed')], headersToRemove: ['x-removed'], responseHeadersToAdd: [header('x-authz-said', 'yes')] },
        });
      }
      cb(null, {
        status: { code: grpc.status.PERMISSION_DENIED },
        deniedResponse: { status: { code: 403 }, headers: [header('x-ext-authz-check-result', 'denied')], body: DENY_BODY },
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, seen, close: () => new Promise((resolve) => server.tryShutdown(() => resolve())) };
}
