// The sidecar's inbound side (15006): every connection to the workload arrives here. Mutual TLS is
// terminated with the workload certificate and the peer's SPIFFE identity read from its verified
// chain; PeerAuthentication decides whether plaintext is let in at all (STRICT closes it). Each HTTP
// request then goes through the same pipeline as every listener's (core/proxy/http-handler.ts):
// RequestAuthentication, AuthorizationPolicy (403 `RBAC: access denied`), and the local-app act
// stage, which hands it to the app on loopback with the caller's identity in x-forwarded-client-cert.
//
// What a connection gets, as Istio's inbound filter chains decide it from the ClientHello:
//   STRICT      TLS: mutual TLS, a client certificate required; plaintext: closed.
//   PERMISSIVE  TLS offering an `istio*` ALPN (a mesh peer): mutual TLS, a client certificate
//               required; other TLS: passed to the app as TCP (an app that terminates TLS itself);
//               plaintext: HTTP to the app.
//   DISABLE     TLS: passed to the app as TCP; plaintext: HTTP to the app.
// A mesh peer's certificate chains to the mesh root and names a workload of this sidecar's trust
// domain or one of the mesh config's trustDomainAliases (core/pki/trust-domain.ts); any other
// certificate is closed after the handshake, as Istio validates the peer's trust domain.
// Mesh mTLS whose ALPN names no HTTP protocol (`istio-peer-exchange`, `istio`) carries TCP, and
// plaintext whose first bytes are no HTTP request line is opaque TCP: both go to the app as bytes.
//
// A port whose protocol is declared TCP (a service selecting this workload names it `tcp`, `mysql`,
// … or sets appProtocol; or it is undeclared and one of the ports Istio assumes TCP, such as 3306)
// is never sniffed for HTTP, and the client is not left waiting to speak first, as a server-first
// protocol's client (MySQL, SMTP) waits for the server's greeting:
//   DISABLE     passed to the app at once.
//   STRICT      the mesh client's sidecar opens with its ClientHello at once; nothing to wait for.
//   PERMISSIVE  only the first bytes tell mTLS from plaintext: a client silent for
//               PERMISSIVE_DETECTION_MS is plaintext and passed to the app, which then greets it.
// On an undeclared port a client that stays silent through the ClientHello timeout is passed to the
// app as plaintext TCP too (STRICT closes it).
// Bytes passed as TCP are subject to AuthorizationPolicy's L4 rules (core/proxy/stages/
// authorize-connection.ts): a denied connection is closed, counted and logged.
//
// A Sidecar resource's ingress listener for this port (core/policy/sidecar-ingress.ts) changes
// three things, read per configuration: the declared protocol is its port's; traffic goes to its
// `defaultEndpoint` instead of the app's same port, within its `connectionPool`; and its `tls`, on a
// port PeerAuthentication leaves DISABLE (as Istio applies it nowhere else), is terminated here for
// clients outside the mesh (ingress-tls.ts) — plaintext and mesh mTLS are then closed, and MUTUAL
// requires a client certificate its caCertificates signed. PeerAuthentication, AuthorizationPolicy,
// the cluster name, the access log and the metrics keep to the port the caller dialled.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { SessionTickets } from '../core/tls/session-tickets.js';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createServer as createTlsServer } from '../core/tls/node-tls.js';
import type { Logger } from 'pino';
import { listenOn } from '../core/proxy/listen.js';
import type { ConnectionDrain } from '../core/proxy/drain.js';
import type { MtlsMode } from '../core/policy/peer-authentication.js';
import type { WorkloadSecurityCache } from '../core/policy/workload-security.js';
import type { IdentityProvider, WorkloadCertificate } from '../core/pki/types.js';
import { trustDomainsOf } from '../core/pki/trust-domain.js';
import { meshPeerOf } from '../core/tls/mesh-peer.js';
import { peekClientHello } from '../core/tls/client-hello.js';
import { handleHttpRequest, Pipelines, type HttpHandlerContext, type ListenerInfo } from '../core/proxy/http-handler.js';
import { handleUpgrade } from '../core/proxy/upgrade.js';
import type { AccessLog } from '../core/telemetry/access-log.js';
import { UpstreamPools } from '../core/proxy/upstream-pools.js';
import { AcceptStep } from '../core/proxy/accept.js';
import { authorizeConnection } from '../core/proxy/stages/authorize-connection.js';
import type { RateLimitContext } from '../core/proxy/stages/rate-limit.js';
import { passThrough } from '../core/proxy/tcp-passthrough.js';
import { connectTimeoutFor, hasFiniteLimits, limitsWithConnectTimeout } from '../core/policy/connection-limits.js';
import type { HttpLimits } from '../core/proxy/http-limits.js';
import type { SnapshotHolder } from '../core/snapshot/holder.js';
import { inboundRequestHeaders, meshXfcc } from './inbound-headers.js';
import { isOpaqueTcp } from '../core/registry/protocol.js';
import { appPortProtocol, type UpstreamProtocol } from '../core/proxy/upstream-protocol.js';
import { workloadPortProtocol, type Workload } from '../core/registry/workload-port-protocol.js';
import type { Snapshot } from '../core/snapshot/snapshot.js';
import { PEER_METADATA_HEADER, peerOfRequest } from '../core/telemetry/workload.js';
import { PeerFrameStripper, exchangeAsServer } from '../core/telemetry/tcp-peer-exchange.js';
import { sidecarIngressOf, type IngressListener } from '../core/policy/sidecar-ingress.js';
import type { RelayUpstream } from '../core/proxy/relay.js';
import type { PassThroughTarget } from '../core/proxy/tcp-passthrough.js';
import type { ServerTlsSettings } from '../core/model/istio.js';
import type { CredentialStore } from '../core/tls/types.js';
import { IngressTls } from './ingress-tls.js';
import type { ClusterBreaker } from '../core/policy/circuit-breaker.js';
import type { PeerMetadata } from '../core/telemetry/peer-metadata.js';

/** PERMISSIVE on a declared TCP port: how long a silent client may take before it counts as plaintext. */
export const PERMISSIVE_DETECTION_MS = 300;

export interface InboundDeps {
  readonly identity: IdentityProvider;
  readonly holder: SnapshotHolder;
  readonly security: WorkloadSecurityCache;
  /**
   * The port callers dial (the app's, unless a Sidecar ingress listener for it names another
   * endpoint); PeerAuthentication's portLevelMtls and AuthorizationPolicy `ports` refer to it.
   */
  readonly appPort: number;
  /** The workload whose services declare the port's protocol (namespace, labels). */
  readonly workload: Workload;
  readonly appHost: string;
  /** The address connections to the app come from (127.0.0.6 under capture, so they are not captured again). */
  readonly appLocalAddress?: string;
  readonly pools: UpstreamPools;
  /** The pools towards the mesh (the outbound side's), when `pools` reach the app only: for external authorizers. */
  readonly meshPools?: UpstreamPools;
  readonly accessLog: AccessLog;
  /** This proxy's peer metadata: the answer in Istio's TCP metadata exchange. */
  readonly peerMetadata?: PeerMetadata;
  readonly log: Logger;
  readonly drain: ConnectionDrain;
  /** Header limits and timeouts (http-limits.ts); Envoy's defaults without. */
  readonly limits?: HttpLimits;
  /** The proxy's rate-limit counters: EnvoyFilter local rate limits of the inbound side count there. */
  readonly rateLimits?: RateLimitContext;
  /** Certificate files of Sidecar ingress listeners' `tls`. */
  readonly credentials: CredentialStore;
  /** The circuit breaker of an inbound cluster (by name), kept across snapshots. */
  readonly breaker?: (cluster: string) => ClusterBreaker;
}

/** What the connection told us about the caller. */
interface Peer {
  /** `spiffe://…` of a verified client certificate; undefined for plaintext. */
  readonly spiffeId?: string;
  readonly xfcc?: string;
  /** TLS terminated for a client outside the mesh (a Sidecar ingress listener's `tls`). */
  readonly external?: true;
}

const PLAINTEXT: Peer = Object.freeze({});

/** What this port does under one configuration: its protocol, where its traffic goes, its own TLS. */
interface PortPlan {
  readonly opaque: boolean;
  readonly protocol: UpstreamProtocol;
  readonly upstream: RelayUpstream;
  readonly tcp: PassThroughTarget;
  /** Shown in the TCP access log as the upstream host. */
  readonly shown: string;
  readonly tls?: ServerTlsSettings;
}

/** A client outside the mesh, set on the TLS socket itself: an HTTP/2 request reads it through its session's socket proxy. */
const EXTERNAL_PEER = Symbol('meshgate.ingressPeer');

export interface InboundListener {
  listen(port: number, host: string): Promise<number>;
  /** Serves a connection accepted elsewhere (the capture port, which found its original port). */
  accept(socket: Socket): void;
  close(): Promise<void>;
  destroy(): void;
}

export function createInboundListener(deps: InboundDeps): InboundListener {
  const peers = new WeakMap<Socket, Peer>();
  const cluster = `inbound|${deps.appPort}||`;

  // Where the port's traffic goes: the app on the same port, or a Sidecar ingress listener's endpoint
  // (`0.0.0.0`/`[::]`: the app host when it is of that family, else loopback, as Istio falls back).
  const targetOf = (ingress: IngressListener | undefined, snapshot: Snapshot | undefined): Pick<PortPlan, 'upstream' | 'tcp' | 'shown'> => {
    const e = ingress?.endpoint;
    // The listener's connectionPool, else the mesh config's connect timeout (policy/connection-limits.ts).
    const limits = ingress?.limits ?? limitsWithConnectTimeout(connectTimeoutFor(snapshot));
    // Finite connectionPool limits are counted by the port's circuit breaker, as a cluster's are.
    const upstreamOf = (key: string): RelayUpstream => ({ key, limits, ...(deps.breaker && hasFiniteLimits(limits) ? { breaker: deps.breaker(cluster) } : {}) });
    const connectTimeoutMs = limits.connectTimeoutMs;
    if (e?.kind === 'unix') {
      const key = UpstreamPools.unixKey(e.path);
      return { upstream: upstreamOf(key), tcp: { host: '', port: 0, path: e.path, connectTimeoutMs }, shown: key };
    }
    const v6 = (h: string): boolean => h.includes(':');
    const host = !e ? deps.appHost : e.host === 'pod-ipv4' ? (v6(deps.appHost) ? '127.0.0.1' : deps.appHost) : e.host === 'pod-ipv6' ? (v6(deps.appHost) ? deps.appHost : '::1') : e.host;
    const port = e ? e.port : deps.appPort;
    const key = UpstreamPools.key(host, port);
    // An IPv4 source (127.0.0.6 under capture) cannot reach an IPv6 address.
    const localAddress = v6(host) ? undefined : deps.appLocalAddress;
    return { upstream: upstreamOf(key), tcp: { host, port, localAddress, connectTimeoutMs }, shown: key };
  };
  const defaultPlan: PortPlan = { opaque: false, protocol: 'http1', ...targetOf(undefined, undefined) };

  // The port's plan, once per snapshot: whether it is TCP, whether the app speaks HTTP/2 (grpc,
  // http2) or HTTP/1.1 (gRPC aside), where it is. The Sidecar ingress listener's protocol wins over
  // the services'; of those, the port we listen on counts too, for services whose endpoints name the
  // sidecar's inbound port (no capture). No configuration yet: nothing is declared, HTTP/1.1.
  let listenPort = 0;
  const plans = new WeakMap<Snapshot, PortPlan>();
  const plan = (): PortPlan => {
    const snapshot = deps.holder.current();
    if (!snapshot) return defaultPlan;
    let known = plans.get(snapshot);
    if (known === undefined) {
      const ingress = sidecarIngressOf(snapshot).listeners.get(deps.appPort);
      const protocol = ingress?.protocol ?? workloadPortProtocol(snapshot.registry, deps.workload, listenPort ? [deps.appPort, listenPort] : [deps.appPort]);
      known = { opaque: isOpaqueTcp(protocol, deps.appPort), protocol: appPortProtocol(protocol), ...targetOf(ingress, snapshot), ...(ingress?.tls ? { tls: ingress.tls } : {}) };
      plans.set(snapshot, known);
    }
    return known;
  };

  const mtlsMode = (): MtlsMode => {
    const snapshot = deps.holder.current();
    return snapshot ? deps.security.for(snapshot).peerAuthentication.modeFor(deps.appPort) : 'STRICT';
  };

  // The mesh caller a connection's certificate names (core/tls/mesh-peer.ts), in the trust domains
  // of the configuration in force, and this hop's XFCC element for it.
  const meshPeer = (socket: TLSSocket): Peer | undefined => {
    const own = deps.identity.current().spiffeId;
    const snapshot = deps.holder.current();
    const peer = meshPeerOf(socket, snapshot ? deps.security.for(snapshot).trustDomains : trustDomainsOf([], own), deps.log);
    return peer && { spiffeId: peer.spiffeId, xfcc: meshXfcc(own, peer.certificate) };
  };

  // An HTTP/2 request sees its session's socket through a proxy object, not the socket the handshake
  // check saw: read again for it, once per session.
  const peerOf = (socket: Socket): Peer => {
    const known = peers.get(socket) ?? (socket as unknown as { [EXTERNAL_PEER]?: Peer })[EXTERNAL_PEER];
    if (known) return known;
    const tlsSocket = socket as TLSSocket;
    const peer = (typeof tlsSocket.getPeerCertificate === 'function' && meshPeer(tlsSocket)) || PLAINTEXT;
    peers.set(socket, peer);
    return peer;
  };

  // HTTP goes through the one request pipeline (core/proxy/http-handler.ts): parse, authenticate,
  // authorize, then the local-app act stage; this listener only says who the peer is and where the app is.
  // The identity and the mesh pools are for the checks of CUSTOM policies, which call an authorizer in the mesh.
  const ctx: HttpHandlerContext = {
    holder: deps.holder,
    pools: deps.pools,
    accessLog: deps.accessLog,
    random: Math.random,
    drain: deps.drain,
    security: deps.security,
    log: deps.log,
    identity: deps.identity,
    ...(deps.meshPools ? { meshPools: deps.meshPools } : {}),
    ...(deps.limits ? { limits: deps.limits } : {}),
    ...(deps.rateLimits ? { rateLimits: deps.rateLimits } : {}),
  };
  const listener: ListenerInfo = {
    port: deps.appPort,
    scheme: 'http',
    select: () => undefined,
    stages: Pipelines.sidecarInbound,
    destinationPort: () => deps.appPort,
    peerPrincipal: (req) => peerOf(connectionOf(req)).spiffeId,
    localApp: {
      upstream: () => plan().upstream,
      cluster,
      protocol: () => plan().protocol,
      ports: () => (listenPort ? [deps.appPort, listenPort] : [deps.appPort]),
      headers: (req, facts, requestId) => {
        const peer = peerOf(connectionOf(req));
        return inboundRequestHeaders(req.headers, { requestId, authority: facts.authority, ...(peer.xfcc ? { xfcc: peer.xfcc } : {}), ...(peer.external ? { proto: 'https' } : {}) });
      },
    },
  };
  // Upgrade requests (WebSocket) take the same stages, then a tunnel to the app (core/proxy/upgrade.ts).
  // CONNECT too, which the pipeline authorizes and then answers 404 as Envoy's inbound listener does
  // (Istio routes it no CONNECT; its RBAC filter runs first): without a handler node:http closes an
  // HTTP/1 CONNECT unanswered, and node:http2 answers an HTTP/2 one 405 itself, neither logged.
  const handlers = {
    request: (req: IncomingMessage, res: ServerResponse): void => handleHttpRequest(req, res, listener, ctx),
    upgrade: (req: IncomingMessage, socket: Socket, head: Buffer): void => handleUpgrade(req, socket, head, listener, ctx),
    connect: (req: IncomingMessage, socket: Socket, head: Buffer): void => handleUpgrade(req, socket, head, listener, ctx),
  };

  // The one accept step (core/proxy/accept.ts): limits, drain and timeouts for every connection.
  const step = new AcceptStep({ drain: deps.drain, limits: deps.limits });
  const { plaintext } = step.plaintext(handlers);
  // Sessions resume by tickets under keys rotated hourly (core/tls/session-tickets.ts).
  const tickets = new SessionTickets();
  tickets.rotateEvery();
  const sessions = tickets.contextOptions('meshgate-sidecar-inbound');
  const secure: Http2SecureServer = createSecureServer({ ...step.http2Options(), ...tlsContext(deps.identity.current()), ...sessions, requestCert: true, rejectUnauthorized: false, allowHTTP1: true });
  tickets.attach(secure);
  step.serve(secure, handlers);
  secure.on('secureConnection', (socket: TLSSocket) => {
    // Only mesh mTLS is terminated here: it needs a certificate that chains to the mesh root and
    // names a workload of this trust domain. Without one the connection is closed, whatever the mode.
    const peer = meshPeer(socket);
    if (!peer) return void socket.destroy();
    peers.set(socket, peer);
  });
  secure.on('tlsClientError', () => undefined);
  secure.on('sessionError', () => undefined);
  // New handshakes present the rotated certificate; open connections keep theirs.
  const unsubscribe = deps.identity.onRotate((cert) => {
    secure.setSecureContext({ ...tlsContext(cert), ...sessions });
    tickets.attach(secure);
  });

  // Mesh mTLS carrying TCP: terminated here, the caller's metadata frame read and answered
  // (tcp-peer-exchange.ts), the bytes to the app once AuthorizationPolicy's L4 rules allow the peer.
  const tcpSecure = createTlsServer({ ...tlsContext(deps.identity.current()), requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['istio-peer-exchange', 'istio'] }, (socket: TLSSocket) => {
    const peer = meshPeer(socket);
    if (!peer) return void socket.destroy();
    exchangeAsServer(socket, deps.peerMetadata?.exchange, PERMISSIVE_DETECTION_MS, (rest, peerMetadata, late) =>
      passToApp(socket, rest, { spiffeId: peer.spiffeId, ...(peerMetadata !== undefined ? { peerMetadata } : {}) }, late),
    );
  });
  tcpSecure.on('tlsClientError', () => undefined);
  const unsubscribeTcp = deps.identity.onRotate((cert) => tcpSecure.setSecureContext(tlsContext(cert)));

  // TLS a Sidecar ingress listener terminates for clients outside the mesh: no mesh identity, the
  // client certificate (MUTUAL) in this hop's XFCC element.
  const externalPeer = (socket: TLSSocket): Peer => {
    const presented = socket.authorized ? socket.getPeerCertificate() : undefined;
    const xfcc = presented && presented.raw ? meshXfcc(deps.identity.current().spiffeId, presented) : undefined;
    const peer: Peer = { external: true, ...(xfcc ? { xfcc } : {}) };
    (socket as unknown as { [EXTERNAL_PEER]?: Peer })[EXTERNAL_PEER] = peer;
    return peer;
  };
  const ingressTls = new IngressTls({
    credentials: deps.credentials,
    log: deps.log,
    step,
    handlers,
    onSecure: (socket) => void externalPeer(socket),
    onTcp: (socket) => {
      externalPeer(socket);
      passToApp(socket, Buffer.alloc(0), socket.servername ? { sni: socket.servername } : {});
    },
  });
  /** The port's own TLS, when a Sidecar ingress listener gives it and PeerAuthentication leaves the port DISABLE. */
  const ownTls = (p: PortPlan, mode: MtlsMode): ServerTlsSettings | undefined => (mode === 'DISABLE' ? p.tls : undefined);

  const onConnection = (socket: Socket): void => {
    step.accept(socket);
    const initialPlan = plan();
    const opaque = initialPlan.opaque;
    const initialMode = mtlsMode();
    // Declared TCP without mTLS or TLS of its own: no bytes to wait for.
    if (opaque && initialMode === 'DISABLE' && !ownTls(initialPlan, initialMode)) return passToApp(socket, Buffer.alloc(0), {});
    void peekClientHello(socket, opaque && initialMode === 'PERMISSIVE' ? PERMISSIVE_DETECTION_MS : undefined).then(
      ({ data, hello, stopped }) => {
        const mode = mtlsMode();
        const current = plan();
        const own = ownTls(current, mode);
        const silent = data.length === 0 && stopped === 'timeout';
        if (hello.state === 'not-tls' || silent) {
          if (mode === 'STRICT' || own) {
            deps.log.debug({ remote: socket.remoteAddress }, own ? 'plaintext connection refused: the port terminates TLS (Sidecar ingress tls)' : 'plaintext connection refused: PeerAuthentication STRICT');
            return void socket.destroy();
          }
          // Opaque TCP (a database protocol, say, or a client waiting for a server-first greeting):
          // no HTTP request line, so to the app as TCP. A declared TCP port is never HTTP.
          if (silent || opaque || !looksLikeHttp(data)) return passToApp(socket, data, {});
          socket.unshift(data);
          plaintext.accept(socket);
          return;
        }
        if (hello.state !== 'ok') return void socket.destroy();
        if (own) {
          socket.unshift(data);
          return ingressTls.accept(socket, own, !current.opaque);
        }
        if (mode === 'DISABLE' || (mode === 'PERMISSIVE' && !offersMeshAlpn(hello.alpn))) return passToApp(socket, data, hello.sni ? { sni: hello.sni } : {});
        socket.unshift(data);
        (offersHttpAlpn(hello.alpn) ? secure : tcpSecure).emit('connection', socket);
      },
      () => socket.destroy(),
    );
  };

  /**
   * A connection the app serves as TCP (opaque TCP, TLS it terminates itself, mesh mTLS carrying
   * TCP): AuthorizationPolicy's L4 rules decide (core authorize-connection stage), then the bytes
   * are piped to the app untouched (`data`: bytes already read from the socket).
   */
  const passToApp = (socket: Socket, data: Buffer, peer: { spiffeId?: string; sni?: string; peerMetadata?: string }, lateFrame = false): void => {
    // Istio's TCP metrics and the access-log line, reported by the destination (core/proxy/tcp-record.ts).
    const downstreamPeer = peerOfRequest(peer.peerMetadata !== undefined ? { [PEER_METADATA_HEADER]: peer.peerMetadata } : {}, peer.spiffeId);
    const allowed = authorizeConnection(
      { holder: deps.holder, security: deps.security, accessLog: deps.accessLog, log: deps.log },
      { socket, destinationPort: deps.appPort, cluster, reporter: 'destination', ...(peer.spiffeId ? { spiffeId: peer.spiffeId } : {}), ...(downstreamPeer ? { downstreamPeer } : {}), ...(peer.sni ? { sni: peer.sni } : {}) },
    );
    if (!allowed) return;
    step.release(socket);
    const { tcp, shown } = plan();
    passThrough(socket, data, tcp, {
      ...(lateFrame ? { fromDownstream: new PeerFrameStripper() } : {}),
      record: { observer: deps.accessLog, reporter: 'destination', cluster, downstreamPeer, sni: peer.sni },
      onFailure: (err) => {
        deps.log.debug({ app: shown, error: err.message }, 'connection to the app failed (UF): closed');
        socket.destroy();
      },
    });
  };

  const server = createNetServer({ noDelay: true }, onConnection);
  return {
    listen: async (port, host) => (listenPort = await listenOn(server, port, host)),
    accept: onConnection,
    // Stops accepting; the connections open are the drain's to finish.
    close: () =>
      new Promise((resolve) => {
        unsubscribe();
        tickets.stop();
        unsubscribeTcp();
        ingressTls.close();
        server.close(() => resolve());
      }),
    destroy: () => {
      unsubscribe();
      tickets.stop();
      unsubscribeTcp();
      ingressTls.close();
      step.destroy();
      server.close();
      plaintext.close();
      secure.close();
      tcpSecure.close();
    },
  };
}

/** Istio's client proxies offer `istio-http/1.1`, `istio-h2`, `istio-peer-exchange`, `istio`. */
function offersMeshAlpn(alpn: readonly string[] | undefined): boolean {
  return alpn?.some((p) => p.startsWith('istio')) ?? false;
}

const HTTP_ALPN = new Set(['http/1.0', 'http/1.1', 'h2', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2']);

/** A mesh peer that speaks HTTP says so in its ALPN; one offering only `istio-peer-exchange`/`istio` carries TCP. */
function offersHttpAlpn(alpn: readonly string[] | undefined): boolean {
  return alpn === undefined || alpn.some((p) => HTTP_ALPN.has(p));
}

/**
 * Whether a plaintext connection's first bytes can be an HTTP request: a method token (upper case,
 * as the parse stage requires) and a space, or the start of one still arriving. Anything else (a
 * binary protocol, a lower-case greeting) is opaque TCP. A silent client stays HTTP (and meets the
 * header timeout), as a server-first protocol is not detectable by its first bytes.
 */
export function looksLikeHttp(data: Buffer): boolean {
  const head = data.subarray(0, 17).toString('latin1');
  return /^[A-Z]{1,16}(?: |$)/.test(head);
}

function tlsContext(cert: WorkloadCertificate): { key: string; cert: string; ca: string } {
  return { key: cert.keyPem, cert: cert.certChainPem, ca: cert.rootCertPem };
}

/** The TCP (or TLS) socket a request came in on, for HTTP/1 and HTTP/2 alike. */
function connectionOf(req: IncomingMessage): Socket {
  const stream = (req as unknown as { stream?: { session?: { socket?: Socket } } }).stream;
  return stream?.session?.socket ?? req.socket;
}

