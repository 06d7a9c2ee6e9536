// The compiled routing table: what the request path reads. Everything here is built once per
// snapshot (sorted, lower-cased, regexes compiled), so a lookup only walks and compares.

import type { IncomingHttpHeaders } from 'node:http';
import type { Cluster } from '../policy/types.js';
import type { ServerTlsSettings } from '../model/istio.js';
import type { StringPredicate } from './string-match.js';
import type { ScopedHost } from './gateway-binding.js';

/** The facts of one request that routes may look at. */
export interface RequestFacts {
  /** The Gateway (service) port the request arrived on — not the container port. */
  readonly port: number;
  /** Host without port, lower-case. */
  readonly host: string;
  /** `:authority` / Host as received. */
  readonly authority: string;
  /** Path without the query string. */
  readonly path: string;
  /** The raw query string without `?` ('' when none). */
  readonly queryString: string;
  /** First value of each query parameter. */
  readonly query: ReadonlyMap<string, string>;
  readonly method: string;
  readonly scheme: string;
  readonly headers: IncomingHttpHeaders;
  /** The verified JWT's claims, once authentication has run (routes that match claims ask for it). */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/** One compiled condition of a match; `what` names it for people (`uri prefix "/user"`). */
export interface Condition {
  readonly what: string;
  /** The value the condition looked at, for `explain` (e.g. the path). */
  actual(req: RequestFacts): string;
  test(req: RequestFacts): boolean;
  /** It reads the request's JWT claims (routing/claim-match.ts): authentication must run first. */
  readonly claim?: true;
}

export interface HeaderRules {
  /** Lower-case names. */
  readonly set: ReadonlyArray<readonly [string, string]>;
  readonly add: ReadonlyArray<readonly [string, string]>;
  readonly remove: readonly string[];
}

export interface DestinationTarget {
  /** Relative weight (already 100 for a lone destination). */
  readonly weight: number;
  readonly host: string;
  readonly port: number;
  readonly subset: string;
  readonly clusterName: string;
  /** Undefined when the service, port or subset does not exist: 503 NC at request time. */
  readonly cluster: Cluster | undefined;
  /** Stands for Gateway API backendRefs that cannot be used: 500 instead of 503 (gateway-api/http-rules.ts). */
  readonly invalidBackend?: true;
  readonly requestHeaders: HeaderRules;
  readonly responseHeaders: HeaderRules;
  /** Authority rewrite from destination-level `headers.request.set.host`. */
  readonly authority?: string;
}

export interface PathRewrite {
  /** Rewrite the path (without query) of a request that matched this route. */
  (path: string): string;
}

export interface RetryPolicy {
  /** Retries after the first attempt (Istio `attempts`). */
  readonly attempts: number;
  /** 0 = none (Istio's default). */
  readonly perTryTimeoutMs: number;
  /** Envoy retry conditions: connect-failure, refused-stream, reset, 5xx, gateway-error, retriable-4xx, retriable-status-codes… */
  readonly on: ReadonlySet<string>;
  readonly statusCodes: ReadonlySet<number>;
  /** gRPC status numbers retried (`cancelled`, `unavailable` … in retryOn). */
  readonly grpcStatuses: ReadonlySet<number>;
  readonly backoffBaseMs: number;
  /** Envoy's previous-hosts predicate: a retry avoids endpoints already tried (`retryIgnorePreviousHosts`, default on). */
  readonly avoidPreviousHosts: boolean;
}

/**
 * Chances are kept per million, as Envoy's FractionalPercent with the MILLION denominator holds them
 * (Istio's `percentage.value` has a precision of 0.0001).
 */
export type PerMillion = number;

/** `fault` of a route (docs/reference/routing.md); a part without a percentage is left out, since it never fires. */
export interface FaultPolicy {
  readonly delay?: { readonly ms: number; readonly chance: PerMillion };
  /** `grpcStatus` set: a gRPC answer (HTTP 200, grpc-status); otherwise `httpStatus`. */
  readonly abort?: { readonly chance: PerMillion; readonly httpStatus: number; readonly grpcStatus?: number };
}

/** One `mirror`/`mirrors[]` destination with the share of requests it receives. */
export interface MirrorPolicy {
  readonly host: string;
  readonly port: number;
  readonly subset: string;
  readonly clusterName: string;
  /** Undefined when the service, port or subset does not exist: nothing is mirrored. */
  readonly cluster: Cluster | undefined;
  readonly chance: PerMillion;
}

/** `corsPolicy` of a route, with the header values it answers already joined. */
export interface CorsRules {
  /** An origin is allowed when one of these matches it (or matches the literal `*`). */
  readonly allowOrigins: readonly StringPredicate[];
  readonly allowMethods?: string;
  readonly allowHeaders?: string;
  readonly exposeHeaders?: string;
  /** Seconds, as the access-control-max-age value. */
  readonly maxAge?: string;
  readonly allowCredentials: boolean;
  /** `unmatchedPreflights: FORWARD` (the default): a preflight from an origin not allowed goes upstream. */
  readonly forwardUnmatchedPreflights: boolean;
}

export interface ForwardAction {
  readonly kind: 'forward';
  readonly destinations: readonly DestinationTarget[];
  readonly totalWeight: number;
  readonly rewritePath?: PathRewrite;
  readonly authority?: string;
  readonly requestHeaders: HeaderRules;
  readonly responseHeaders: HeaderRules;
  /** 0 = no route timeout (Istio's default). */
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  readonly fault?: FaultPolicy;
  /** Empty when the route mirrors nothing. */
  readonly mirrors: readonly MirrorPolicy[];
  readonly cors?: CorsRules;
}

export interface RedirectAction {
  readonly kind: 'redirect';
  readonly code: number;
  readonly uri?: string;
  /** `prefixRewrite` as configured (for printing) and compiled against the route's match. */
  readonly prefixRewrite?: string;
  readonly rewritePath?: PathRewrite;
  readonly authority?: string;
  readonly scheme?: string;
  readonly port?: number;
  readonly derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  readonly responseHeaders: HeaderRules;
  readonly cors?: CorsRules;
}

export interface DirectResponseAction {
  readonly kind: 'direct';
  readonly status: number;
  readonly body?: Buffer;
  readonly responseHeaders: HeaderRules;
  readonly cors?: CorsRules;
}

export type RouteAction = ForwardAction | RedirectAction | DirectResponseAction;

/** Where a compiled route came from, for explain, logs and `meshgate routes`. */
export interface RouteSource {
  /** `namespace/name` of the VirtualService. */
  readonly virtualService: string;
  readonly file: string;
  readonly line: number;
  /** Index in `spec.http`, and of the match within it (-1 when the route has no match). */
  readonly httpIndex: number;
  readonly matchIndex: number;
}

export interface CompiledRoute {
  /** Envoy route name: `<route.name>.<match.name>`, `<route.name>`, or '' (access log ROUTE_NAME). */
  readonly name: string;
  readonly source: RouteSource;
  /** All must hold; empty = matches everything. */
  readonly conditions: readonly Condition[];
  readonly catchAll: boolean;
  readonly action: RouteAction;
}

export interface VirtualHost {
  /** The domain this virtual host answers for (`user.example.com`, `*.example.com`, `*`). */
  readonly domain: string;
  readonly routes: readonly CompiledRoute[];
  /** `httpsRedirect: true` on its server: plaintext requests get a 301 to https. */
  readonly requireTls: boolean;
}

export interface RouteConfig {
  /** Istio's route config name: `http.80` or `https.443.<portName>.<gw>.<ns>`. */
  readonly name: string;
  readonly virtualHosts: readonly VirtualHost[];
  /** Exact → longest suffix wildcard → prefix wildcard → `*`. */
  findVirtualHost(host: string): VirtualHost | undefined;
  /**
   * Sidecar outbound: some service declares this port HTTP (or a ServiceEntry leaves it undeclared),
   * so Istio listens on 0.0.0.0 for it and a captured request to any address is routed by its Host
   * (routing/captured-route-config.ts).
   */
  readonly anyAddress?: boolean;
}

/** One Gateway server after merging, as a listener will serve it. */
export interface ServerConfig {
  /** `<gwNamespace>/<gwName>` and server index, for tools. */
  readonly gateway: string;
  readonly serverIndex: number;
  /** Its Gateway `port.number`: `match.port` and default destination ports compare with it. */
  readonly port: number;
  readonly portName: string;
  readonly protocol: string;
  /** Host names the server declares (namespace scope stripped), lower-case. */
  readonly hosts: readonly string[];
  /** The same hosts with the namespace each admits VirtualServices from (`team/*`), for tools. */
  readonly scopedHosts: readonly ScopedHost[];
  readonly tls?: ServerTlsSettings;
  /** Route config serving its HTTP traffic (shared `http.<port>` for plaintext servers). */
  readonly routeConfig?: string;
  /** PASSTHROUGH servers: VirtualService `tls` routes keyed by SNI (tls-routes.ts). */
  readonly tlsRoutes?: TlsRouteTable;
  /** TCP servers (and TLS servers that terminate): the one `tcp` route that applies, if any. */
  readonly tcpRoute?: L4Route;
}

/** Where a compiled `tls`/`tcp` route came from. */
export interface L4RouteSource {
  /** `namespace/name` of the VirtualService. */
  readonly virtualService: string;
  readonly file: string;
  readonly line: number;
  readonly kind: 'tls' | 'tcp';
  /** Index in `spec.tls` / `spec.tcp`, and of the match within it (-1 when the rule has no match). */
  readonly routeIndex: number;
  readonly matchIndex: number;
}

/** Weighted destinations for a connection that is piped, not parsed (tls passthrough and tcp). */
export interface L4Route {
  readonly source: L4RouteSource;
  readonly destinations: readonly DestinationTarget[];
  readonly totalWeight: number;
}

export interface TlsRoute extends L4Route {
  /** The `sniHosts` entry this route answers for, lower-case (`a.example.com`, `*.example.com`, `*`). */
  readonly sniHost: string;
}

export interface TlsRouteTable {
  /** Every SNI key, in the order VirtualServices declared them. */
  readonly routes: readonly TlsRoute[];
  /** Exact SNI, then the wildcard with the longest suffix, then `*`; no SNI matches nothing. */
  lookup(sni: string | undefined): TlsRoute | undefined;
}

export interface Listener {
  /**
   * The port it listens on: a server port the gateway Service exposes is translated to its
   * targetPort (80 → 8080), any other is used as-is, so one listener may hold servers of several
   * Gateway ports (docs/reference/routing.md). Without a Service mapping (offline tools) it is the Gateway port.
   */
  readonly port: number;
  /** HTTP, HTTPS, TLS, TCP … of the first server that claimed the port. */
  readonly protocol: string;
  /** Each with its own Gateway port number. */
  readonly servers: readonly ServerConfig[];
  /** The merged plaintext HTTP route config on this port, if any server is plaintext HTTP. */
  readonly httpRouteConfig?: string;
}
