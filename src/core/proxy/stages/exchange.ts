// What the stages of the request pipeline share (docs/request-pipeline.md): the Exchange — one request
// between its stages, with what each stage established so far — and the Stage contract. A stage reads
// the exchange and says one of three things: go on (undefined), the request is answered with this
// typed failure (a LocalReply, written by respond.ts through `reply`), or the request is answered
// already (DONE: a redirect, a preflight, a forward under way). A stage that has to wait (a JWKS
// fetch, a shared rate-limit counter, an injected delay) returns a promise of the same.
//
// The listener and proxy context types live here too, because every stage reads them; a role fills
// them in and chooses the stage list (http-handler.ts), and adds no request handling of its own.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Snapshot } from '../../snapshot/snapshot.js';
import type { SnapshotHolder } from '../../snapshot/holder.js';
import type { CompiledRoute, DestinationTarget, RequestFacts, RouteConfig, VirtualHost } from '../../routing/types.js';
import type { AccessLog, RequestRecord } from '../../telemetry/access-log.js';
import type { IdentityProvider } from '../../pki/types.js';
import type { WorkloadSecurity, WorkloadSecurityCache } from '../../policy/workload-security.js';
import type { RequestAuth } from '../../policy/request-authentication.js';
import type { PeerNames } from '../../tls/peer-identity.js';
import type { LocalReply } from '../respond.js';
import type { RateLimitContext } from './rate-limit.js';
import type { UpstreamPools } from '../upstream-pools.js';
import type { ConnectionDrain } from '../drain.js';
import type { UpgradeTunnel } from '../upgrade-exchange.js';
import type { HttpLimits } from '../http-limits.js';
import type { Dialled } from '../../policy/original-dst.js';
import type { UpstreamProtocol } from '../upstream-protocol.js';
import type { RelayUpstream } from '../relay.js';
import type { PeerMetadata } from '../../telemetry/peer-metadata.js';

export interface HttpHandlerContext {
  readonly holder: SnapshotHolder;
  readonly pools: UpstreamPools;
  /** Where `pools` reach only the workload's own app (a sidecar's inbound side): the pools towards the mesh, for external authorizers. */
  readonly meshPools?: UpstreamPools;
  readonly accessLog: AccessLog;
  readonly random: () => number;
  /** The proxy's connections, which every listener accepts and serves HTTP through (graceful drain). */
  readonly drain: ConnectionDrain;
  /** The proxy's workload identity, for mTLS to endpoints in the mesh. */
  readonly identity?: IdentityProvider;
  /** RateLimitPolicy counters; without them no rate limit applies. */
  readonly rateLimits?: RateLimitContext;
  /** Header limits, timeouts and upgrade types of the listeners (http-limits.ts); Envoy's defaults without. */
  readonly limits?: HttpLimits;
  /**
   * The proxy's own workload (a gateway by its labels, a sidecar's app): with it, the authenticate
   * and authorize stages check requests (RequestAuthentication, AuthorizationPolicy); without it they pass.
   */
  readonly security?: WorkloadSecurityCache;
  /** Proxies in front that append to x-forwarded-for (Envoy's xff_num_trusted_hops): `remoteIpBlocks` reads past them. */
  readonly trustedProxies?: number;
  /** This proxy's peer metadata, sent to mesh peers (telemetry/peer-metadata.ts). */
  readonly peerMetadata?: PeerMetadata;
  /** Where a request that hit a bug is reported (stages/act.ts internalError), besides its access-log line. */
  readonly log?: Logger;
}

/** Which route config serves a request on this listener (plaintext: the port's `http.<port>`). */
export type RouteConfigSelector = (snapshot: Snapshot, req: IncomingMessage) => RouteConfig | undefined;

/** What a listener does with a host no virtual host knows: a sidecar's outbound side applies outboundTrafficPolicy. */
export type UnknownHostPolicy = 'outbound-traffic-policy';

/** What the listener a request arrived on knows about it. */
export interface ListenerInfo {
  /** Gateway port number (route `match.port` compares against it). */
  readonly port: number;
  readonly scheme: 'http' | 'https';
  readonly select: RouteConfigSelector;
  /** The stages this listener's requests go through, in order (http-handler.ts `Pipelines`); the gateway's without. */
  readonly stages?: Pipeline;
  /** x-forwarded-client-cert for the connection's verified client certificate, if any. */
  clientCert?(req: IncomingMessage): string | undefined;
  /** The URI SAN (SPIFFE ID) of the connection's verified client certificate, if any. */
  peerPrincipal?(req: IncomingMessage): string | undefined;
  /** Every name of that certificate, where it may hold several (a gateway's clients): AuthorizationPolicy matches any. */
  peerNames?(req: IncomingMessage): PeerNames | undefined;
  /** True when the host would pick another TLS server on this port than the one the SNI chose: 421. */
  misdirected?(host: string, snapshot: Snapshot): boolean;
  /** httpsRedirect: the port the redirect names (none when undefined or 443). */
  httpsPort?(facts: RequestFacts, snapshot: Snapshot): number | undefined;
  /** ACME HTTP-01: the key authorization for a token, answered before routing. */
  acmeChallenge?(token: string): string | undefined | Promise<string | undefined>;
  /** AuthorizationPolicy `ports` / destination.port (default: the port the connection came in on). */
  destinationPort?(req: IncomingMessage): number;
  /** When the port differs per request (a sidecar's outbound side: the port the app asked for). */
  requestPort?(req: IncomingMessage): number;
  /**
   * A sidecar's outbound side under capture: where the app sent the request (the connection's
   * original destination). Passed-through requests go there, and clusters that keep to it (ORIGINAL_DST).
   */
  dialled?(req: IncomingMessage): Dialled | undefined;
  /**
   * A sidecar's inbound side: the act stage hands every request that passed authorization to the
   * workload's own app (no route table), with the headers the app is given.
   */
  localApp?: LocalApp;
  /** A host no virtual host knows: without a policy it is 404 NR; a sidecar passes it through or answers 502. */
  readonly unknownHost?: UnknownHostPolicy;
  /**
   * A sidecar's outbound side, where Istio leaves Envoy's use_remote_address off: x-forwarded-for is
   * neither appended to nor logged with the app's address, and goes on as the app sent it.
   */
  readonly keepsForwardedFor?: boolean;
}

/** The app beside a sidecar, as the inbound listener's act stage reaches it. */
export interface LocalApp {
  /** Where the app is (its pool key) and the connection limits towards it, for the configuration now serving. */
  upstream(): RelayUpstream;
  /** Envoy's cluster name for it (`inbound|<port>||`), for the access log. */
  readonly cluster: string;
  headers(req: IncomingMessage, facts: RequestFacts, requestId: string): Record<string, string | string[]>;
  /** What the app's port speaks, as the services that select the workload declare it (upstream-protocol.ts). */
  protocol(): UpstreamProtocol;
  /** The ports the app is reached on: its own, and the inbound port callers dial (EnvoyFilter limits name them). */
  ports?(): readonly number[];
}

/** One request between its stages: what the listener and the stages so far established. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly listener: ListenerInfo;
  readonly ctx: HttpHandlerContext;
  readonly tunnel?: UpgradeTunnel | undefined;
  readonly record: RequestRecord;
  /** The one way a stage's typed failure is written (respond.ts), its flag and code recorded. */
  readonly reply: (r: LocalReply) => void;
  readonly requestId: string;
  readonly remoteAddress: string;
  /** The port routes match against (the listener's, or the one the request asked for). */
  readonly port: number;
  /** Read once, when the request starts: a reload never changes a request half-way. */
  readonly snapshot: Snapshot | undefined;
  /** normalize: the request's facts (authority, normalized path, query, method, headers). */
  facts?: RequestFacts;
  /** select: the listener's route config and the virtual host and route in it. */
  config?: RouteConfig;
  virtualHost?: VirtualHost;
  route?: CompiledRoute;
  /** The route's (weighted) destination, picked once (select.ts routedDestinationOf). */
  destination?: DestinationTarget;
  /** authenticate: the workload's compiled policies and the verified token. */
  security?: WorkloadSecurity;
  auth?: RequestAuth;
  /** The authenticate stage has run (select runs it early for routes on JWT claims). */
  authenticated?: true;
  /** cors: headers every answer to an actual CORS request carries. */
  corsHeaders?: Record<string, string>;
  /** The trusted client address, once a stage has asked for it (client-address.ts clientAddressOf). */
  clientAddress?: string;
}

/** The request is answered already (by the stage itself); nothing more runs. */
export const DONE: unique symbol = Symbol('done');

/** undefined: go on to the next stage; a LocalReply: answer with it; DONE: answered already. */
export type StageResult = LocalReply | undefined | typeof DONE;

export type Stage = (ex: Exchange) => StageResult | Promise<StageResult>;

/** An ordered list of stages, as a role chooses it for a listener. */
export type Pipeline = readonly Stage[];

/** The facts, which every stage after normalize may rely on. */
export function factsOf(ex: Exchange): RequestFacts {
  if (!ex.facts) throw new Error('stage ordered before normalize');
  return ex.facts;
}
