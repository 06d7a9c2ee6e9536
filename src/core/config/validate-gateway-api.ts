// Validation of the Kubernetes Gateway API kinds: the shape the CRDs' schemas and CEL rules demand
// (required fields, enums, ranges, the filter/field pairs), reported at file:line like every other
// kind. What is valid but not served (a listener protocol meshgate lacks, a backend kind it cannot
// reach) is not an error here: the translation reports it as a status condition, as the API wants.

import type { FieldPath } from '../model/resource.js';
import {
  asEnum, asInt, asList, asObj, asString, checkDuration, eachObj, isSet, knownFields, stringList, type Checker, type Obj,
} from './validate-common.js';

const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const ADDRESS_TYPE = /^(IPAddress|Hostname|NamedAddress|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+)$/;
const LISTENER_PROTOCOLS = ['HTTP', 'HTTPS', 'TLS', 'TCP', 'UDP'];
const FILTER_TYPES = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite', 'RequestMirror', 'ExtensionRef'] as const;
const FILTER_FIELDS: Readonly<Record<string, string>> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  RequestMirror: 'requestMirror',
  ExtensionRef: 'extensionRef',
};

export function validateGatewayClass(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], ['controllerName', 'description', 'parametersRef']);
  const name = asString(c, spec.controllerName, ['spec', 'controllerName']);
  if (name === undefined) c.error(['spec', 'controllerName'], 'is required (meshgate.io/gateway-controller for meshgate)');
  else if (!/^[a-z0-9.-]+\/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$/.test(name)) c.error(['spec', 'controllerName'], `${JSON.stringify(name)} must be a domain-prefixed path such as meshgate.io/gateway-controller`);
}

export function validateK8sGateway(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], ['gatewayClassName', 'listeners', 'addresses', 'infrastructure', 'backendTLS', 'tls']);
  gatewayTls(c, spec);
  if (asString(c, spec.gatewayClassName, ['spec', 'gatewayClassName']) === undefined) c.error(['spec', 'gatewayClassName'], 'is required');
  const listeners = asList(c, spec.listeners, ['spec', 'listeners']);
  if (!listeners || listeners.length === 0) c.error(['spec', 'listeners'], 'needs at least one listener');
  if (listeners && listeners.length > 64) c.error(['spec', 'listeners'], 'may hold at most 64 listeners');
  const names = new Set<string>();
  eachObj(c, spec.listeners, ['spec', 'listeners'], (l, at) => {
    knownFields(c, l, at, ['name', 'hostname', 'port', 'protocol', 'tls', 'allowedRoutes']);
    const name = asString(c, l.name, [...at, 'name']);
    if (name === undefined) c.error([...at, 'name'], 'is required');
    else if (names.has(name)) c.error([...at, 'name'], `${JSON.stringify(name)} is already the name of another listener; names must be unique`);
    else names.add(name);
    if (!isSet(l.port)) c.error([...at, 'port'], 'is required');
    else asInt(c, l.port, [...at, 'port'], 1, 65535);
    const protocol = asString(c, l.protocol, [...at, 'protocol']);
    if (protocol === undefined) c.error([...at, 'protocol'], `is required (one of ${LISTENER_PROTOCOLS.join(', ')})`);
    checkHostname(c, l.hostname, [...at, 'hostname'], true);
    const tls = asObj(c, l.tls, [...at, 'tls']);
    if (tls) {
      knownFields(c, tls, [...at, 'tls'], ['mode', 'certificateRefs', 'options', 'frontendValidation']);
      if (isSet(tls.frontendValidation)) c.error([...at, 'tls', 'frontendValidation'], CLIENT_VALIDATION_REFUSED);
      const mode = asEnum(c, tls.mode, [...at, 'tls', 'mode'], ['Terminate', 'Passthrough']) ?? 'Terminate';
      eachObj(c, tls.certificateRefs, [...at, 'tls', 'certificateRefs'], (ref, rat) => checkObjectRef(c, ref, rat));
      if (mode === 'Terminate' && protocol === 'HTTPS' && (asList(c, tls.certificateRefs, [...at, 'tls', 'certificateRefs'])?.length ?? 0) === 0) {
        c.error([...at, 'tls', 'certificateRefs'], 'a Terminate listener needs at least one certificateRef');
      }
      if (protocol === 'HTTP' || protocol === 'TCP' || protocol === 'UDP') c.error([...at, 'tls'], `must not be set on a ${protocol} listener`);
    } else if (protocol === 'HTTPS' || protocol === 'TLS') {
      c.error([...at, 'tls'], `is required on a ${protocol} listener`);
    }
    const allowed = asObj(c, l.allowedRoutes, [...at, 'allowedRoutes']);
    if (allowed) {
      const ns = asObj(c, allowed.namespaces, [...at, 'allowedRoutes', 'namespaces']);
      if (ns) {
        const from = asEnum(c, ns.from, [...at, 'allowedRoutes', 'namespaces', 'from'], ['All', 'Same', 'Selector']);
        if (from === 'Selector' && !isSet(ns.selector)) c.error([...at, 'allowedRoutes', 'namespaces', 'selector'], 'is required when from is Selector');
        const sel = asObj(c, ns.selector, [...at, 'allowedRoutes', 'namespaces', 'selector']);
        if (sel) {
          asObj(c, sel.matchLabels, [...at, 'allowedRoutes', 'namespaces', 'selector', 'matchLabels']);
          eachObj(c, sel.matchExpressions, [...at, 'allowedRoutes', 'namespaces', 'selector', 'matchExpressions'], (e, eat) => {
            asEnum(c, e.operator, [...eat, 'operator'], ['In', 'NotIn', 'Exists', 'DoesNotExist']);
            if (asString(c, e.key, [...eat, 'key']) === undefined) c.error([...eat, 'key'], 'is required');
          });
        }
      }
      eachObj(c, allowed.kinds, [...at, 'allowedRoutes', 'kinds'], (k, kat) => {
        if (asString(c, k.kind, [...kat, 'kind']) === undefined) c.error([...kat, 'kind'], 'is required');
        asString(c, k.group, [...kat, 'group']);
      });
    }
  });
  eachObj(c, spec.addresses, ['spec', 'addresses'], (a, at) => {
    // The CRD takes the three core types or any domain-prefixed one; what meshgate cannot serve is the
    // Gateway's Accepted False (UnsupportedAddress). A missing value asks for an assigned address.
    const type = asString(c, a.type, [...at, 'type']);
    if (type !== undefined && !ADDRESS_TYPE.test(type)) c.error([...at, 'type'], `${JSON.stringify(type)} is not allowed; use one of IPAddress, Hostname, NamedAddress or a domain-prefixed type`);
    asString(c, a.value, [...at, 'value']);
  });
}

// Client certificate validation is a security decision: a Gateway asking for it is refused, never
// served without it. A client certificate for backends is only ever shown to them: without it, a
// backend that demands one refuses the connection, so leaving it out fails closed.
const CLIENT_VALIDATION_REFUSED = 'client certificate validation is not implemented by meshgate; the Gateway is refused rather than served without it';

function gatewayTls(c: Checker, spec: Obj): void {
  const tls = asObj(c, spec.tls, ['spec', 'tls']);
  if (!tls) return;
  knownFields(c, tls, ['spec', 'tls'], ['backend', 'frontend']);
  if (isSet(tls.frontend)) c.error(['spec', 'tls', 'frontend'], CLIENT_VALIDATION_REFUSED);
  const backend = asObj(c, tls.backend, ['spec', 'tls', 'backend']);
  if (backend) {
    knownFields(c, backend, ['spec', 'tls', 'backend'], ['clientCertificateRef']);
    if (isSet(backend.clientCertificateRef)) c.warn(['spec', 'tls', 'backend', 'clientCertificateRef'], 'a client certificate for backends is not implemented; ignored (a backend that requires one refuses the connection)');
  }
}

export function validateHTTPRoute(c: Checker, spec: Obj): void {
  routeCommon(c, spec);
  eachObj(c, spec.rules, ['spec', 'rules'], (rule, at) => {
    knownFields(c, rule, at, ['name', 'matches', 'filters', 'backendRefs', 'timeouts', 'retry', 'sessionPersistence']);
    for (const f of ['retry', 'sessionPersistence']) if (isSet(rule[f])) c.warn([...at, f], 'experimental field meshgate does not implement; ignored');
    const matches = asList(c, rule.matches, [...at, 'matches']);
    if (matches && matches.length > 64) c.error([...at, 'matches'], 'may hold at most 64 matches');
    eachObj(c, rule.matches, [...at, 'matches'], (m, mat) => {
      knownFields(c, m, mat, ['path', 'headers', 'queryParams', 'method']);
      const path = asObj(c, m.path, [...mat, 'path']);
      if (path) {
        const type = asEnum(c, path.type, [...mat, 'path', 'type'], ['Exact', 'PathPrefix', 'RegularExpression']) ?? 'PathPrefix';
        const value = asString(c, path.value, [...mat, 'path', 'value']);
        if (value !== undefined && type !== 'RegularExpression' && !value.startsWith('/')) c.error([...mat, 'path', 'value'], 'must be an absolute path (start with /)');
        if (value !== undefined && type !== 'RegularExpression' && /\/\/|\/\.\.?(\/|$)|%2f|%2F|#/.test(value)) c.error([...mat, 'path', 'value'], 'must not hold //, /./, /../, %2f or #');
      }
      valueMatches(c, m.headers, [...mat, 'headers']);
      valueMatches(c, m.queryParams, [...mat, 'queryParams']);
      asEnum(c, m.method, [...mat, 'method'], ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
    });
    filters(c, rule.filters, [...at, 'filters'], rule);
    backendRefs(c, rule.backendRefs, [...at, 'backendRefs'], true);
    const timeouts = asObj(c, rule.timeouts, [...at, 'timeouts']);
    if (timeouts) {
      const request = checkDuration(c, timeouts.request, [...at, 'timeouts', 'request'], { zeroDisables: true });
      const backend = checkDuration(c, timeouts.backendRequest, [...at, 'timeouts', 'backendRequest'], { zeroDisables: true });
      if (request && backend && backend > request) c.error([...at, 'timeouts', 'backendRequest'], 'must not be longer than timeouts.request');
    }
  });
}

export function validateGRPCRoute(c: Checker, spec: Obj): void {
  routeCommon(c, spec);
  eachObj(c, spec.rules, ['spec', 'rules'], (rule, at) => {
    knownFields(c, rule, at, ['name', 'matches', 'filters', 'backendRefs', 'sessionPersistence']);
    if (isSet(rule.sessionPersistence)) c.warn([...at, 'sessionPersistence'], 'experimental field meshgate does not implement; ignored');
    eachObj(c, rule.matches, [...at, 'matches'], (m, mat) => {
      knownFields(c, m, mat, ['method', 'headers']);
      const method = asObj(c, m.method, [...mat, 'method']);
      if (method) {
        asEnum(c, method.type, [...mat, 'method', 'type'], ['Exact', 'RegularExpression']);
        const svc = asString(c, method.service, [...mat, 'method', 'service']);
        const name = asString(c, method.method, [...mat, 'method', 'method']);
        if (svc === undefined && name === undefined) c.error([...mat, 'method'], 'needs service or method (or both)');
      }
      valueMatches(c, m.headers, [...mat, 'headers']);
    });
    filters(c, rule.filters, [...at, 'filters'], rule);
    backendRefs(c, rule.backendRefs, [...at, 'backendRefs'], true);
  });
}

/** TLSRoute and TCPRoute. */
export function validateL4Route(c: Checker, spec: Obj): void {
  routeCommon(c, spec);
  const rules = asList(c, spec.rules, ['spec', 'rules']);
  if (!rules || rules.length === 0) c.error(['spec', 'rules'], 'needs at least one rule');
  eachObj(c, spec.rules, ['spec', 'rules'], (rule, at) => {
    knownFields(c, rule, at, ['name', 'backendRefs']);
    backendRefs(c, rule.backendRefs, [...at, 'backendRefs'], false);
  });
}

export function validateReferenceGrant(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], ['from', 'to']);
  for (const side of ['from', 'to'] as const) {
    const list = asList(c, spec[side], ['spec', side]);
    if (!list || list.length === 0) c.error(['spec', side], 'needs at least one entry');
    eachObj(c, spec[side], ['spec', side], (e, at) => {
      if (asString(c, e.group, [...at, 'group']) === undefined) c.error([...at, 'group'], 'is required ("" for the core group)');
      if (asString(c, e.kind, [...at, 'kind']) === undefined) c.error([...at, 'kind'], 'is required');
      if (side === 'from' && asString(c, e.namespace, [...at, 'namespace']) === undefined) c.error([...at, 'namespace'], 'is required');
      if (side === 'to') asString(c, e.name, [...at, 'name']);
    });
  }
}

function routeCommon(c: Checker, spec: Obj): void {
  eachObj(c, spec.parentRefs, ['spec', 'parentRefs'], (p, at) => {
    knownFields(c, p, at, ['group', 'kind', 'namespace', 'name', 'sectionName', 'port']);
    if (asString(c, p.name, [...at, 'name']) === undefined) c.error([...at, 'name'], 'is required');
    asString(c, p.group, [...at, 'group']);
    asString(c, p.kind, [...at, 'kind']);
    asString(c, p.namespace, [...at, 'namespace']);
    asString(c, p.sectionName, [...at, 'sectionName']);
    if (isSet(p.port)) asInt(c, p.port, [...at, 'port'], 1, 65535);
    // The parentRef group defaults to the Gateway API's own: a Service parent must say `group: ""`.
    if (p.kind === 'Service' && p.group !== '') {
      c.warn([...at, 'group'], `kind Service needs group: "" (the core group); as written it names ${typeof p.group === 'string' ? p.group : 'gateway.networking.k8s.io'}/Service, which nothing serves, so the route is not attached to Service ${String(p.name)}`);
    }
  });
  for (const h of stringList(c, spec.hostnames, ['spec', 'hostnames'])) checkHostname(c, h.value, h.at, true);
}

export function checkHostname(c: Checker, v: unknown, at: FieldPath, wildcard: boolean): void {
  const h = asString(c, v, at);
  if (h === undefined) return;
  if (!HOSTNAME.test(h) || h.length > 253) c.error(at, `${JSON.stringify(h)} is not a host name (lower-case DNS name${wildcard ? ', optionally *. in front' : ''}; no IP address, no port)`);
}

function checkObjectRef(c: Checker, ref: Obj, at: FieldPath): void {
  if (asString(c, ref.name, [...at, 'name']) === undefined) c.error([...at, 'name'], 'is required');
  asString(c, ref.namespace, [...at, 'namespace']);
  asString(c, ref.group, [...at, 'group']);
  asString(c, ref.kind, [...at, 'kind']);
}

function valueMatches(c: Checker, v: unknown, path: FieldPath): void {
  const seen = new Set<string>();
  eachObj(c, v, path, (m, at) => {
    asEnum(c, m.type, [...at, 'type'], ['Exact', 'RegularExpression']);
    const name = asString(c, m.name, [...at, 'name']);
    if (name === undefined) c.error([...at, 'name'], 'is required');
    else if (seen.has(name.toLowerCase())) c.warn([...at, 'name'], `${name} is matched twice; only the first match counts`);
    else seen.add(name.toLowerCase());
    if (asString(c, m.value, [...at, 'value']) === undefined) c.error([...at, 'value'], 'is required');
  });
}

function backendRefs(c: Checker, v: unknown, path: FieldPath, http: boolean): void {
  eachObj(c, v, path, (b, at) => {
    checkObjectRef(c, b, at);
    if (isSet(b.port)) asInt(c, b.port, [...at, 'port'], 1, 65535);
    else if ((b.kind === undefined || b.kind === 'Service') && (b.group === undefined || b.group === '')) c.error([...at, 'port'], 'is required for a Service backend');
    if (isSet(b.weight)) asInt(c, b.weight, [...at, 'weight'], 0, 1_000_000);
    if (http) filters(c, b.filters, [...at, 'filters'], b);
    else if (isSet(b.filters)) c.error([...at, 'filters'], 'is not a field of this kind');
  });
}

function filters(c: Checker, v: unknown, path: FieldPath, rule: Obj): void {
  let redirect = false;
  let rewrite = false;
  const once = new Set<string>();
  eachObj(c, v, path, (f, at) => {
    const type = asEnum(c, f.type, [...at, 'type'], FILTER_TYPES);
    if (!type) {
      if (!isSet(f.type)) c.error([...at, 'type'], 'is required');
      return;
    }
    const field = FILTER_FIELDS[type]!;
    for (const other of Object.values(FILTER_FIELDS)) if (other !== field && isSet(f[other])) c.error([...at, other], `goes with type ${Object.keys(FILTER_FIELDS).find((k) => FILTER_FIELDS[k] === other)}, not ${type}`);
    const body = asObj(c, f[field], [...at, field]);
    if (!body) {
      c.error([...at, field], `is required with type ${type}`);
      return;
    }
    if (type !== 'RequestMirror' && type !== 'ExtensionRef') {
      if (once.has(type)) c.error([...at, 'type'], `${type} may appear only once in a filter list`);
      once.add(type);
    }
    if (type === 'RequestHeaderModifier' || type === 'ResponseHeaderModifier') {
      for (const op of ['set', 'add'] as const) {
        eachObj(c, body[op], [...at, field, op], (h, hat) => {
          if (asString(c, h.name, [...hat, 'name']) === undefined) c.error([...hat, 'name'], 'is required');
          if (asString(c, h.value, [...hat, 'value']) === undefined) c.error([...hat, 'value'], 'is required');
        });
      }
      stringList(c, body.remove, [...at, field, 'remove']);
    } else if (type === 'RequestRedirect') {
      redirect = true;
      asEnum(c, body.scheme, [...at, field, 'scheme'], ['http', 'https']);
      checkHostname(c, body.hostname, [...at, field, 'hostname'], false);
      if (isSet(body.port)) asInt(c, body.port, [...at, field, 'port'], 1, 65535);
      if (isSet(body.statusCode)) asEnum(c, String(body.statusCode), [...at, field, 'statusCode'], ['301', '302', '303', '307', '308']);
      pathModifier(c, body.path, [...at, field, 'path']);
    } else if (type === 'URLRewrite') {
      rewrite = true;
      checkHostname(c, body.hostname, [...at, field, 'hostname'], false);
      pathModifier(c, body.path, [...at, field, 'path']);
    } else if (type === 'RequestMirror') {
      const ref = asObj(c, body.backendRef, [...at, field, 'backendRef']);
      if (!ref) c.error([...at, field, 'backendRef'], 'is required');
      else checkObjectRef(c, ref, [...at, field, 'backendRef']);
      if (isSet(body.percent)) asInt(c, body.percent, [...at, field, 'percent'], 0, 100);
    }
  });
  if (redirect && rewrite) c.error(path, 'RequestRedirect and URLRewrite cannot be used together');
  if (redirect && (asList(c, rule.backendRefs, ['spec'])?.length ?? 0) > 0) c.error(path, 'a rule with RequestRedirect must not have backendRefs');
}

function pathModifier(c: Checker, v: unknown, at: FieldPath): void {
  const p = asObj(c, v, at);
  if (!p) return;
  const type = asEnum(c, p.type, [...at, 'type'], ['ReplaceFullPath', 'ReplacePrefixMatch']);
  if (!type) {
    if (!isSet(p.type)) c.error([...at, 'type'], 'is required');
    return;
  }
  const field = type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
  const other = type === 'ReplaceFullPath' ? 'replacePrefixMatch' : 'replaceFullPath';
  if (asString(c, p[field], [...at, field]) === undefined) c.error([...at, field], `is required with type ${type}`);
  if (isSet(p[other])) c.error([...at, other], `goes with type ${type === 'ReplaceFullPath' ? 'ReplacePrefixMatch' : 'ReplaceFullPath'}`);
}
