// What meshgate takes from an Istio EnvoyFilter (networking.istio.io/v1alpha3): which proxies it
// selects, and, of its configPatches, those that insert Envoy's local rate limit filter into the HTTP
// filter chain (applyTo HTTP_FILTER) or give a virtual host or route its own configuration for it
// (applyTo VIRTUAL_HOST / HTTP_ROUTE, operation MERGE of typed_per_filter_config). Every other patch
// is a warning at its exact field and is ignored: meshgate has no Envoy configuration to patch.
// One reader for validation (`meshgate validate`, analyze) and for the snapshot's compile step.

import type { FieldPath } from '../model/resource.js';
import { asEnum, asInt, asObj, asString, checkWorkloadSelector, describe, eachObj, isObj, isSet, knownFields, type Checker, type Obj } from '../config/validate-common.js';
import { LOCAL_RATE_LIMIT_FILTER, readLocalRateLimit, type LocalRateLimitConfig } from './envoy-local-rate-limit.js';
import { chainPosition, type ChainPosition } from './envoy-filter-position.js';

export type PatchContext = 'ANY' | 'SIDECAR_INBOUND' | 'SIDECAR_OUTBOUND' | 'GATEWAY';
const CONTEXTS: readonly PatchContext[] = ['ANY', 'SIDECAR_INBOUND', 'SIDECAR_OUTBOUND', 'GATEWAY'];
const APPLY_TO = ['INVALID', 'LISTENER', 'FILTER_CHAIN', 'NETWORK_FILTER', 'HTTP_FILTER', 'ROUTE_CONFIGURATION', 'VIRTUAL_HOST', 'HTTP_ROUTE', 'CLUSTER', 'EXTENSION_CONFIG', 'BOOTSTRAP', 'LISTENER_FILTER'] as const;
const OPERATIONS = ['INVALID', 'MERGE', 'ADD', 'REMOVE', 'INSERT_BEFORE', 'INSERT_AFTER', 'INSERT_FIRST', 'REPLACE'] as const;
const HCM = 'envoy.filters.network.http_connection_manager';
const ROUTER = 'envoy.filters.http.router';
const GLOBAL_RATE_LIMIT_FILTER = 'envoy.filters.http.ratelimit';

/** Where a patch applies: listener (or route configuration) port and names, as Istio matches them. */
export interface PatchScope {
  readonly index: number;
  readonly context: PatchContext;
  readonly portNumber?: number;
  /** routeConfiguration.name (`http.80`, `9080`, `inbound|9080||`). */
  readonly routeConfigName?: string;
}

/** An HTTP_FILTER patch that puts the local rate limit filter into the chain. */
export interface LimitFilterPatch extends PatchScope {
  readonly config: LocalRateLimitConfig;
  /** Where in Istio's filter chain it lands, and so which requests it counts. */
  readonly position: ChainPosition;
}

/** A VIRTUAL_HOST or HTTP_ROUTE MERGE of typed_per_filter_config for that filter. */
export interface LimitRoutePatch extends PatchScope {
  readonly level: 'VIRTUAL_HOST' | 'HTTP_ROUTE';
  /** vhost.name: `inbound|http|9080`, `bookinfo.example.com:80`; unset or empty: every one. */
  readonly vhostName?: string;
  /** vhost.route.name; unset: every route. */
  readonly routeName?: string;
  /** vhost.route.action: which routes (ANY: all). */
  readonly action: 'ANY' | 'ROUTE' | 'REDIRECT' | 'DIRECT_RESPONSE';
  readonly config: LocalRateLimitConfig;
}

export interface EnvoyFilterReading {
  /** workloadSelector.labels; undefined: every proxy in scope. */
  readonly labels?: Readonly<Record<string, string>>;
  /** targetRefs to Gateway API Gateways (`namespace/name`). */
  readonly gateways?: readonly string[];
  readonly filters: readonly LimitFilterPatch[];
  readonly routes: readonly LimitRoutePatch[];
}

export function readEnvoyFilter(c: Checker, spec: Obj): EnvoyFilterReading {
  knownFields(c, spec, ['spec'], ['workloadSelector', 'targetRefs', 'configPatches', 'priority']);
  if (isSet(spec.workloadSelector) && isSet(spec.targetRefs)) c.error(['spec'], 'workloadSelector and targetRefs cannot both be set');
  checkWorkloadSelector(c, spec.workloadSelector, ['spec', 'workloadSelector'], 'labels');
  const selector = isObj(spec.workloadSelector) && isObj(spec.workloadSelector.labels) ? (spec.workloadSelector.labels as Record<string, string>) : undefined;
  const gateways: string[] = [];
  eachObj(c, spec.targetRefs, ['spec', 'targetRefs'], (ref, at) => {
    if (ref.kind === 'Gateway' && ref.group === 'gateway.networking.k8s.io' && typeof ref.name === 'string') gateways.push(`${c.resource.metadata.namespace}/${ref.name}`);
    else c.warn(at, `only {group: gateway.networking.k8s.io, kind: Gateway, name} is supported here; this target selects nothing`);
  });
  asInt(c, spec.priority, ['spec', 'priority']);
  const filters: LimitFilterPatch[] = [];
  const routes: LimitRoutePatch[] = [];
  if (!Array.isArray(spec.configPatches) || spec.configPatches.length === 0) c.warn(['spec', 'configPatches'], 'no configPatches: this EnvoyFilter changes nothing');
  eachObj(c, spec.configPatches, ['spec', 'configPatches'], (patch, at, index) => readPatch(c, patch, at, index, filters, routes));
  return { ...(selector ? { labels: selector } : {}), ...(isSet(spec.targetRefs) ? { gateways } : {}), filters, routes };
}

function readPatch(c: Checker, p: Obj, at: FieldPath, index: number, filters: LimitFilterPatch[], routes: LimitRoutePatch[]): void {
  knownFields(c, p, at, ['applyTo', 'match', 'patch']);
  const applyTo = asEnum(c, p.applyTo, [...at, 'applyTo'], APPLY_TO);
  const match = asObj(c, p.match, [...at, 'match']) ?? {};
  const patch = asObj(c, p.patch, [...at, 'patch']) ?? {};
  const operation = asEnum(c, patch.operation, [...at, 'patch', 'operation'], OPERATIONS);
  const context = asEnum(c, match.context, [...at, 'match', 'context'], CONTEXTS) ?? 'ANY';
  if (!applyTo || !operation) return;
  const ignored = (field: FieldPath, what: string): void => c.warn([...at, ...field], `${what}; this patch is ignored`);
  if (isSet(match.proxy)) c.warn([...at, 'match', 'proxy'], 'proxy (version and metadata) matching is not supported: meshgate applies this patch to every proxy it selects');
  if (applyTo === 'HTTP_FILTER') {
    const value = asObj(c, patch.value, [...at, 'patch', 'value']) ?? {};
    const name = value.name;
    if (operation === 'REMOVE' || operation === 'MERGE' || operation === 'REPLACE') return ignored(['patch', 'operation'], `${operation} of an HTTP filter is not supported`);
    if (name === GLOBAL_RATE_LIMIT_FILTER) return ignored(['patch', 'value', 'name'], `${name} (global rate limits through a rate limit service) is not supported`);
    if (name !== LOCAL_RATE_LIMIT_FILTER) return ignored(['patch', 'value', 'name'], `${typeof name === 'string' ? name : describe(name)} is not supported`);
    const listener = asObj(c, match.listener, [...at, 'match', 'listener']) ?? {};
    const scope = listenerScope(c, listener, [...at, 'match', 'listener'], index, context, ignored);
    if (!scope) return;
    const sub = isObj(listener.filterChain) && isObj(listener.filterChain.filter) && isObj(listener.filterChain.filter.subFilter) ? listener.filterChain.filter.subFilter.name : undefined;
    // The router ends the chain: a filter put after it would never run, and Envoy refuses the chain.
    if (operation === 'ADD' || (operation === 'INSERT_AFTER' && (sub === ROUTER || sub === undefined))) {
      return ignored(['patch', 'operation'], `${operation} puts ${LOCAL_RATE_LIMIT_FILTER} after ${ROUTER}, where Envoy refuses it; use INSERT_BEFORE or INSERT_FIRST`);
    }
    const position = chainPosition(operation, typeof sub === 'string' ? sub : undefined);
    if (position.unknownFilter) {
      c.warn([...at, 'match', 'listener', 'filterChain', 'filter', 'subFilter', 'name'], `${sub} is not a filter of Istio's HTTP filter chain that meshgate knows (Istio inserts nothing when the chain has no such filter); meshgate counts requests as if the filter were just before ${ROUTER}`);
    }
    const config = readLocalRateLimit(c, value.typed_config, [...at, 'patch', 'value', 'typed_config']);
    if (config) filters.push({ ...scope, config, position });
    return;
  }
  if (applyTo === 'VIRTUAL_HOST' || applyTo === 'HTTP_ROUTE') {
    if (operation !== 'MERGE') return ignored(['patch', 'operation'], `${operation} of a ${applyTo === 'HTTP_ROUTE' ? 'route' : 'virtual host'} is not supported (only MERGE of typed_per_filter_config for ${LOCAL_RATE_LIMIT_FILTER})`);
    const value = asObj(c, patch.value, [...at, 'patch', 'value']) ?? {};
    let limit: Obj | undefined;
    for (const key of Object.keys(value)) {
      if (key !== 'typed_per_filter_config') {
        const actions = key === 'rate_limits' || (key === 'route' && isObj(value.route) && 'rate_limits' in value.route);
        // Next to a local rate limit, the actions make the descriptors its `descriptors` count by.
        const forLocal = isObj(value.typed_per_filter_config) && LOCAL_RATE_LIMIT_FILTER in value.typed_per_filter_config;
        const whose = forLocal ? `descriptors of ${LOCAL_RATE_LIMIT_FILTER}` : GLOBAL_RATE_LIMIT_FILTER;
        ignored(['patch', 'value', key], actions ? `${key === 'route' ? 'route.rate_limits' : key} (actions for ${whose}) is not supported` : `${key} is not supported`);
        return;
      }
    }
    const perFilter = asObj(c, value.typed_per_filter_config, [...at, 'patch', 'value', 'typed_per_filter_config']) ?? {};
    for (const [name, typed] of Object.entries(perFilter)) {
      if (name === LOCAL_RATE_LIMIT_FILTER) limit = isObj(typed) ? typed : undefined;
      else c.warn([...at, 'patch', 'value', 'typed_per_filter_config', name], `${name} is not supported; this entry is ignored`);
    }
    if (!(LOCAL_RATE_LIMIT_FILTER in perFilter)) return ignored(['patch', 'value'], `only typed_per_filter_config for ${LOCAL_RATE_LIMIT_FILTER} is supported`);
    const rc = asObj(c, match.routeConfiguration, [...at, 'match', 'routeConfiguration']) ?? {};
    const rcAt: FieldPath = [...at, 'match', 'routeConfiguration'];
    knownFields(c, rc, rcAt, ['portNumber', 'portName', 'gateway', 'vhost', 'name']);
    if (isSet(rc.portName)) return ignored([...rcAt.slice(at.length), 'portName'], 'matching a route configuration by portName is not supported');
    if (isSet(rc.gateway)) return ignored([...rcAt.slice(at.length), 'gateway'], 'matching a route configuration by gateway is not supported');
    const vhost = asObj(c, rc.vhost, [...rcAt, 'vhost']) ?? {};
    knownFields(c, vhost, [...rcAt, 'vhost'], ['name', 'route', 'domainName']);
    if (isSet(vhost.domainName)) return ignored([...rcAt.slice(at.length), 'vhost', 'domainName'], 'matching a virtual host by domainName is not supported');
    const route = asObj(c, vhost.route, [...rcAt, 'vhost', 'route']) ?? {};
    knownFields(c, route, [...rcAt, 'vhost', 'route'], ['name', 'action']);
    const action = asEnum(c, route.action, [...rcAt, 'vhost', 'route', 'action'], ['ANY', 'ROUTE', 'REDIRECT', 'DIRECT_RESPONSE'] as const) ?? 'ANY';
    const config = readLocalRateLimit(c, limit, [...at, 'patch', 'value', 'typed_per_filter_config', LOCAL_RATE_LIMIT_FILTER]);
    if (!config) return;
    const portNumber = asInt(c, rc.portNumber, [...rcAt, 'portNumber'], 1, 65535);
    const vhostName = asString(c, vhost.name, [...rcAt, 'vhost', 'name']);
    const routeName = applyTo === 'HTTP_ROUTE' ? asString(c, route.name, [...rcAt, 'vhost', 'route', 'name']) : undefined;
    const routeConfigName = asString(c, rc.name, [...rcAt, 'name']);
    routes.push({
      index,
      context,
      level: applyTo,
      action,
      config,
      ...(portNumber !== undefined ? { portNumber } : {}),
      ...(routeConfigName ? { routeConfigName } : {}),
      ...(vhostName ? { vhostName } : {}),
      ...(routeName ? { routeName } : {}),
    });
    return;
  }
  ignored(['applyTo'], `${applyTo} patches are not supported (meshgate reads only the local rate limit filter and its per-route configuration)`);
}

/** match.listener of an HTTP_FILTER patch: its port, and a filter chain whose filter is the HCM. */
function listenerScope(c: Checker, l: Obj, at: FieldPath, index: number, context: PatchContext, ignored: (field: FieldPath, what: string) => void): PatchScope | undefined {
  knownFields(c, l, at, ['portNumber', 'filterChain', 'name', 'portName', 'listenerFilter']);
  const rel = at.slice(-2);
  for (const field of ['name', 'portName', 'listenerFilter']) {
    if (isSet(l[field])) {
      ignored([...rel, field], `matching a listener by ${field} is not supported`);
      return undefined;
    }
  }
  const chain = asObj(c, l.filterChain, [...at, 'filterChain']) ?? {};
  for (const field of Object.keys(chain)) {
    if (field !== 'filter') {
      ignored([...rel, 'filterChain', field], `matching a filter chain by ${field} is not supported`);
      return undefined;
    }
  }
  const filter = asObj(c, chain.filter, [...at, 'filterChain', 'filter']) ?? {};
  if (isSet(filter.name) && filter.name !== HCM) {
    ignored([...rel, 'filterChain', 'filter', 'name'], `an HTTP filter lives in ${HCM}, not in ${describe(filter.name)}`);
    return undefined;
  }
  const portNumber = asInt(c, l.portNumber, [...at, 'portNumber'], 1, 65535);
  return { index, context, ...(portNumber !== undefined ? { portNumber } : {}) };
}
