// Where an EnvoyFilter's HTTP_FILTER patch puts the local rate limit filter in the HTTP filter chain
// Istio builds, and so which requests its bucket counts. Istio's chain (sidecar and gateway alike) is
//
//   istio.metadata_exchange, envoy.filters.http.ext_authz (CUSTOM), envoy.filters.http.jwt_authn,
//   istio_authn, envoy.filters.http.rbac (DENY, ALLOW), grpc_web, grpc_stats, istio.alpn,
//   envoy.filters.http.fault, envoy.filters.http.cors, istio.stats, envoy.filters.http.router
//
// INSERT_FIRST, and INSERT_BEFORE without a subFilter, put the limiter first: it counts every
// request, those RBAC then denies too. INSERT_BEFORE the router (or after fault) puts it last: a
// request answered by an earlier filter (denied, aborted) takes no token. meshgate's pipeline does
// that work in stages (proxy/http-handler.ts), and counts a limit at the matching point of them.

/**
 * The pipeline point a limit counts at: before RequestAuthentication, between it and
 * AuthorizationPolicy, after AuthorizationPolicy (where RateLimitPolicy counts), or after fault
 * injection, just before the request is acted on.
 */
export type LimitPosition = 'before-authn' | 'before-authz' | 'after-authz' | 'after-fault';

export interface ChainPosition {
  readonly position: LimitPosition;
  /** The patch's words: `INSERT_FIRST`, `INSERT_BEFORE envoy.filters.http.router`. */
  readonly placement: string;
  /** A subFilter meshgate does not place in Istio's chain: counted just before the router. */
  readonly unknownFilter?: boolean;
}

/** Istio's HTTP filters in chain order, each with the point a limiter inserted right before it counts at. */
const CHAIN: ReadonlyArray<readonly [string, LimitPosition]> = [
  ['istio.metadata_exchange', 'before-authn'],
  ['envoy.filters.http.ext_authz', 'before-authn'],
  // Between ext_authz and jwt_authn: meshgate asks a CUSTOM authorizer after the JWT check, so the
  // nearest point is before both (a request the authorizer denies is counted too).
  ['envoy.filters.http.jwt_authn', 'before-authn'],
  ['istio_authn', 'before-authz'],
  ['envoy.filters.http.rbac', 'before-authz'],
  ['envoy.filters.http.grpc_web', 'after-authz'],
  ['envoy.filters.http.grpc_stats', 'after-authz'],
  ['istio.alpn', 'after-authz'],
  ['envoy.filters.http.fault', 'after-authz'],
  ['envoy.filters.http.cors', 'after-fault'],
  ['istio.stats', 'after-fault'],
  ['envoy.filters.http.router', 'after-fault'],
];

/** `operation` is INSERT_FIRST, INSERT_BEFORE or INSERT_AFTER (ADD and INSERT_AFTER the router are refused before this). */
export function chainPosition(operation: string, subFilter: string | undefined): ChainPosition {
  const placement = subFilter === undefined ? operation : `${operation} ${subFilter}`;
  // Istio: INSERT_BEFORE with no filter named inserts at the front, as INSERT_FIRST does.
  if (operation === 'INSERT_FIRST' || subFilter === undefined) return { position: 'before-authn', placement };
  const at = CHAIN.findIndex(([name]) => name === subFilter);
  if (at < 0) return { position: 'after-fault', placement, unknownFilter: true };
  // After a filter is before the next one.
  const gap = operation === 'INSERT_AFTER' ? at + 1 : at;
  return { position: CHAIN[Math.min(gap, CHAIN.length - 1)]![1], placement };
}

/** What each point means, for `meshgate explain`, `meshgate routes` and the admin port. */
export const POSITION_TEXT: Readonly<Record<LimitPosition, string>> = {
  'before-authn': 'before RequestAuthentication and AuthorizationPolicy (denied requests are counted too)',
  'before-authz': 'after RequestAuthentication, before AuthorizationPolicy (requests it denies are counted too)',
  'after-authz': 'after AuthorizationPolicy, before fault injection',
  'after-fault': 'after AuthorizationPolicy and fault injection, just before routing',
};
