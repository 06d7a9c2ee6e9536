// Validation of the Kubernetes Ingress kinds (networking.k8s.io/v1): what the API server's own
// validation refuses is an error here too (so `kubectl apply` and meshgate agree), and what Istio
// accepts but does not serve (defaultBackend, resource backends, a tls entry without a secretName)
// is a warning that says so, at the field.

import type { FieldPath } from '../model/resource.js';
import { asEnum, asInt, asObj, asString, eachObj, hostProblem, isDnsSubdomain, isIpAddress, isSet, knownFields, stringList, type Checker, type Obj } from './validate-common.js';

const PATH_TYPES = ['Exact', 'Prefix', 'ImplementationSpecific'] as const;
// A Service name (DNS-1035 label) and a port name (IANA_SVC_NAME), as the API server checks them.
const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const PORT_NAME = /^(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/;
const BAD_SEQUENCES = ['//', '/./', '/../', '%2f', '%2F'];
const BAD_SUFFIXES = ['/..', '/.'];

export function validateIngressClass(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], ['controller', 'parameters']);
  const controller = asString(c, spec.controller, ['spec', 'controller']);
  if (controller === undefined) c.error(['spec', 'controller'], 'is required (istio.io/ingress-controller for Istio and meshgate)');
  const params = asObj(c, spec.parameters, ['spec', 'parameters']);
  if (params) {
    knownFields(c, params, ['spec', 'parameters'], ['apiGroup', 'kind', 'name', 'namespace', 'scope']);
    for (const k of ['apiGroup', 'kind', 'name', 'namespace', 'scope']) asString(c, params[k], ['spec', 'parameters', k]);
    for (const k of ['kind', 'name']) if (params[k] === undefined) c.error(['spec', 'parameters', k], 'is required');
  }
  if (controller !== undefined && !/^[a-z0-9.-]+\/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$/.test(controller)) {
    c.error(['spec', 'controller'], `${JSON.stringify(controller)} must be a domain-prefixed path such as istio.io/ingress-controller`);
  }
  if (controller !== undefined && controller.length > 250) c.error(['spec', 'controller'], 'must be at most 250 characters');
}

export function validateIngress(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], ['ingressClassName', 'defaultBackend', 'rules', 'tls']);
  const className = asString(c, spec.ingressClassName, ['spec', 'ingressClassName']);
  if (className !== undefined && !isDnsSubdomain(className)) c.error(['spec', 'ingressClassName'], `${JSON.stringify(className)} is not a valid IngressClass name`);
  if (!isSet(spec.rules) && !isSet(spec.defaultBackend)) c.error(['spec'], 'either `defaultBackend` or `rules` must be specified');
  const fallback = asObj(c, spec.defaultBackend, ['spec', 'defaultBackend']);
  if (fallback) {
    checkBackend(c, fallback, ['spec', 'defaultBackend']);
    c.warn(['spec', 'defaultBackend'], 'is ignored, as Istio ignores it (it would catch every host of the gateway); route unmatched requests with a rule whose path is / (pathType Prefix) or a VirtualService');
  }
  eachObj(c, spec.rules, ['spec', 'rules'], (rule, at) => {
    knownFields(c, rule, at, ['host', 'http']);
    checkHost(c, rule.host, [...at, 'host']);
    const http = asObj(c, rule.http, [...at, 'http']);
    if (!http) {
      if (!isSet(rule.http)) c.warn([...at, 'http'], 'a rule without http paths is not served (Istio skips it)');
      return;
    }
    knownFields(c, http, [...at, 'http'], ['paths']);
    if (!Array.isArray(http.paths) || http.paths.length === 0) c.error([...at, 'http', 'paths'], 'needs at least one path');
    eachObj(c, http.paths, [...at, 'http', 'paths'], (p, pat) => checkPath(c, p, pat));
  });
  eachObj(c, spec.tls, ['spec', 'tls'], (tls, at) => {
    knownFields(c, tls, at, ['hosts', 'secretName']);
    for (const h of stringList(c, tls.hosts, [...at, 'hosts'])) checkHost(c, h.value, h.at);
    const secret = asString(c, tls.secretName, [...at, 'secretName']);
    if (!secret) c.warn([...at, 'secretName'], 'without a secretName this entry gives no HTTPS server (Istio skips it)');
    else if (!isDnsSubdomain(secret)) c.error([...at, 'secretName'], `${JSON.stringify(secret)} is not a valid Secret name`);
  });
}

function checkHost(c: Checker, v: unknown, at: FieldPath): void {
  const host = asString(c, v, at);
  if (host === undefined || host === '') return;
  if (isIpAddress(host)) c.error(at, `${JSON.stringify(host)} must be a DNS name, not an IP address`);
  else {
    const problem = hostProblem(host, true);
    if (problem) c.error(at, problem);
  }
}

function checkPath(c: Checker, p: Obj, at: FieldPath): void {
  knownFields(c, p, at, ['path', 'pathType', 'backend']);
  if (!isSet(p.pathType)) c.error([...at, 'pathType'], `is required (one of ${PATH_TYPES.join(', ')})`);
  const type = asEnum(c, p.pathType, [...at, 'pathType'], PATH_TYPES);
  const path = asString(c, p.path, [...at, 'path']) ?? '';
  if (type === 'Exact' || type === 'Prefix') {
    if (!path.startsWith('/')) c.error([...at, 'path'], `${JSON.stringify(path)} must be an absolute path (start with /)`);
    const bad = BAD_SEQUENCES.find((s) => path.includes(s)) ?? BAD_SUFFIXES.find((s) => path.endsWith(s));
    if (bad) c.error([...at, 'path'], `${JSON.stringify(path)} must not contain ${JSON.stringify(bad)}`);
  } else if (type === 'ImplementationSpecific' && path !== '' && !path.startsWith('/')) {
    c.error([...at, 'path'], `${JSON.stringify(path)} must be an absolute path (start with /)`);
  }
  const backend = asObj(c, p.backend, [...at, 'backend']);
  if (!backend) c.error([...at, 'backend'], 'is required');
  else checkBackend(c, backend, [...at, 'backend']);
}

function checkBackend(c: Checker, b: Obj, at: FieldPath): void {
  knownFields(c, b, at, ['service', 'resource']);
  if (isSet(b.service) === isSet(b.resource)) {
    c.error(at, 'needs exactly one of service and resource');
    return;
  }
  if (isSet(b.resource)) {
    const r = asObj(c, b.resource, [...at, 'resource']);
    if (r) {
      knownFields(c, r, [...at, 'resource'], ['apiGroup', 'kind', 'name']);
      asString(c, r.apiGroup, [...at, 'resource', 'apiGroup']);
      for (const k of ['kind', 'name']) if (asString(c, r[k], [...at, 'resource', k]) === undefined) c.error([...at, 'resource', k], 'is required');
    }
    c.warn([...at, 'resource'], 'is ignored (Istio routes only to Service backends): this path is left out');
    return;
  }
  const svc = asObj(c, b.service, [...at, 'service']);
  if (!svc) return;
  knownFields(c, svc, [...at, 'service'], ['name', 'port']);
  const name = asString(c, svc.name, [...at, 'service', 'name']);
  if (name === undefined) c.error([...at, 'service', 'name'], 'is required');
  else if (!SERVICE_NAME.test(name)) c.error([...at, 'service', 'name'], `${JSON.stringify(name)} is not a Service name (a-z, 0-9 and '-', starting with a letter)`);
  const port = asObj(c, svc.port, [...at, 'service', 'port']);
  if (!port) {
    if (!isSet(svc.port)) c.error([...at, 'service', 'port'], 'is required (number or name)');
    return;
  }
  knownFields(c, port, [...at, 'service', 'port'], ['number', 'name']);
  if (isSet(port.number) === isSet(port.name)) {
    c.error([...at, 'service', 'port'], 'needs exactly one of number and name');
    return;
  }
  if (isSet(port.number)) asInt(c, port.number, [...at, 'service', 'port', 'number'], 1, 65535);
  const portName = asString(c, port.name, [...at, 'service', 'port', 'name']);
  if (portName !== undefined && !PORT_NAME.test(portName)) c.error([...at, 'service', 'port', 'name'], `${JSON.stringify(portName)} is not a port name (up to 15 of a-z, 0-9 and '-', with a letter)`);
}
