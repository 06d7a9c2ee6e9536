// Test fixtures for TLS towards upstreams: a workload identity that can be rotated by hand, mesh
// workload certificates, and small TLS upstreams (HTTP/1.1 and HTTP/2) that report what they saw of
// the client: its certificate, the SNI it asked for and the ALPN protocol agreed.

import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createSecureServer, constants, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { issueCertificate, type IssuedCertificate } from '../../src/core/tls/issue-certificate.js';
import type { IdentityProvider, WorkloadCertificate } from '../../src/core/pki/types.js';

export type Pem = IssuedCertificate;

export function newRoot(name: string): Pem {
  return issueCertificate({ subjectCN: name, isCA: true, issuer: 'self', days: 30, keyType: 'ec' });
}

/** A workload certificate as the mesh CA issues it: the SPIFFE id in the URI SAN, no DNS names. */
export function workloadCertificate(root: Pem, spiffeId: string): WorkloadCertificate {
  const c = issueCertificate({ subjectCN: 'workload', uris: [spiffeId], issuer: root, days: 1, keyType: 'ec' });
  const x = new X509Certificate(c.certPem);
  return { spiffeId, certChainPem: c.certPem, keyPem: c.keyPem, rootCertPem: root.certPem, notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo) };
}

/** An IdentityProvider whose certificate the test replaces with `rotate()`. */
export class ManualIdentity implements IdentityProvider {
  #cert: WorkloadCertificate;
  readonly #listeners = new Set<(cert: WorkloadCertificate) => void>();
  constructor(cert: WorkloadCertificate) {
    this.#cert = cert;
  }
  current(): WorkloadCertificate {
    return this.#cert;
  }
  onRotate(listener: (cert: WorkloadCertificate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  rotate(cert: WorkloadCertificate): void {
    this.#cert = cert;
    for (const l of this.#listeners) l(cert);
  }
}

/** What a TLS upstream reports about the connection a request came on. */
export interface TlsSeen {
  name: string;
  path: string;
  /** URI SANs of the client certificate (empty without one). */
  peerUris: string[];
  peerCN: string | null;
  peerFingerprint: string | null;
  sni: string | null;
  alpn: string | null;
  /** Which connection (1, 2, …) of this server the request arrived on. */
  connection: number;
}

export interface TlsUpstream {
  readonly port: number;
  readonly seen: TlsSeen[];
  /** Requests to `/hold` wait until this is called. */
  release(): void;
  close(): Promise<void>;
}

interface TlsServerOptions {
  readonly cert: Pem | WorkloadCertificate;
  /** CA for client certificates; with it, a client certificate is required. */
  readonly clientCa?: string;
  readonly h2?: boolean;
}

function describeSocket(name: string, path: string, socket: TLSSocket, ids: WeakMap<object, number>): TlsSeen {
  const peer = socket.getPeerCertificate();
  const hasPeer = peer && Object.keys(peer).length > 0;
  const uris = hasPeer && peer.subjectaltname ? peer.subjectaltname.split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4)) : [];
  return {
    name,
    path,
    peerUris: uris,
    peerCN: hasPeer ? ((peer.subject?.CN as string | undefined) ?? null) : null,
    peerFingerprint: hasPeer ? peer.fingerprint256 : null,
    sni: (socket as TLSSocket & { servername?: string | false }).servername || null,
    alpn: socket.alpnProtocol || null,
    connection: ids.get(socket) ?? 0,
  };
}

export async function startTlsUpstream(name: string, opts: TlsServerOptions): Promise<TlsUpstream> {
  const seen: TlsSeen[] = [];
  const ids = new WeakMap<object, number>();
  const sockets = new Set<Socket>();
  const held: Array<() => void> = [];
  let released = false;
  const cert = 'certChainPem' in opts.cert ? opts.cert.certChainPem : opts.cert.certPem;
  const tlsOptions = {
    cert,
    key: opts.cert.keyPem,
    ...(opts.clientCa ? { ca: opts.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
  };
  const hold = (path: string, go: () => void): void => {
    if (path === '/hold' && !released) held.push(go);
    else go();
  };

  let server: HttpsServer | Http2SecureServer;
  if (opts.h2) {
    const s = createSecureServer({ ...tlsOptions, allowHTTP1: false });
    s.on('stream', (stream, headers) => {
      const session = stream.session as ServerHttp2Session;
      const info = describeSocket(name, String(headers[':path']), session.socket as TLSSocket, ids);
      seen.push(info);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(JSON.stringify(info));
      stream.on('error', () => stream.close(constants.NGHTTP2_CANCEL));
    });
    server = s;
  } else {
    server = createHttpsServer({ ...tlsOptions, ALPNProtocols: ['http/1.1'] }, (req: IncomingMessage, res: ServerResponse) => {
      const info = describeSocket(name, req.url ?? '', req.socket as TLSSocket, ids);
      seen.push(info);
      req.resume();
      req.on('end', () =>
        hold(info.path, () => {
          const body = JSON.stringify(info);
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        }),
      );
    });
    // An upgrade is answered with what the server saw of the TLS client, then echoes what it gets.
    server.on('upgrade', (req: IncomingMessage, socket: TLSSocket) => {
      const info = describeSocket(name, req.url ?? '', socket, ids);
      seen.push(info);
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nx-peer-uri: ${info.peerUris.join(',')}\r\n\r\n`);
      socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString()}`));
    });
  }
  let next = 0;
  server.on('secureConnection', (s: TLSSocket) => {
    ids.set(s, ++next);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    release: () => {
      released = true;
      for (const go of held.splice(0)) go();
    },
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A Kubernetes Service with one pod on loopback, its service account and (optionally) a sidecar. */
export function meshServiceYaml(name: string, port: number, opts: { sa: string; sidecar?: boolean; portName?: string; servicePort?: number; namespace?: string }): string {
  const ns = opts.namespace ?? 'default';
  const portName = opts.portName ?? 'http';
  const labels = { app: name, ...(opts.sidecar === false ? {} : { 'security.istio.io/tlsMode': 'istio' }) };
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {app: ${name}}
  ports: [{name: ${portName}, port: ${opts.servicePort ?? 80}, targetPort: ${portName}}]
---
apiVersion: v1
kind: Pod
metadata: {name: ${name}-1, namespace: ${ns}, labels: ${JSON.stringify(labels)}}
spec: {serviceAccountName: ${opts.sa}}
status: {podIP: 127.0.0.1}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-1, namespace: ${ns}, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
ports: [{name: ${portName}, port: ${port}}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: ${name}-1, namespace: ${ns}}
`;
}
