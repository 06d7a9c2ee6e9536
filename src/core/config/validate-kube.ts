// Shape checks for the Kubernetes objects the registry is built from (Service, EndpointSlice,
// Endpoints, Pod). The API server validates these in a cluster; for files we only make sure the
// fields the registry reads have the types and ranges it expects, so it never trips over them.

import type { FieldPath } from '../model/resource.js';
import {
  Checker, asBool, asEnum, asObj, asString, checkLabels, checkPort, eachObj, hostProblem, isIpAddress, isSet,
  stringList, type Obj,
} from './validate-common.js';

const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
// A named targetPort (IANA_SVC_NAME): up to 15 of a-z, 0-9 and '-', with at least one letter.
const PORT_NAME = /^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function validateService(c: Checker, spec: Obj): void {
  const type = asEnum(c, spec.type, ['spec', 'type'], ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']);
  checkLabels(c, spec.selector, ['spec', 'selector']);
  const clusterIP = asString(c, spec.clusterIP, ['spec', 'clusterIP']);
  if (clusterIP && clusterIP !== 'None' && !isIpAddress(clusterIP)) c.error(['spec', 'clusterIP'], `${JSON.stringify(clusterIP)} is not an IP address or "None"`);
  const externalName = asString(c, spec.externalName, ['spec', 'externalName']);
  if (type === 'ExternalName') {
    if (!externalName) c.error(['spec', 'externalName'], 'an ExternalName Service needs externalName');
    else if (hostProblem(externalName, false)) c.error(['spec', 'externalName'], `${JSON.stringify(externalName)} is not a host name`);
  }
  const count = Array.isArray(spec.ports) ? spec.ports.length : 0;
  const names = new Set<string>();
  eachObj(c, spec.ports, ['spec', 'ports'], (port, at) => {
    if (!isSet(port.port)) c.error([...at, 'port'], 'port is required');
    else checkPort(c, port.port, [...at, 'port']);
    const name = asString(c, port.name, [...at, 'name']);
    if (count > 1 && !name) c.error([...at, 'name'], 'name is required when a Service has several ports');
    if (name) {
      if (names.has(name)) c.error([...at, 'name'], `duplicate port name ${JSON.stringify(name)}`);
      names.add(name);
    }
    checkTargetPort(c, port.targetPort, [...at, 'targetPort']);
    asEnum(c, port.protocol, [...at, 'protocol'], PROTOCOLS);
    asString(c, port.appProtocol, [...at, 'appProtocol']);
    if (isSet(port.nodePort)) checkPort(c, port.nodePort, [...at, 'nodePort']);
  });
}

function checkTargetPort(c: Checker, v: unknown, at: FieldPath): void {
  if (!isSet(v)) return;
  if (typeof v === 'number') checkPort(c, v, at);
  else if (typeof v !== 'string') c.error(at, 'targetPort must be a port number or a container port name');
  else if (/^\d+$/.test(v)) c.error(at, `targetPort "${v}" is a quoted number; write it without quotes or use a port name`);
  else if (v.length > 15 || !PORT_NAME.test(v)) c.error(at, `${JSON.stringify(v)} is not a port name (up to 15 of a-z, 0-9 and '-')`);
}

/** discovery.k8s.io/v1 EndpointSlice; its payload is at the top level of the object. */
export function validateEndpointSlice(c: Checker, body: Obj): void {
  const type = asEnum(c, body.addressType, ['addressType'], ['IPv4', 'IPv6', 'FQDN']);
  if (!isSet(body.addressType)) c.error(['addressType'], 'addressType is required: IPv4, IPv6 or FQDN');
  eachObj(c, body.endpoints, ['endpoints'], (ep, at) => {
    const addresses = stringList(c, ep.addresses, [...at, 'addresses']);
    if (!Array.isArray(ep.addresses) || ep.addresses.length === 0) c.error([...at, 'addresses'], 'an endpoint needs at least one address');
    for (const { value, at: aAt } of addresses) {
      if ((type === 'IPv4' || type === 'IPv6') && !isIpAddress(value)) c.error(aAt, `${JSON.stringify(value)} is not an ${type} address`);
      else if (type === 'FQDN' && hostProblem(value, false)) c.error(aAt, `${JSON.stringify(value)} is not a host name`);
    }
    const conditions = asObj(c, ep.conditions, [...at, 'conditions']);
    for (const f of ['ready', 'serving', 'terminating']) asBool(c, conditions?.[f], [...at, 'conditions', f]);
    for (const f of ['hostname', 'nodeName', 'zone']) asString(c, ep[f], [...at, f]);
    checkTargetRef(c, ep.targetRef, [...at, 'targetRef']);
  });
  eachObj(c, body.ports, ['ports'], (port, at) => {
    asString(c, port.name, [...at, 'name']);
    if (isSet(port.port)) checkPort(c, port.port, [...at, 'port']);
    asEnum(c, port.protocol, [...at, 'protocol'], PROTOCOLS);
    asString(c, port.appProtocol, [...at, 'appProtocol']);
  });
}

/** v1 Endpoints; `subsets` is at the top level of the object. */
export function validateEndpoints(c: Checker, body: Obj): void {
  eachObj(c, body.subsets, ['subsets'], (subset, at) => {
    for (const list of ['addresses', 'notReadyAddresses']) {
      eachObj(c, subset[list], [...at, list], (addr, aAt) => {
        const ip = asString(c, addr.ip, [...aAt, 'ip']);
        if (!ip) c.error([...aAt, 'ip'], 'ip is required');
        else if (!isIpAddress(ip)) c.error([...aAt, 'ip'], `${JSON.stringify(ip)} is not an IP address`);
        for (const f of ['hostname', 'nodeName']) asString(c, addr[f], [...aAt, f]);
        checkTargetRef(c, addr.targetRef, [...aAt, 'targetRef']);
      });
    }
    eachObj(c, subset.ports, [...at, 'ports'], (port, pAt) => {
      asString(c, port.name, [...pAt, 'name']);
      if (!isSet(port.port)) c.error([...pAt, 'port'], 'port is required');
      else checkPort(c, port.port, [...pAt, 'port']);
      asEnum(c, port.protocol, [...pAt, 'protocol'], PROTOCOLS);
    });
  });
}

export function validatePod(c: Checker, spec: Obj, raw: Obj): void {
  asString(c, spec.serviceAccountName, ['spec', 'serviceAccountName']);
  asString(c, spec.nodeName, ['spec', 'nodeName']);
  eachObj(c, spec.containers, ['spec', 'containers'], (container, at) => {
    asString(c, container.name, [...at, 'name']);
    eachObj(c, container.ports, [...at, 'ports'], (port, pAt) => {
      if (!isSet(port.containerPort)) c.error([...pAt, 'containerPort'], 'containerPort is required');
      else checkPort(c, port.containerPort, [...pAt, 'containerPort']);
      asString(c, port.name, [...pAt, 'name']);
      asEnum(c, port.protocol, [...pAt, 'protocol'], PROTOCOLS);
    });
  });
  const status = asObj(c, raw.status, ['status']);
  if (!status) return;
  const podIP = asString(c, status.podIP, ['status', 'podIP']);
  if (podIP && !isIpAddress(podIP)) c.error(['status', 'podIP'], `${JSON.stringify(podIP)} is not an IP address`);
  asString(c, status.phase, ['status', 'phase']);
  eachObj(c, status.podIPs, ['status', 'podIPs'], (entry, at) => {
    const ip = asString(c, entry.ip, [...at, 'ip']);
    if (ip && !isIpAddress(ip)) c.error([...at, 'ip'], `${JSON.stringify(ip)} is not an IP address`);
  });
}

function checkTargetRef(c: Checker, v: unknown, at: FieldPath): void {
  const ref = asObj(c, v, at);
  if (!ref) return;
  for (const f of ['kind', 'name', 'namespace', 'uid']) asString(c, ref[f], [...at, f]);
}
