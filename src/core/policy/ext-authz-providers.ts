// The external authorizers an AuthorizationPolicy with `action: CUSTOM` names (docs/tasks/external-
// authorization.md): the mesh config's `extensionProviders` entries of kind `envoyExtAuthzHttp` and
// `envoyExtAuthzGrpc`, read once per snapshot, each with the cluster its `service` and `port` resolve
// to in the registry. A provider that cannot be used (no service or port, a service the registry does
// not know, a bad statusOnError or pathPrefix, a lone "*" in a header list) is kept with the reason,
// and a policy that names it denies what its rules match, as Istio's does: never fail open by mistake.

import type { Resource } from '../model/resource.js';
import { parseDuration } from '../config/duration.js';
import { meshConfigOf } from '../telemetry/telemetry-policy.js';
import type { Cluster } from './types.js';

/** Istio's timeout when the provider sets none: 10 minutes. */
export const DEFAULT_EXT_AUTHZ_TIMEOUT_MS = 600_000;

/** Which headers of a list (includeRequestHeadersInCheck, headersTo…): exact, `prefix*` or `*suffix`, any case. */
export type HeaderNames = (lowerCaseName: string) => boolean;

interface ProviderCommon {
  readonly name: string;
  /** `service` as written (`[<namespace>/]<hostname>`) and the port. */
  readonly service: string;
  readonly port: number;
  readonly cluster: Cluster;
  readonly timeoutMs: number;
  readonly failOpen: boolean;
  /** The status when the authorizer cannot be asked (connect error, timeout, 5xx): default 403. */
  readonly statusOnError: number;
  /** includeRequestBodyInCheck: the body goes with the check (Envoy's with_request_body); none when unset. */
  readonly body?: RequestBodyInCheck;
}

export interface RequestBodyInCheck {
  /** maxRequestBytes: how much of the body is held for the check. */
  readonly maxBytes: number;
  /** allowPartialMessage: a longer body is checked by its first maxBytes; without it, a longer body is 413. */
  readonly allowPartial: boolean;
  /** packAsBytes: a gRPC check carries the body as raw_body (bytes) rather than body (string). */
  readonly packAsBytes: boolean;
}

export interface ExtAuthzHttpProvider extends ProviderCommon {
  readonly kind: 'http';
  readonly pathPrefix: string;
  /** Client headers sent besides Host, method, path, Content-Length and Authorization (none when unset). */
  readonly requestHeaders?: HeaderNames;
  /** Fixed headers added to every check, over the client's of the same name. */
  readonly additionalHeaders: ReadonlyArray<readonly [string, string]>;
  /** The authorizer's headers set on the upstream request when it allows (none when unset). */
  readonly upstreamOnAllow?: HeaderNames;
  /** The authorizer's headers sent to the client when it denies (all but Host when unset). */
  readonly downstreamOnDeny?: HeaderNames;
  /** The authorizer's headers added to the client's response when it allows (none when unset). */
  readonly downstreamOnAllow?: HeaderNames;
}

export interface ExtAuthzGrpcProvider extends ProviderCommon {
  readonly kind: 'grpc';
}

export type ExtAuthzProvider = ExtAuthzHttpProvider | ExtAuthzGrpcProvider;

/** A provider a policy may name but that cannot be used: the reason, for the log and the access log. */
export interface BrokenProvider {
  readonly kind: 'broken';
  readonly name: string;
  readonly reason: string;
}

export type ExtAuthzProviders = ReadonlyMap<string, ExtAuthzProvider | BrokenProvider>;

export const NO_EXT_AUTHZ_PROVIDERS: ExtAuthzProviders = new Map();

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);

/** Resolves a provider's service host and port to a cluster of the snapshot (built if no route made it). */
export type ClusterOf = (host: string, port: number) => Cluster | undefined;

/** A provider as the mesh config writes it, before its cluster is known: `host` is what `service` names. */
export type ProviderSpec = (Omit<ExtAuthzHttpProvider, 'cluster'> | Omit<ExtAuthzGrpcProvider, 'cluster'>) & { readonly host: string };

/** The ext_authz providers of the mesh config, by name, with their clusters; an empty map without any. */
export function compileExtAuthzProviders(resources: readonly Resource[], clusterOf: ClusterOf): ExtAuthzProviders {
  const out = new Map<string, ExtAuthzProvider | BrokenProvider>();
  for (const [name, spec] of extAuthzProviderSpecs(resources)) {
    if (spec.kind === 'broken') {
      out.set(name, spec);
      continue;
    }
    const cluster = clusterOf(spec.host, spec.port);
    out.set(name, cluster ? ({ ...spec, cluster } as ExtAuthzProvider) : { kind: 'broken', name, reason: `no service ${spec.host} with port ${spec.port} in the registry` });
  }
  return out;
}

/** The ext_authz providers of the mesh config as written, by name (the analyzers read these). */
export function extAuthzProviderSpecs(resources: readonly Resource[]): ReadonlyMap<string, ProviderSpec | BrokenProvider> {
  const mesh = meshConfigOf(resources);
  const entries = Array.isArray(mesh?.['extensionProviders']) ? (mesh['extensionProviders'] as unknown[]) : [];
  const out = new Map<string, ProviderSpec | BrokenProvider>();
  for (const entry of entries) {
    if (!isObj(entry) || typeof entry['name'] !== 'string') continue;
    const name = entry['name'];
    const http = entry['envoyExtAuthzHttp'];
    const grpc = entry['envoyExtAuthzGrpc'];
    if (!isObj(http) && !isObj(grpc)) continue;
    // Istio: names are unique; a second one of a name breaks it.
    if (out.has(name)) {
      out.set(name, { kind: 'broken', name, reason: `extension provider name must be unique, found duplicate: ${name}` });
      continue;
    }
    out.set(name, readOne(name, isObj(http) ? 'http' : 'grpc', (isObj(http) ? http : grpc) as Obj));
  }
  return out;
}

function readOne(name: string, kind: 'http' | 'grpc', spec: Obj): ProviderSpec | BrokenProvider {
  const broken = (reason: string): BrokenProvider => ({ kind: 'broken', name, reason });
  const service = typeof spec['service'] === 'string' ? spec['service'] : '';
  if (service === '') return broken('service is required');
  const port = portOf(spec['port']);
  if (port === undefined) return broken(`port must be in the range [1, 65535], found: ${String(spec['port'] ?? 0)}`);
  const statusOnError = statusOf(spec['statusOnError']);
  if (statusOnError === undefined) return broken(`invalid statusOnError ${JSON.stringify(spec['statusOnError'])}`);
  // `[<namespace>/]<hostname>`: the namespace only disambiguates, and hostnames are unique here.
  const host = service.includes('/') ? service.slice(service.indexOf('/') + 1) : service;
  const timeout = typeof spec['timeout'] === 'string' ? parseDuration(spec['timeout']) : undefined;
  const bodySpec = spec['includeRequestBodyInCheck'];
  let body: RequestBodyInCheck | undefined;
  if (isObj(bodySpec)) {
    const max = bodySpec['maxRequestBytes'];
    // Envoy refuses a buffer of 0 bytes (max_request_bytes > 0), and with it the whole listener.
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 4_294_967_295) return broken(`includeRequestBodyInCheck.maxRequestBytes must be 1 to 4294967295, found: ${String(max ?? 0)}`);
    body = { maxBytes: max, allowPartial: bodySpec['allowPartialMessage'] === true, packAsBytes: bodySpec['packAsBytes'] === true };
  }
  const common: Omit<ProviderCommon, 'cluster'> & { host: string } = {
    name,
    service,
    host,
    port,
    timeoutMs: timeout !== undefined && timeout > 0 ? timeout : DEFAULT_EXT_AUTHZ_TIMEOUT_MS,
    failOpen: spec['failOpen'] === true,
    statusOnError,
    ...(body ? { body } : {}),
  };
  if (kind === 'grpc') return { kind, ...common };
  const pathPrefix = typeof spec['pathPrefix'] === 'string' ? spec['pathPrefix'] : '';
  if (pathPrefix !== '' && !pathPrefix.startsWith('/')) return broken(`pathPrefix must begin with \`/\`, found: ${JSON.stringify(pathPrefix)}`);
  const lists: Record<string, string[]> = {};
  for (const field of ['includeRequestHeadersInCheck', 'includeHeadersInCheck', 'headersToUpstreamOnAllow', 'headersToDownstreamOnDeny', 'headersToDownstreamOnAllow']) {
    lists[field] = strings(spec[field]);
    if (lists[field]!.includes('*')) return broken(`a single wildcard ("*") is not supported in ${field}; use a prefix or suffix match`);
  }
  // The deprecated spelling counts only when the new one is not set.
  const request = lists['includeRequestHeadersInCheck']!.length > 0 ? lists['includeRequestHeadersInCheck']! : lists['includeHeadersInCheck']!;
  const additional = isObj(spec['includeAdditionalHeadersInCheck']) ? spec['includeAdditionalHeadersInCheck'] : {};
  const additionalHeaders = Object.keys(additional)
    .sort()
    .filter((k) => typeof additional[k] === 'string')
    .map((k) => [k.toLowerCase(), additional[k] as string] as const);
  const optional = (field: string, names: string[]): Partial<ProviderSpec> => (names.length > 0 ? { [field]: headerNames(names) } : {});
  return {
    kind,
    ...common,
    pathPrefix,
    additionalHeaders,
    ...optional('requestHeaders', request),
    ...optional('upstreamOnAllow', lists['headersToUpstreamOnAllow']!),
    ...optional('downstreamOnDeny', lists['headersToDownstreamOnDeny']!),
    ...optional('downstreamOnAllow', lists['headersToDownstreamOnAllow']!),
  };
}

/** Istio's header lists: `abc` exact, `abc*` prefix, `*abc` suffix, compared without case. */
export function headerNames(patterns: readonly string[]): HeaderNames {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  for (const raw of patterns) {
    const p = raw.toLowerCase();
    if (p.startsWith('*')) suffixes.push(p.slice(1));
    else if (p.endsWith('*')) prefixes.push(p.slice(0, -1));
    else exact.add(p);
  }
  return (name) => exact.has(name) || prefixes.some((p) => name.startsWith(p)) || suffixes.some((s) => name.endsWith(s));
}

/** A uint32 port, written as a number or (as Istio's task writes it) a string of digits. */
export function portOf(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined;
  return n !== undefined && Number.isInteger(n) && n >= 1 && n <= 65_535 ? n : undefined;
}

/** statusOnError: a string holding an HTTP status code Envoy knows (100–599); empty or unset is 403. */
export function statusOf(v: unknown): number | undefined {
  if (v === undefined || v === '') return 403;
  const text = typeof v === 'number' ? String(v) : typeof v === 'string' ? v : '';
  if (!/^\d{3}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 100 && n <= 599 ? n : undefined;
}
