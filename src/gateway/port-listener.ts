// The listener for one listen port, with the servers of every Gateway port that listens there.
// Plaintext HTTP goes straight to the HTTP server. When the port has TLS servers, the ClientHello is
// peeked (not consumed) to read the SNI, which picks the Gateway server through the SNI index the
// snapshot's listener compiles once (core/routing/sni-index.ts): PASSTHROUGH pipes the
// untouched bytes to the `tls` route's destination; the others hand the socket to that server's own
// TLS server. A port whose one TLS server terminates for every host skips the peek: the hello could
// not change the choice, and a handshake is cheaper without reading it twice. The choice uses the snapshot current at accept; a connection that arrives before the
// first configuration waits for it.

import { offersIstioMtls } from '../core/routing/auto-passthrough.js';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { listenOn } from '../core/proxy/listen.js';
import { handleHttpRequest, Pipelines, type HttpHandlerContext, type ListenerInfo } from '../core/proxy/http-handler.js';
import { handleUpgrade } from '../core/proxy/upgrade.js';
import { AcceptStep } from '../core/proxy/accept.js';
import { authorizeConnection } from '../core/proxy/stages/authorize-connection.js';
import { forwardTcp } from '../core/proxy/tcp-forward.js';
import type { RequestFacts, ServerConfig } from '../core/routing/types.js';
import type { Snapshot } from '../core/snapshot/snapshot.js';
import { peekClientHello } from '../core/tls/client-hello.js';
import type { CredentialStore } from '../core/tls/types.js';
import { tlsServerFor } from '../core/routing/server-hosts.js';
import { sniIndexOf } from '../core/routing/sni-index.js';
import { TlsServers } from './tls-servers.js';
import type { SessionTickets } from '../core/tls/session-tickets.js';

export interface PortListenerDeps {
  readonly ctx: HttpHandlerContext;
  readonly credentials: CredentialStore;
  readonly log: Logger;
  /** ACME HTTP-01 answers, served before routing on plaintext HTTP. */
  readonly acmeChallenge?: (token: string) => string | undefined | Promise<string | undefined>;
  /** TLS session ticket keys of every TLS server. */
  readonly tickets: SessionTickets;
}

export interface PortListener {
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
  destroy(): void;
}

/**
 * `servicePorts`: the gateway Service ports (`--ports`) whose targetPort this is; none for a server
 * port listened on as-is.
 */
export function createPortListener(servicePorts: readonly number[], deps: PortListenerDeps): PortListener {
  const { ctx } = deps;
  // The snapshot's listeners are keyed by the port actually listened on, known once listening.
  let listenPort = 0;
  const current = (snapshot: Snapshot | undefined) => snapshot?.listeners.get(listenPort);
  const plain: ListenerInfo = {
    get port() {
      return servicePorts[0] ?? listenPort;
    },
    scheme: 'http',
    stages: Pipelines.gatewayPlaintext,
    select: (snapshot) => {
      const name = current(snapshot)?.httpRouteConfig;
      return name ? snapshot.routeConfigs.get(name) : undefined;
    },
    httpsPort: (facts, snapshot) => httpsRedirectPort(facts, snapshot, listenPort, servicePorts),
    ...(deps.acmeChallenge ? { acmeChallenge: deps.acmeChallenge } : {}),
  };
  // The one accept step (core/proxy/accept.ts): limits, drain and timeouts for every connection.
  const step = new AcceptStep(ctx);
  // Plaintext connections speak HTTP/1.1 or h2c with prior knowledge, told apart by their first bytes;
  // requests node:http cannot read are answered by the limits' clientError handler (400/408/414/431).
  const { plaintext } = step.plaintext({
    request: (req, res) => handleHttpRequest(req, res, plain, ctx),
    upgrade: (req, socket, head) => handleUpgrade(req, socket, head, plain, ctx),
    // CONNECT takes the same pipeline, which answers it 404 as Envoy does (without a handler, node
    // closes the connection with no answer).
    connect: (req, socket, head) => handleUpgrade(req, socket, head, plain, ctx),
  });
  const tls = new TlsServers({ ctx, accept: step, credentials: deps.credentials, log: deps.log, tickets: deps.tickets, sni: (snapshot) => sniIndexOf(current(snapshot)) });

  const onConnection = (socket: Socket): void => {
    step.accept(socket);
    // The Service ports listen before the first configuration: a connection that early waits for it.
    if (ctx.holder.current()) return dispatch(socket);
    const off = ctx.holder.onSwap(() => {
      off();
      if (!socket.destroyed) dispatch(socket);
    });
  };

  // A connection passed through as TCP meets the gateway's AuthorizationPolicy L4 rules (as Istio's
  // gateway TCP filter chains do): closed, counted and logged when denied.
  const authorized = (socket: Socket, cluster: string | undefined, sni?: string): boolean =>
    !ctx.security ||
    authorizeConnection(
      { holder: ctx.holder, security: ctx.security, accessLog: ctx.accessLog, log: deps.log },
      { socket, destinationPort: listenPort, cluster: cluster ?? '', reporter: 'source', ...(sni ? { sni } : {}) },
    );

  // Piped connections get the TLS an HTTP request to the same cluster would: auto mTLS to sidecars.
  const tcpDeps = { random: ctx.random, observer: ctx.accessLog, tls: { connector: ctx.pools.connector, ...(ctx.peerMetadata ? { peerMetadata: ctx.peerMetadata } : {}), ...(ctx.identity ? { identity: ctx.identity } : {}) } };

  const dispatch = (socket: Socket): void => {
    const listener = current(ctx.holder.current());
    // A plain TCP server: its one `tcp` route takes the whole connection (docs/reference/routing.md).
    const tcp = listener?.protocol === 'TCP' ? listener.servers.find((s) => s.tcpRoute)?.tcpRoute : undefined;
    if (tcp) {
      if (!authorized(socket, tcp.destinations[0]?.clusterName)) return;
      step.release(socket);
      forwardTcp(socket, Buffer.alloc(0), tcp.destinations, tcp.totalWeight, tcpDeps);
      return;
    }
    const sni = sniIndexOf(listener);
    if (sni.servers.length === 0) {
      plaintext.accept(socket);
      return;
    }
    const sole = soleTerminatingServer(sni.servers, listener?.httpRouteConfig);
    if (sole) {
      // Whatever the hello says, the peek could only choose this server: OpenSSL reads the hello
      // itself, which spares every handshake a read, a parse and a copy in JavaScript.
      tls.accept(socket, sole);
      return;
    }
    void peekClientHello(socket).then(
      ({ data, hello }) => {
        if (hello.state === 'not-tls' && listener?.httpRouteConfig) {
          socket.unshift(data);
          plaintext.accept(socket);
          return;
        }
        if (hello.state !== 'ok') return void socket.destroy();
        // Re-read the snapshot: a reload may have landed while the hello was in flight.
        const server = sniIndexOf(current(ctx.holder.current())).lookup(hello.sni);
        if (!server) return void socket.destroy();
        const mode = server.tls?.mode ?? 'PASSTHROUGH';
        if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') {
          // AUTO_PASSTHROUGH takes only Istio mTLS to a sidecar, which its client says in ALPN.
          if (mode === 'AUTO_PASSTHROUGH' && !offersIstioMtls(hello.alpn)) return void socket.destroy();
          const route = server.tlsRoutes?.lookup(hello.sni);
          if (!route) return void socket.destroy();
          if (!authorized(socket, route.destinations[0]?.clusterName, hello.sni)) return;
          step.release(socket);
          forwardTcp(socket, data, route.destinations, route.totalWeight, hello.sni ? { ...tcpDeps, sni: hello.sni } : tcpDeps);
          return;
        }
        socket.unshift(data);
        tls.accept(socket, server);
      },
      () => socket.destroy(),
    );
  };

  const server: Server = createNetServer({ noDelay: true }, onConnection);
  return {
    listen: async (port, host) => (listenPort = await listenOn(server, port, host)),
    // Stops accepting; the connections open are the drain's to finish.
    close: () => new Promise((resolve) => server.close(() => resolve())),
    destroy: () => {
      step.destroy();
      tls.destroy();
      plaintext.close();
      server.close();
    },
  };
}

/**
 * The listener's one TLS server when the ClientHello cannot change where a connection goes: it
 * terminates TLS, takes every SNI and none (`*` among its hosts), and no plaintext HTTP shares the
 * port. Anything that is not a usable hello then fails OpenSSL's handshake and is closed, as the peek
 * would have closed it.
 */
function soleTerminatingServer(servers: readonly ServerConfig[], httpRouteConfig: string | undefined): ServerConfig | undefined {
  const only = servers.length === 1 ? servers[0]! : undefined;
  if (!only || httpRouteConfig || !only.hosts.includes('*')) return undefined;
  const mode = only.tls?.mode ?? 'PASSTHROUGH';
  return mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH' ? undefined : only;
}

/**
 * Where httpsRedirect sends a client (Envoy keeps the Host as sent, so its location names the HTTP
 * port). A Host with the listen port itself came straight to the gateway: it goes to the listen port
 * of the TLS server for its host. Any other Host came through the Service: it goes to that server's
 * Gateway port (443, left out of the location).
 */
function httpsRedirectPort(facts: RequestFacts, snapshot: Snapshot, listenPort: number, servicePorts: readonly number[]): number | undefined {
  const m = /:(\d+)$/.exec(facts.authority);
  const sent = m ? Number(m[1]) : undefined;
  const target = tlsServerFor(snapshot.listeners, facts.host);
  if (sent === listenPort && !servicePorts.includes(sent)) return target?.listenPort;
  return target?.server.port;
}
