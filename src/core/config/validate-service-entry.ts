// Validation of networking.istio.io ServiceEntry and WorkloadEntry: hosts, ports, resolution and
// location, and endpoints, which are WorkloadEntry specs inline (docs/reference/routing.md).

import type { FieldPath } from '../model/resource.js';
import {
  Checker, asEnum, asInt, asObj, asString, checkExportTo, checkLabels, checkLocalityText, checkPort, checkSize, checkWorkloadSelector,
  eachObj, hostProblem, isDnsLabel, isDnsSubdomain, isIpAddress, isIpOrCidr, isSet, isWildcardHost, knownFields, stringList, type Obj,
} from './validate-common.js';

const RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'] as const;
const LOCATIONS = ['MESH_EXTERNAL', 'MESH_INTERNAL'] as const;
const PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'HTTP_PROXY', 'MONGO', 'TCP', 'TLS', 'REDIS', 'MYSQL', 'UDP'];
const HTTP_OR_TLS = new Set(['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'HTTP_PROXY', 'TLS']);
const DYNAMIC_DNS_PROTOCOLS = new Set(['HTTP', 'HTTPS', 'TLS', 'GRPC', 'HTTP2']);
const MAX_HOSTS = 256;

export function validateServiceEntry(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], ['hosts', 'addresses', 'ports', 'location', 'resolution', 'endpoints', 'workloadSelector', 'exportTo', 'subjectAltNames']);
  const resolution = asEnum(c, spec.resolution, ['spec', 'resolution'], RESOLUTIONS) ?? (isSet(spec.resolution) ? undefined : 'NONE');
  const location = asEnum(c, spec.location, ['spec', 'location'], LOCATIONS) ?? 'MESH_EXTERNAL';

  const hosts = stringList(c, spec.hosts, ['spec', 'hosts']);
  if (!Array.isArray(spec.hosts) || spec.hosts.length === 0) {
    if (!isSet(spec.hosts) || Array.isArray(spec.hosts)) c.error(['spec', 'hosts'], 'a ServiceEntry needs at least one host');
  } else if (spec.hosts.length > MAX_HOSTS) c.error(['spec', 'hosts'], `at most ${MAX_HOSTS} hosts are allowed, found ${spec.hosts.length}`);
  for (const { value, at } of hosts) {
    if (value === '*') c.error(at, 'host * is not allowed in a ServiceEntry; name the hosts, e.g. *.example.com');
    else {
      const why = hostProblem(value);
      if (why) c.error(at, why);
      else if (value.includes('*') && !value.startsWith('*.')) c.warn(at, `partial wildcard ${JSON.stringify(value)} is not supported; use *.domain`);
    }
  }

  // Istio's schema: at most 256 addresses and ports, 4096 endpoints.
  checkSize(c, spec.addresses, ['spec', 'addresses'], { max: 256 });
  checkSize(c, spec.ports, ['spec', 'ports'], { max: 256 });
  checkSize(c, spec.endpoints, ['spec', 'endpoints'], { max: 4096 });
  const addresses = stringList(c, spec.addresses, ['spec', 'addresses']);
  for (const { value, at } of addresses) {
    if (!isIpOrCidr(value)) c.error(at, `${JSON.stringify(value)} is not an IP address or CIDR block`);
    else if (value.includes('/') && resolution !== 'NONE' && resolution !== 'STATIC') c.error(at, 'CIDR addresses are allowed only with resolution NONE or STATIC');
  }

  const ports = checkPorts(c, spec.ports);
  stringList(c, spec.subjectAltNames, ['spec', 'subjectAltNames']);
  checkExportTo(c, spec.exportTo, ['spec', 'exportTo'], c.resource.metadata.namespace, true);

  const endpoints = Array.isArray(spec.endpoints) ? spec.endpoints : [];
  if (isSet(spec.workloadSelector)) {
    if (isSet(spec.endpoints)) c.error(['spec', 'workloadSelector'], 'endpoints and workloadSelector cannot both be set; use one');
    checkWorkloadSelector(c, spec.workloadSelector, ['spec', 'workloadSelector'], 'labels');
    if (location !== 'MESH_INTERNAL') c.warn(['spec', 'workloadSelector'], 'workloadSelector is meant for MESH_INTERNAL services (set location: MESH_INTERNAL)');
    if (resolution === 'NONE') c.warn(['spec', 'workloadSelector'], 'workloadSelector has no effect with resolution NONE');
  }
  eachObj(c, spec.endpoints, ['spec', 'endpoints'], (ep, at) => {
    validateWorkloadEntrySpec(c, ep, at, { servicePorts: ports.names, allowHostnames: resolution !== 'STATIC' });
  });

  switch (resolution) {
    case 'NONE':
      if (endpoints.length > 0) c.error(['spec', 'endpoints'], 'endpoints are not allowed with resolution NONE (traffic goes to the original destination)');
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      if (endpoints.length === 0) {
        for (const { value, at } of hosts) if (isWildcardHost(value)) c.error(at, `wildcard host ${value} needs endpoints with resolution ${resolution}: there is no name to resolve`);
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) c.error(['spec', 'endpoints'], 'resolution DNS_ROUND_ROBIN allows at most one endpoint');
      break;
    case 'DYNAMIC_DNS':
      for (const { value, at } of hosts) if (!isWildcardHost(value)) c.error(at, 'resolution DYNAMIC_DNS needs wildcard hosts such as *.example.com');
      if (addresses.length > 0) c.error(['spec', 'addresses'], 'addresses are not allowed with resolution DYNAMIC_DNS');
      if (endpoints.length > 0) c.error(['spec', 'endpoints'], 'endpoints are not allowed with resolution DYNAMIC_DNS');
      for (const p of ports.list) {
        if (p.protocol !== undefined && !DYNAMIC_DNS_PROTOCOLS.has(p.protocol)) c.error([...p.at, 'protocol'], `resolution DYNAMIC_DNS supports only HTTP, HTTPS, TLS, GRPC and HTTP2 ports, not ${p.protocol}`);
      }
      break;
    default:
      break;
  }
  // Plain TCP cannot tell hosts apart (no Host header, no SNI), so several hosts need NONE.
  if (resolution !== 'NONE' && hosts.length > 1) {
    const opaque = ports.list.find((p) => p.protocol === undefined || !HTTP_OR_TLS.has(p.protocol));
    if (opaque) c.error([...opaque.at, 'protocol'], `${opaque.protocol ?? 'a port without protocol'} cannot tell several hosts apart; use HTTP or TLS ports, one host, or resolution NONE`);
  }
}

interface PortInfo {
  readonly at: FieldPath;
  readonly number?: number;
  readonly protocol?: string;
}

function checkPorts(c: Checker, v: unknown): { names: Set<string>; list: PortInfo[] } {
  const names = new Set<string>();
  const numbers = new Set<number>();
  const list: PortInfo[] = [];
  eachObj(c, v, ['spec', 'ports'], (port, at) => {
    knownFields(c, port, at, ['number', 'protocol', 'name', 'targetPort']);
    let number: number | undefined;
    if (!isSet(port.number)) c.error([...at, 'number'], 'port.number is required');
    else {
      number = checkPort(c, port.number, [...at, 'number']);
      if (number !== undefined && numbers.has(number)) c.error([...at, 'number'], `port ${number} is defined twice; port numbers must be unique`);
      if (number !== undefined) numbers.add(number);
    }
    const name = asString(c, port.name, [...at, 'name']);
    if (!name) {
      if (name === '' || !isSet(port.name)) c.error([...at, 'name'], 'port.name is required');
    } else {
      if (!isDnsLabel(name)) c.error([...at, 'name'], `port name ${JSON.stringify(name)} may use only a-z, 0-9 and '-'`);
      if (names.has(name)) c.error([...at, 'name'], `port name ${JSON.stringify(name)} is defined twice; port names must be unique`);
      names.add(name);
    }
    let protocol: string | undefined;
    const raw = asString(c, port.protocol, [...at, 'protocol']);
    if (raw !== undefined && raw !== '') {
      if (PROTOCOLS.includes(raw.toUpperCase())) protocol = raw.toUpperCase();
      else c.error([...at, 'protocol'], `unsupported protocol ${JSON.stringify(raw)}; use one of ${PROTOCOLS.join(', ')}`);
    }
    if (isSet(port.targetPort)) checkPort(c, port.targetPort, [...at, 'targetPort']);
    list.push({ at, ...(number !== undefined ? { number } : {}), ...(protocol !== undefined ? { protocol } : {}) });
  });
  return { names, list };
}

export interface WorkloadEntryOptions {
  /** Port names of the enclosing ServiceEntry; endpoint `ports` keys must be among them. */
  readonly servicePorts?: ReadonlySet<string>;
  /** Host names are allowed as addresses everywhere but in STATIC resolution. */
  readonly allowHostnames: boolean;
}

/** A WorkloadEntry spec, standalone or as a ServiceEntry endpoint. */
export function validateWorkloadEntrySpec(c: Checker, we: Obj, at: FieldPath, opts: WorkloadEntryOptions): void {
  knownFields(c, we, at, ['address', 'ports', 'labels', 'network', 'locality', 'weight', 'serviceAccount']);
  const network = asString(c, we.network, [...at, 'network']);
  const address = asString(c, we.address, [...at, 'address']);
  if (!address) {
    if (network) c.warn([...at, 'address'], `address is not set; the workload is reached only through the gateway of network ${network}`);
    else if (address === '' || !isSet(we.address)) c.error([...at, 'address'], 'address is required (an IP address, a host name, or unix:///path)');
  } else if (address.startsWith('unix://')) {
    const path = address.slice('unix://'.length);
    if (!(path.startsWith('@') && path.length > 1) && !(path.startsWith('/') && !path.endsWith('/'))) c.error([...at, 'address'], `${JSON.stringify(address)} must name an absolute socket path, e.g. unix:///var/run/app.sock`);
    if (isSet(we.ports)) c.error([...at, 'ports'], 'a unix socket endpoint cannot have ports');
  } else if (!isIpAddress(address)) {
    if (!opts.allowHostnames) c.error([...at, 'address'], `${JSON.stringify(address)} is not an IP address (resolution STATIC needs IPs)`);
    else if (hostProblem(address, false)) c.error([...at, 'address'], `${JSON.stringify(address)} is not an IP address or host name`);
  }
  const ports = asObj(c, we.ports, [...at, 'ports']);
  // Istio's schema: 128 ports, 256 labels, 2048 characters of network and locality.
  checkSize(c, ports, [...at, 'ports'], { max: 128 });
  for (const [name, port] of Object.entries(ports ?? {})) {
    const pAt = [...at, 'ports', name];
    if (!isDnsLabel(name)) c.error(pAt, `port name ${JSON.stringify(name)} may use only a-z, 0-9 and '-'`);
    else if (opts.servicePorts && !opts.servicePorts.has(name)) c.error(pAt, `port ${JSON.stringify(name)} is not one of the ServiceEntry's port names`);
    checkPort(c, port, pAt);
  }
  checkLabels(c, we.labels, [...at, 'labels'], 256);
  const locality = asString(c, we.locality, [...at, 'locality']);
  checkSize(c, locality, [...at, 'locality'], { max: 2048 });
  checkSize(c, network, [...at, 'network'], { max: 2048 });
  if (locality) checkLocalityText(c, locality, [...at, 'locality'], false);
  asInt(c, we.weight, [...at, 'weight'], 0);
  const sa = asString(c, we.serviceAccount, [...at, 'serviceAccount']);
  if (sa && !isDnsSubdomain(sa)) c.error([...at, 'serviceAccount'], `${JSON.stringify(sa)} is not a service account name`);
}

export function validateWorkloadEntry(c: Checker, spec: Obj): void {
  validateWorkloadEntrySpec(c, spec, ['spec'], { allowHostnames: true });
}
