// A small external authorizer for tests, answering the way Istio's ext-authz sample does: a request
// carrying `x-ext-authz: allow` is allowed (200, `x-ext-authz-check-result: allowed`), any other is
// denied (403, `x-ext-authz-check-result: denied` and a body saying why). `x-ext-authz: crash`
// answers 500 and `x-ext-authz: hang` never answers, for the error paths. It records every check.

import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export const DENY_BODY = 'denied by ext_authz for not found header `x-ext-authz: allow` in the request';

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
      const allowed = asked === 'allow';
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
