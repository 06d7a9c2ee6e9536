// Readonly shapes of the networking.istio.io resources meshgate accepts, field names exactly as
// Istio's API spells them. Validation (core/config) guarantees these shapes before anything reads them.

export type Labels = Readonly<Record<string, string>>;

// ---------------------------------------------------------------- Gateway

export interface GatewayPort {
  readonly number: number;
  readonly protocol: string;
  readonly name: string;
  readonly targetPort?: number;
}

export type ServerTlsMode = 'PASSTHROUGH' | 'SIMPLE' | 'MUTUAL' | 'AUTO_PASSTHROUGH' | 'ISTIO_MUTUAL' | 'OPTIONAL_MUTUAL';
export type TlsProtocolVersion = 'TLS_AUTO' | 'TLSV1_0' | 'TLSV1_1' | 'TLSV1_2' | 'TLSV1_3';

export interface ServerTlsSettings {
  readonly httpsRedirect?: boolean;
  readonly mode?: ServerTlsMode;
  readonly serverCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly caCrl?: string;
  readonly credentialName?: string;
  readonly credentialNames?: readonly string[];
  readonly tlsCertificates?: ReadonlyArray<{ serverCertificate?: string; privateKey?: string; caCertificates?: string }>;
  readonly subjectAltNames?: readonly string[];
  readonly verifyCertificateSpki?: readonly string[];
  readonly verifyCertificateHash?: readonly string[];
  readonly minProtocolVersion?: TlsProtocolVersion;
  readonly maxProtocolVersion?: TlsProtocolVersion;
  readonly cipherSuites?: readonly string[];
}

export interface GatewayServer {
  readonly port: GatewayPort;
  readonly bind?: string;
  readonly hosts: readonly string[];
  readonly tls?: ServerTlsSettings;
  readonly name?: string;
}

export interface GatewaySpec {
  readonly selector?: Labels;
  readonly servers: readonly GatewayServer[];
}

// ---------------------------------------------------------------- VirtualService

/** A oneof: exactly one of the three is set (validation guarantees it). */
export interface StringMatch {
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: string;
}

export interface HTTPMatchRequest {
  readonly name?: string;
  readonly uri?: StringMatch;
  readonly scheme?: StringMatch;
  readonly method?: StringMatch;
  readonly authority?: StringMatch;
  readonly headers?: Readonly<Record<string, StringMatch>>;
  readonly port?: number;
  readonly sourceLabels?: Labels;
  readonly gateways?: readonly string[];
  readonly queryParams?: Readonly<Record<string, StringMatch>>;
  readonly ignoreUriCase?: boolean;
  readonly withoutHeaders?: Readonly<Record<string, StringMatch>>;
  readonly sourceNamespace?: string;
  readonly statPrefix?: string;
}

export interface PortSelector {
  readonly number?: number;
}

export interface Destination {
  readonly host: string;
  readonly subset?: string;
  readonly port?: PortSelector;
}

export interface HeaderOperations {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: readonly string[];
}

export interface Headers {
  readonly request?: HeaderOperations;
  readonly response?: HeaderOperations;
}

export interface HTTPRouteDestination {
  readonly destination: Destination;
  readonly weight?: number;
  readonly headers?: Headers;
}

export interface HTTPRedirect {
  readonly uri?: string;
  /** Replaces the matched uri prefix (the rest of the path and the query stay). */
  readonly prefixRewrite?: string;
  readonly authority?: string;
  readonly port?: number;
  readonly derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  readonly scheme?: string;
  readonly redirectCode?: number;
}

export interface HTTPDirectResponse {
  readonly status: number;
  readonly body?: { readonly string?: string; readonly bytes?: string };
}

export interface RegexRewrite {
  readonly match: string;
  readonly rewrite: string;
}

export interface HTTPRewrite {
  readonly uri?: string;
  readonly authority?: string;
  readonly uriRegexRewrite?: RegexRewrite;
}

export interface Percent {
  readonly value?: number;
}

export interface HTTPRetry {
  readonly attempts?: number;
  readonly perTryTimeout?: string;
  readonly retryOn?: string;
  readonly retryRemoteLocalities?: boolean;
  readonly retryIgnorePreviousHosts?: boolean;
  readonly backoff?: string;
}

export interface HTTPFaultInjection {
  readonly delay?: { readonly fixedDelay?: string; readonly percentage?: Percent; readonly percent?: number };
  readonly abort?: { readonly httpStatus?: number; readonly grpcStatus?: string; readonly percentage?: Percent };
}

export interface HTTPMirrorPolicy {
  readonly destination: Destination;
  readonly percentage?: Percent;
}

export interface CorsPolicy {
  readonly allowOrigins?: readonly StringMatch[];
  readonly allowOrigin?: readonly string[];
  readonly allowMethods?: readonly string[];
  readonly allowHeaders?: readonly string[];
  readonly exposeHeaders?: readonly string[];
  readonly maxAge?: string;
  readonly allowCredentials?: boolean;
  readonly unmatchedPreflights?: 'FORWARD' | 'IGNORE' | 'UNSPECIFIED';
}

export interface HTTPRoute {
  readonly name?: string;
  readonly match?: readonly HTTPMatchRequest[];
  readonly route?: readonly HTTPRouteDestination[];
  readonly redirect?: HTTPRedirect;
  readonly directResponse?: HTTPDirectResponse;
  readonly delegate?: { readonly name?: string; readonly namespace?: string };
  readonly rewrite?: HTTPRewrite;
  readonly timeout?: string;
  readonly retries?: HTTPRetry;
  readonly fault?: HTTPFaultInjection;
  readonly mirror?: Destination;
  readonly mirrors?: readonly HTTPMirrorPolicy[];
  readonly mirrorPercentage?: Percent;
  /** Deprecated whole-number form of mirrorPercentage. */
  readonly mirrorPercent?: number;
  readonly corsPolicy?: CorsPolicy;
  readonly headers?: Headers;
}

export interface RouteDestination {
  readonly destination: Destination;
  readonly weight?: number;
}

export interface TLSMatchAttributes {
  readonly sniHosts: readonly string[];
  readonly destinationSubnets?: readonly string[];
  readonly port?: number;
  readonly sourceLabels?: Labels;
  readonly gateways?: readonly string[];
  readonly sourceNamespace?: string;
}

export interface TLSRoute {
  readonly match: readonly TLSMatchAttributes[];
  readonly route?: readonly RouteDestination[];
}

export interface L4MatchAttributes {
  readonly destinationSubnets?: readonly string[];
  readonly port?: number;
  readonly sourceLabels?: Labels;
  readonly gateways?: readonly string[];
  readonly sourceNamespace?: string;
}

export interface TCPRoute {
  readonly match?: readonly L4MatchAttributes[];
  readonly route?: readonly RouteDestination[];
}

export interface VirtualServiceSpec {
  readonly hosts?: readonly string[];
  readonly gateways?: readonly string[];
  readonly http?: readonly HTTPRoute[];
  readonly tls?: readonly TLSRoute[];
  readonly tcp?: readonly TCPRoute[];
  readonly exportTo?: readonly string[];
}

// ---------------------------------------------------------------- DestinationRule

export type SimpleLB = 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';

export interface ConsistentHashLB {
  readonly httpHeaderName?: string;
  readonly httpCookie?: { readonly name: string; readonly path?: string; readonly ttl?: string };
  readonly useSourceIp?: boolean;
  readonly httpQueryParameterName?: string;
  readonly ringHash?: { readonly minimumRingSize?: number };
  readonly maglev?: { readonly tableSize?: number };
  readonly minimumRingSize?: number;
}

export interface LocalityLbSetting {
  readonly distribute?: ReadonlyArray<{ readonly from?: string; readonly to?: Readonly<Record<string, number>> }>;
  readonly failover?: ReadonlyArray<{ readonly from?: string; readonly to?: string }>;
  readonly failoverPriority?: readonly string[];
  readonly enabled?: boolean;
}

export interface LoadBalancerSettings {
  readonly simple?: SimpleLB;
  readonly consistentHash?: ConsistentHashLB;
  readonly localityLbSetting?: LocalityLbSetting;
  readonly warmupDurationSecs?: string;
}

export interface ConnectionPoolSettings {
  readonly tcp?: {
    readonly maxConnections?: number;
    readonly connectTimeout?: string;
    readonly tcpKeepalive?: { readonly probes?: number; readonly time?: string; readonly interval?: string };
    readonly maxConnectionDuration?: string;
    readonly idleTimeout?: string;
  };
  readonly http?: {
    readonly http1MaxPendingRequests?: number;
    readonly http2MaxRequests?: number;
    readonly maxRequestsPerConnection?: number;
    readonly maxRetries?: number;
    readonly idleTimeout?: string;
    readonly h2UpgradePolicy?: string;
    readonly useClientProtocol?: boolean;
    readonly maxConcurrentStreams?: number;
  };
}

export interface OutlierDetection {
  readonly consecutiveErrors?: number;
  readonly consecutive5xxErrors?: number;
  readonly consecutiveGatewayErrors?: number;
  readonly consecutiveLocalOriginFailures?: number;
  readonly splitExternalLocalOriginErrors?: boolean;
  readonly interval?: string;
  readonly baseEjectionTime?: string;
  readonly maxEjectionPercent?: number;
  readonly minHealthPercent?: number;
}

export type ClientTlsMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';

export interface ClientTlsSettings {
  readonly mode?: ClientTlsMode;
  readonly clientCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly credentialName?: string;
  readonly subjectAltNames?: readonly string[];
  readonly sni?: string;
  readonly insecureSkipVerify?: boolean;
  /**
   * Not an Istio field (refused in a DestinationRule): set only on the rules made of BackendTLSPolicies
   * (gateway-api/backend-tls.ts). The CA bundle itself, a ConfigMap's `ca.crt`.
   */
  readonly caCertificatesPem?: string;
  /** Not an Istio field either: why the policy's CA cannot be had; every connection then fails (503 UF). */
  readonly unusable?: string;
}

export interface PortTrafficPolicy {
  readonly port?: PortSelector;
  readonly loadBalancer?: LoadBalancerSettings;
  readonly connectionPool?: ConnectionPoolSettings;
  readonly outlierDetection?: OutlierDetection;
  readonly tls?: ClientTlsSettings;
}

export interface TrafficPolicy {
  readonly loadBalancer?: LoadBalancerSettings;
  readonly connectionPool?: ConnectionPoolSettings;
  readonly outlierDetection?: OutlierDetection;
  readonly tls?: ClientTlsSettings;
  readonly portLevelSettings?: readonly PortTrafficPolicy[];
  readonly tunnel?: unknown;
  readonly proxyProtocol?: unknown;
  readonly retryBudget?: unknown;
}

export interface Subset {
  readonly name: string;
  readonly labels?: Labels;
  readonly trafficPolicy?: TrafficPolicy;
}

export interface DestinationRuleSpec {
  readonly host: string;
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets?: readonly Subset[];
  readonly exportTo?: readonly string[];
  readonly workloadSelector?: { readonly matchLabels?: Labels };
}

// ---------------------------------------------------------------- ServiceEntry / WorkloadEntry

export interface ServiceEntryPort {
  readonly number: number;
  readonly protocol?: string;
  readonly name: string;
  readonly targetPort?: number;
}

export interface WorkloadEntrySpec {
  readonly address?: string;
  readonly ports?: Readonly<Record<string, number>>;
  readonly labels?: Labels;
  readonly network?: string;
  readonly locality?: string;
  readonly weight?: number;
  readonly serviceAccount?: string;
}

export type Resolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'DYNAMIC_DNS';
export type Location = 'MESH_EXTERNAL' | 'MESH_INTERNAL';

export interface ServiceEntrySpec {
  readonly hosts: readonly string[];
  readonly addresses?: readonly string[];
  readonly ports?: readonly ServiceEntryPort[];
  readonly location?: Location;
  readonly resolution?: Resolution;
  readonly endpoints?: readonly WorkloadEntrySpec[];
  readonly workloadSelector?: { readonly labels?: Labels };
  readonly exportTo?: readonly string[];
  readonly subjectAltNames?: readonly string[];
}
