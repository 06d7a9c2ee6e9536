// One TLS server per terminating Gateway server (Envoy's filter chain per server): its own
// certificate, protocol versions, ciphers and client-certificate policy, with ALPN offering h2 and
// http/1.1. Sockets arrive already accepted, after the port listener chose the server by SNI; a
// request whose Host the SNI rules give to another server is answered 421.
// Certificates are swapped in with setSecureContext for new handshakes; open connections keep going.
// Sessions resume by tickets under the gateway's shared, rotated keys (core/tls/session-tickets.ts);
// each server has its own session id context, so a session resumes only on the server that made it.

import { createHash } from 'node:crypto';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { handleHttpRequest, Pipelines, type HttpHandlerContext, type ListenerInfo } from '../core/proxy/http-handler.js';
import { handleUpgrade } from '../core/proxy/upgrade.js';
import type { ServerConfig } from '../core/routing/types.js';
import type { Snapshot } from '../core/snapshot/snapshot.js';
import { serverTlsOptions } from '../core/tls/server-options.js';
import type { CredentialStore } from '../core/tls/types.js';
import { peerSans, xfccFor } from '../core/tls/xfcc.js';
import type { AcceptStep } from '../core/proxy/accept.js';
import { peerIdentity, peerNames, type PeerNames } from '../core/tls/peer-identity.js';
import type { SniIndex } from '../core/routing/sni-index.js';
import type { SessionTickets } from '../core/tls/session-tickets.js';
import { meshPeerOf } from '../core/tls/mesh-peer.js';
import { trustDomainsOf } from '../core/pki/trust-domain.js';
import { currentCertificate } from '../core/tls/upstream-tls.js';

interface Entry {
  server: Http2SecureServer;
  /** Settings that need a new server object when they change (client-certificate policy). */
  policyKey: string;
  /** Everything the SecureContext is built from. */
  contextKey: string;
  /** The latest config of this Gateway server; requests read it when they start. */
  config: ServerConfig;
}

export interface TlsServersDeps {
  readonly ctx: HttpHandlerContext;
  readonly credentials: CredentialStore;
  readonly log: Logger;
  /** The listener's accept step: each server is served through it (limits, drain, timeouts). */
  readonly accept: AcceptStep;
  /** The SNI index of this listener's TLS servers in a snapshot (compiled once per snapshot). */
  sni(snapshot: Snapshot): SniIndex;
  /** Session ticket keys (shared by every server and, under `--workers`, every worker). */
  readonly tickets: SessionTickets;
}

interface Resolved {
  readonly key: string;
  readonly cred: NonNullable<ReturnType<CredentialStore['forServer']>>;
  readonly opts: ReturnType<typeof serverTlsOptions>;
  readonly policyKey: string;
  readonly contextKey: string;
}

/** Identifies a Gateway server across snapshots. */
function serverKey(s: ServerConfig): string {
  return `${s.gateway}#${s.serverIndex}`;
}

export class TlsServers {
  readonly #entries = new Map<string, Entry>();
  readonly #retired = new Set<Entry>();
  readonly #xfcc = new WeakMap<object, string | null>();
  readonly #principal = new WeakMap<object, string | null>();
  readonly #names = new WeakMap<object, PeerNames | null>();
  readonly #complained = new Set<string>();
  /** Forgotten whenever certificate material changes, so the next connection resolves afresh. */
  #resolved = new WeakMap<ServerConfig, Resolved>();
  readonly #offCredentials: () => void;

  constructor(private readonly deps: TlsServersDeps) {
    this.#offCredentials = deps.credentials.onChange(() => (this.#resolved = new WeakMap()));
  }

  /**
   * Hands an accepted socket (ClientHello already unshifted) to the server for `config`. The
   * listener's accept step tracks it and cuts it on destroy: nothing more is kept per connection here.
   */
  accept(socket: Socket, config: ServerConfig): void {
    const entry = this.#entryFor(config);
    if (!entry) {
      socket.destroy();
      return;
    }
    entry.server.emit('connection', socket);
  }

  /**
   * What a server config resolves to: its credential, options and keys. Resolved once per config
   * object (a snapshot's) and credential change, not once per connection: the handshake path then
   * only looks it up.
   */
  #resolve(config: ServerConfig, tls: NonNullable<ServerConfig['tls']>): Resolved | undefined {
    const cached = this.#resolved.get(config);
    if (cached) return cached;
    const key = serverKey(config);
    const cred = this.deps.credentials.forServer(tls);
    if (!cred) {
      if (!this.#complained.has(key)) {
        this.#complained.add(key);
        if (tls.mode === 'ISTIO_MUTUAL') this.deps.log.error({ server: key }, 'ISTIO_MUTUAL server needs the gateway\'s workload certificate, and this gateway has none (join the mesh: --control); its connections are closed');
        else this.deps.log.error({ server: key, credential: tls.credentialName ?? tls.serverCertificate }, 'TLS server has no usable certificate; its connections are closed');
      }
      return undefined;
    }
    this.#complained.delete(key);
    const opts = serverTlsOptions(tls, cred);
    const policyKey = `${opts.requestCert}/${opts.rejectUnauthorized}`;
    const resolved: Resolved = { key, cred, opts, policyKey, contextKey: `${cred.version}|${JSON.stringify(tls)}` };
    this.#resolved.set(config, resolved);
    return resolved;
  }

  #entryFor(config: ServerConfig): Entry | undefined {
    const tls = config.tls;
    if (!tls) return undefined;
    const r = this.#resolve(config, tls);
    if (!r) return undefined;
    const { key, cred, opts, policyKey, contextKey } = r;
    let entry = this.#entries.get(key);
    if (entry && entry.policyKey !== policyKey) {
      // Node fixes the client-certificate policy per server object: retire the old one (its open
      // connections finish on it) and start a new one.
      this.#retired.add(entry);
      entry = undefined;
    }
    if (!entry) {
      entry = this.#create(opts, policyKey, contextKey, config);
      this.#entries.set(key, entry);
    } else if (entry.contextKey !== contextKey) {
      entry.server.setSecureContext({ ...opts.context, ...this.#sessionOptions(policyKey, contextKey) });
      this.deps.tickets.attach(entry.server);
      entry.contextKey = contextKey;
      this.deps.log.info({ server: key, credential: cred.description, notAfter: cred.notAfter.toISOString() }, 'TLS certificate swapped in for new handshakes');
    }
    entry.config = config;
    return entry;
  }

  #create(opts: ReturnType<typeof serverTlsOptions>, policyKey: string, contextKey: string, config: ServerConfig): Entry {
    const server = createSecureServer({
      ...this.deps.accept.http2Options(),
      ...opts.context,
      ...this.#sessionOptions(policyKey, contextKey),
      requestCert: opts.requestCert,
      rejectUnauthorized: opts.rejectUnauthorized,
      allowHTTP1: true,
    });
    this.deps.tickets.attach(server);
    const entry: Entry = { server, policyKey, contextKey, config };
    // A server that asks for no client certificate never has one: its requests skip the per-socket
    // caches below (two WeakMap entries per connection, each an ephemeron for the collector).
    const asksCert = opts.requestCert === true;
    const listener: ListenerInfo = {
      // The server's own Gateway port: its listener may hold servers of several (port translation).
      get port() {
        return entry.config.port;
      },
      scheme: 'https',
      stages: Pipelines.gateway,
      select: (snapshot) => {
        const name = entry.config.routeConfig;
        return name ? snapshot.routeConfigs.get(name) : undefined;
      },
      clientCert: (req) => (asksCert ? this.#clientCert(req) : undefined),
      peerPrincipal: (req) => (asksCert ? this.#peerPrincipal(req) : undefined),
      peerNames: (req) => (asksCert ? this.#peerNames(req) : undefined),
      // HTTP/2 reuses a connection for every host its certificate covers, and an HTTP/1.1 client may
      // send any Host: a Host that the SNI rules give to another server of this port (a more specific
      // one, say, with its own client-certificate policy) must open its own connection, or that
      // server's TLS policy would be bypassed.
      misdirected: (host, snapshot) => {
        const own = this.deps.sni(snapshot).lookup(host);
        // The same Gateway server as serverKey names it, compared without building the key per request.
        return own !== undefined && (own.gateway !== config.gateway || own.serverIndex !== config.serverIndex);
      },
    };
    this.deps.accept.serve(server, {
      request: (req, res) => handleHttpRequest(req, res, listener, this.deps.ctx),
      upgrade: (req, socket, head) => handleUpgrade(req, socket, head, listener, this.deps.ctx),
      connect: (req, socket, head) => handleUpgrade(req, socket, head, listener, this.deps.ctx),
    });
    // Only a server that asks for a client certificate has one to check (the policy is fixed per server object).
    if (asksCert) server.on('secureConnection', (socket: TLSSocket) => this.#checkPeer(socket, entry));
    server.on('tlsClientError', () => undefined); // a failed handshake is the client's problem, not a crash
    server.on('sessionError', () => undefined);
    return entry;
  }

  /**
   * The session id context names everything the server verifies and presents (as Envoy derives its
   * own): a session made where no client certificate was asked for never resumes where one is required.
   */
  #sessionOptions(policyKey: string, contextKey: string): ReturnType<SessionTickets['contextOptions']> {
    return this.deps.tickets.contextOptions(createHash('sha256').update(`${policyKey}\n${contextKey}`).digest('hex').slice(0, 32));
  }

  /**
   * OPTIONAL_MUTUAL: a certificate, if sent, must verify; `subjectAltNames` must match when set.
   * ISTIO_MUTUAL: the client is a mesh peer (core/tls/mesh-peer.ts: one workload of the mesh's
   * trust domain or its aliases, as a sidecar takes its callers), and matches `subjectAltNames`.
   */
  #checkPeer(socket: TLSSocket, entry: Entry): void {
    const tls = entry.config.tls;
    if (tls?.mode === 'ISTIO_MUTUAL' && !this.#meshPeer(socket)) return void socket.destroy();
    if (!tls || (tls.mode !== 'MUTUAL' && tls.mode !== 'OPTIONAL_MUTUAL' && tls.mode !== 'ISTIO_MUTUAL')) return;
    const peer = socket.getPeerCertificate();
    const presented = peer && Object.keys(peer).length > 0;
    if (presented && !socket.authorized) return void socket.destroy();
    if (presented && tls.subjectAltNames && tls.subjectAltNames.length > 0) {
      const sans = peerSans(peer);
      if (!tls.subjectAltNames.some((want) => sans.includes(want))) socket.destroy();
    }
  }

  /** Whether the client is a mesh peer of the trust domains in force (the gateway's own, else the mesh config's). */
  #meshPeer(socket: TLSSocket): boolean {
    const { holder, security, identity } = this.deps.ctx;
    const snapshot = holder.current();
    const tds = snapshot && security ? security.for(snapshot).trustDomains : trustDomainsOf([], identity ? currentCertificate(identity)?.spiffeId : undefined);
    return meshPeerOf(socket, tds, this.deps.log) !== undefined;
  }

  #clientCert(req: IncomingMessage): string | undefined {
    return verifiedPeerOnce(req, this.#xfcc, (peer) => xfccFor(peer));
  }

  /** The first URI SAN of the verified client certificate: the identity rate limits with `principal` count by. */
  #peerPrincipal(req: IncomingMessage): string | undefined {
    return verifiedPeerOnce(req, this.#principal, (peer) => peerIdentity(peer).uris[0]);
  }

  /** Every name of the verified client certificate, which AuthorizationPolicy matches as Envoy's RBAC does (any of them). */
  #peerNames(req: IncomingMessage): PeerNames | undefined {
    return verifiedPeerOnce(req, this.#names, peerNames);
  }

  /** Stops the servers; their connections are the accept step's to cut (AcceptStep.destroy). */
  destroy(): void {
    this.#offCredentials();
    for (const e of [...this.#entries.values(), ...this.#retired]) e.server.close();
    this.#entries.clear();
    this.#retired.clear();
  }
}

/**
 * What `read` says of the request's verified client certificate, worked out once per connection
 * (`cache`, by TLS socket); undefined without one.
 */
function verifiedPeerOnce<T>(req: IncomingMessage, cache: WeakMap<object, T | null>, read: (peer: PeerCertificate) => T | undefined): T | undefined {
  const socket = tlsSocketOf(req);
  if (typeof socket?.getPeerCertificate !== 'function') return undefined;
  const cached = cache.get(socket);
  if (cached !== undefined) return cached ?? undefined;
  const peer = socket.authorized ? socket.getPeerCertificate() : undefined;
  const value = peer && peer.raw ? read(peer) : undefined;
  cache.set(socket, value ?? null);
  return value;
}

/** HTTP/2 requests reach the TLS socket through their session; HTTP/1 ones directly. */
function tlsSocketOf(req: IncomingMessage): TLSSocket | undefined {
  const stream = (req as unknown as { stream?: { session?: { socket?: TLSSocket } } }).stream;
  return (stream?.session?.socket ?? req.socket) as TLSSocket | undefined;
}
