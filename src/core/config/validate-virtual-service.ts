// Validation of networking.istio.io VirtualService as a whole: hosts (and whether `*` may be used),
// gateway binding, delegate rules, tls/tcp routes, and rules that can never be reached
// (docs/reference/routing.md). HTTP route details live in validate-routes.ts.

import type { FieldPath } from '../model/resource.js';
import {
  Checker, asString, checkExportTo, checkLabels, checkPort, eachObj, hostProblem, hostSubsetOf, hostsOverlap,
  isDnsLabel, isIpAddress, isIpOrCidr, isObj, isSet, knownFields, stringList, type Obj,
} from './validate-common.js';
import { resolveGatewayName } from '../routing/gateway-binding.js';
import { checkDestinations, checkGatewayNames, validateHttpRoute, type RouteContext } from './validate-routes.js';

const L4_MATCH_FIELDS = ['destinationSubnets', 'port', 'sourceLabels', 'gateways', 'sourceNamespace', 'sourceSubnet'];

export function validateVirtualService(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], ['hosts', 'gateways', 'http', 'tls', 'tcp', 'exportTo']);
  const hosts = stringList(c, spec.hosts, ['spec', 'hosts']);
  checkGatewayNames(c, spec.gateways, ['spec', 'gateways']);
  const gateways = Array.isArray(spec.gateways) ? spec.gateways.filter((g): g is string => typeof g === 'string') : [];
  const gatewayOnly = gateways.length > 0 && !gateways.includes('mesh');
  const inDelegate = !isSet(spec.hosts) || (Array.isArray(spec.hosts) && spec.hosts.length === 0);

  if (inDelegate) {
    // A VirtualService without hosts can only be a delegate, which inherits hosts and gateways from its root.
    if (gateways.length > 0) c.error(['spec', 'gateways'], 'a delegate VirtualService (no hosts) must not list gateways');
    if (nonEmpty(spec.tls)) c.error(['spec', 'tls'], 'a delegate VirtualService (no hosts) cannot have tls routes');
    if (nonEmpty(spec.tcp)) c.error(['spec', 'tcp'], 'a delegate VirtualService (no hosts) cannot have tcp routes');
  }
  checkHosts(c, hosts, !gatewayOnly);

  if (!nonEmpty(spec.http) && !nonEmpty(spec.tcp) && !nonEmpty(spec.tls)) c.error(['spec'], 'a VirtualService needs at least one http, tcp or tls route');
  const bound = new Set((gateways.length > 0 ? gateways : ['mesh']).map((g) => resolveGatewayName(g, c.resource.metadata.namespace)));
  const ctx: RouteContext = { inDelegate, gatewayOnly, gateways: bound };
  eachObj(c, spec.http, ['spec', 'http'], (route, at) => validateHttpRoute(c, route, at, ctx));
  eachObj(c, spec.tls, ['spec', 'tls'], (route, at) => validateTlsRoute(c, route, at, hosts.map((h) => h.value), ctx));
  eachObj(c, spec.tcp, ['spec', 'tcp'], (route, at) => validateTcpRoute(c, route, at, ctx));
  checkExportTo(c, spec.exportTo, ['spec', 'exportTo'], c.resource.metadata.namespace, false);
  // HTTP rules that can never match are the analyzer's (IST0130, src/core/analyze/unreachable-rules.ts).
  warnUnreachable(c, spec.tcp, 'tcp');
}

function nonEmpty(v: unknown): boolean {
  return Array.isArray(v) ? v.length > 0 : isSet(v);
}

function checkHosts(c: Checker, hosts: ReadonlyArray<{ value: string; at: FieldPath }>, appliesToMesh: boolean): void {
  const valid: Array<{ value: string; at: FieldPath }> = [];
  for (const h of hosts) {
    const why = hostProblem(h.value);
    if (why && !isIpAddress(h.value)) c.error(h.at, why);
    else if (h.value === '*' && appliesToMesh) c.error(h.at, 'host * is not allowed when the VirtualService applies to the mesh (gateways omitted or listing mesh); name the hosts');
    else valid.push(h);
  }
  // `*.foo.com` with `*.com`, or a name twice: Istio cannot tell which rules a request belongs to.
  for (let i = 0; i < valid.length; i++) {
    for (let j = i + 1; j < valid.length; j++) {
      const a = valid[i]!;
      const b = valid[j]!;
      if (hostsOverlap(a.value, b.value)) {
        c.error(b.at, a.value === b.value ? `duplicate host ${a.value}` : `host ${b.value} overlaps ${a.value} in the same VirtualService; list each host once`);
      }
    }
  }
}

function validateTlsRoute(c: Checker, route: Obj, at: FieldPath, hosts: readonly string[], ctx: RouteContext): void {
  knownFields(c, route, at, ['match', 'route']);
  if (!nonEmpty(route.match)) c.error([...at, 'match'], 'a tls route needs at least one match with sniHosts');
  eachObj(c, route.match, [...at, 'match'], (m, mAt) => {
    knownFields(c, m, mAt, ['sniHosts', ...L4_MATCH_FIELDS]);
    if (!nonEmpty(m.sniHosts)) c.error([...mAt, 'sniHosts'], 'sniHosts is required: the SNI names this rule matches');
    for (const { value, at: sniAt } of stringList(c, m.sniHosts, [...mAt, 'sniHosts'])) {
      const why = hostProblem(value);
      if (why) {
        if (isIpAddress(value)) c.warn(sniAt, `an IP address (${value}) is not a valid SNI name; most clients never send it`);
        else c.error(sniAt, why);
        continue;
      }
      // Istio only lets a tls rule claim SNI names that fall within the VirtualService's own hosts.
      if (!hosts.some((h) => hostSubsetOf(value, h))) c.error(sniAt, `SNI host ${value} is not covered by any of the VirtualService hosts (${hosts.join(', ') || 'none'})`);
    }
    checkL4Match(c, m, mAt, ctx);
  });
  if (!nonEmpty(route.route)) c.error([...at, 'route'], 'a tls route needs at least one destination in route');
  checkDestinations(c, route.route, [...at, 'route'], false);
}

function validateTcpRoute(c: Checker, route: Obj, at: FieldPath, ctx: RouteContext): void {
  knownFields(c, route, at, ['match', 'route']);
  eachObj(c, route.match, [...at, 'match'], (m, mAt) => {
    knownFields(c, m, mAt, L4_MATCH_FIELDS);
    checkL4Match(c, m, mAt, ctx);
  });
  if (!nonEmpty(route.route)) c.error([...at, 'route'], 'a tcp route needs at least one destination in route');
  checkDestinations(c, route.route, [...at, 'route'], false);
}

function checkL4Match(c: Checker, m: Obj, at: FieldPath, ctx: RouteContext): void {
  for (const { value, at: sAt } of stringList(c, m.destinationSubnets, [...at, 'destinationSubnets'])) {
    if (!isIpOrCidr(value)) c.error(sAt, `${JSON.stringify(value)} is not an IP address or CIDR block`);
  }
  if (asString(c, m.sourceSubnet, [...at, 'sourceSubnet']) !== undefined) c.warn([...at, 'sourceSubnet'], 'sourceSubnet is deprecated and ignored');
  if (isSet(m.port)) checkPort(c, m.port, [...at, 'port']);
  checkLabels(c, m.sourceLabels, [...at, 'sourceLabels']);
  checkGatewayNames(c, m.gateways, [...at, 'gateways'], ctx);
  const ns = m.sourceNamespace;
  if (typeof ns === 'string' && ns !== '' && !isDnsLabel(ns)) c.error([...at, 'sourceNamespace'], `${JSON.stringify(ns)} is not a namespace name`);
  else if (isSet(ns) && typeof ns !== 'string') c.error([...at, 'sourceNamespace'], 'must be a string');
}

/** A rule with no match takes every request, so any rule after it in the same list is never used. */
function warnUnreachable(c: Checker, list: unknown, kind: 'tcp'): void {
  if (!Array.isArray(list)) return;
  let catchAll: number | undefined;
  list.forEach((rule, i) => {
    if (!isObj(rule)) return;
    if (catchAll !== undefined) {
      c.warn(['spec', kind, i], `never used: ${kind}[${catchAll}] has no match and takes every request first`);
      return;
    }
    if (!nonEmpty(rule.match)) catchAll = i;
  });
}
