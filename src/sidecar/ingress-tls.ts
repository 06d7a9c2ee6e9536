// TLS that the sidecar's inbound side terminates for clients outside the mesh: a Sidecar ingress
// listener's `tls` (SIMPLE, MUTUAL or OPTIONAL_MUTUAL with certificate files, as Istio's "Ingress
// Sidecar TLS Termination" task mounts them), on a port PeerAuthentication leaves DISABLE. The
// certificate, versions, ciphers and client-certificate policy come from the same code a Gateway
// server's do (core/tls/server-options.ts), the files from the same watched credential store
// (core/tls/credential-store.ts): a replaced certificate is swapped in for new handshakes.
// A port that speaks HTTP after termination is served by a secure HTTP server (h2 and http/1.1 by
// ALPN) whose requests take the inbound side's one pipeline; any other port's decrypted bytes go
// to the app as TCP. Either way the inbound listener says what happens next (`onSecure`, `onTcp`).

import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { createServer as createTlsServer } from '../core/tls/node-tls.js';
import type { Logger } from 'pino';
import type { AcceptStep } from '../core/proxy/accept.js';
import type { ServedHandlers } from '../core/proxy/drain.js';
import type { ServerTlsSettings } from '../core/model/istio.js';
import { serverTlsOptions } from '../core/tls/server-options.js';
import type { CredentialStore } from '../core/tls/types.js';

export interface IngressTlsDeps {
  readonly credentials: CredentialStore;
  readonly log: Logger;
  /** The inbound listener's accept step: HTTP servers are served through it. */
  readonly step: AcceptStep;
  readonly handlers: ServedHandlers;
  /** A handshake completed on an HTTP port (before its first request). */
  onSecure(socket: TLSSocket): void;
  /** A handshake completed on a TCP port: the decrypted stream is the listener's to pass on. */
  onTcp(socket: TLSSocket): void;
}

interface Entry {
  readonly server: Http2SecureServer | TlsServer;
  contextKey: string;
}

type Resolved = { readonly opts: ReturnType<typeof serverTlsOptions>; readonly contextKey: string } | null;

export class IngressTls {
  readonly #deps: IngressTlsDeps;
  /** By whether the port speaks HTTP and the client-certificate policy (fixed per Node server object). */
  readonly #servers = new Map<string, Entry>();
  /** Per `tls` block (a snapshot's), forgotten when certificate material changes. */
  #resolved = new WeakMap<ServerTlsSettings, Resolved>();
  readonly #complained = new Set<string>();
  readonly #offCredentials: () => void;

  constructor(deps: IngressTlsDeps) {
    this.#deps = deps;
    this.#offCredentials = deps.credentials.onChange(() => (this.#resolved = new WeakMap()));
  }

  /** A connection whose ClientHello is unshifted back: terminated with `tls`, or closed without a usable certificate. */
  accept(socket: Socket, tls: ServerTlsSettings, http: boolean): void {
    const resolved = this.#resolve(tls);
    if (!resolved) return void socket.destroy();
    const { opts, contextKey } = resolved;
    const key = `${http}|${opts.requestCert}|${opts.rejectUnauthorized}`;
    let entry = this.#servers.get(key);
    if (!entry) {
      entry = { server: this.#create(opts, http), contextKey };
      this.#servers.set(key, entry);
    } else if (entry.contextKey !== contextKey) {
      entry.server.setSecureContext(opts.context);
      entry.contextKey = contextKey;
    }
    entry.server.emit('connection', socket);
  }

  #resolve(tls: ServerTlsSettings): Resolved {
    let r = this.#resolved.get(tls);
    if (r !== undefined) return r;
    const cred = this.#deps.credentials.forServer(tls);
    const shown = tls.serverCertificate ?? '';
    if (!cred) {
      if (!this.#complained.has(shown)) this.#deps.log.error({ serverCertificate: shown, privateKey: tls.privateKey ?? null }, 'Sidecar ingress TLS has no usable certificate; its connections are closed');
      this.#complained.add(shown);
      r = null;
    } else {
      this.#complained.delete(shown);
      r = { opts: serverTlsOptions(tls, cred), contextKey: `${cred.version}|${JSON.stringify(tls)}` };
    }
    this.#resolved.set(tls, r);
    return r;
  }

  #create(opts: ReturnType<typeof serverTlsOptions>, http: boolean): Http2SecureServer | TlsServer {
    const policy = { requestCert: opts.requestCert, rejectUnauthorized: opts.rejectUnauthorized };
    if (http) {
      const server = createSecureServer({ ...this.#deps.step.http2Options(), ...opts.context, ...policy, allowHTTP1: true });
      this.#deps.step.serve(server, this.#deps.handlers);
      server.on('secureConnection', (socket: TLSSocket) => this.#deps.onSecure(socket));
      server.on('tlsClientError', () => undefined);
      server.on('sessionError', () => undefined);
      return server;
    }
    const server = createTlsServer({ ...opts.context, ...policy }, (socket: TLSSocket) => this.#deps.onTcp(socket));
    server.on('tlsClientError', () => undefined);
    return server;
  }

  close(): void {
    this.#offCredentials();
    for (const { server } of this.#servers.values()) server.close();
    this.#servers.clear();
  }
}
