// Istio's `Sidecar` kind (networking.istio.io), every field of its schema: which workloads it selects
// (`workloadSelector.labels`); in `egress[].hosts`, which services and routes those sidecars import,
// as `namespace/dnsName` (`./*`, `*/*`, `~/*`, `prod/*.example.com`); `outboundTrafficPolicy.mode`
// for hosts the mesh does not know. The control plane narrows what it sends a sidecar by the egress
// hosts and the sidecar applies the mode (policy/outbound-traffic-policy.ts). Ingress listeners act
// on the inbound side (policy/sidecar-ingress.ts): per `port`, its protocol, its `defaultEndpoint`,
// its `tls` (certificate files; Istio refuses credentialName, subjectAltNames, httpsRedirect and the
// mesh modes there) and its `connectionPool`, and `inboundConnectionPool` for the other ports.
// `bind` and `captureMode` are checked and not acted on: under capture every inbound port already
// reaches the inbound side, and without it the sidecar listens on its one inbound port (docs/sidecar-injection.md).
// Egress listeners' ports, bind and capture modes are checked and not acted on either.

import { checkConnectionPool } from './validate-destination-rule.js';
import { PROTOCOLS, validateServerTls } from './validate-gateway.js';
import { asEnum, asObj, asString, checkPort, checkWorkloadSelector, eachObj, hostProblem, isIpAddress, isSet, knownFields, stringList, type Checker, type Obj } from './validate-common.js';
import type { FieldPath } from '../model/resource.js';

const SIDECAR_FIELDS = ['workloadSelector', 'egress', 'ingress', 'outboundTrafficPolicy', 'inboundConnectionPool'];
const CAPTURE_MODES = ['DEFAULT', 'IPTABLES', 'NONE'] as const;

export function validateSidecar(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], SIDECAR_FIELDS);
  if (spec['workloadSelector'] !== undefined) checkWorkloadSelector(c, spec['workloadSelector'], ['spec', 'workloadSelector'], 'labels');
  const egress: Array<{ listener: Obj; at: FieldPath }> = [];
  eachObj(c, spec['egress'], ['spec', 'egress'], (e, at) => {
    egress.push({ listener: e, at });
    knownFields(c, e, at, ['port', 'bind', 'captureMode', 'hosts']);
    checkListenerAddress(c, e, at);
    if (isSet(e['port'])) checkSidecarPort(c, e['port'], [...at, 'port']);
    const hosts = stringList(c, e['hosts'], [...at, 'hosts']);
    if (hosts.length === 0) c.error([...at, 'hosts'], 'an egress listener needs at least one host (namespace/dnsName)');
    for (const { value, at: hostAt } of hosts) {
      const problem = egressHostProblem(value);
      if (problem) c.error(hostAt, problem);
    }
  });
  // As Istio's webhook: one catch-all egress listener (without a port), and it comes last.
  const catchAll = egress.filter((e) => !isSet(e.listener['port']));
  if (catchAll.length > 1) c.error([...catchAll[1]!.at, 'port'], 'only one egress listener may leave out the port (the catch-all listener)');
  else if (catchAll.length === 1 && catchAll[0] !== egress.at(-1)) c.error(catchAll[0]!.at, 'the egress listener without a port (the catch-all) must be the last one');
  const ingressPorts = new Set<unknown>();
  eachObj(c, spec['ingress'], ['spec', 'ingress'], (i, at) => {
    knownFields(c, i, at, ['port', 'bind', 'captureMode', 'defaultEndpoint', 'tls', 'connectionPool']);
    checkListenerAddress(c, i, at);
    if (isSet(i['port'])) checkSidecarPort(c, i['port'], [...at, 'port']);
    else c.error([...at, 'port'], 'an ingress listener needs a port, as {number, protocol, name}');
    const number = isSet(i['port']) && typeof i['port'] === 'object' ? (i['port'] as Obj)['number'] : undefined;
    if (number !== undefined && ingressPorts.has(number)) c.error([...at, 'port', 'number'], `ingress port ${String(number)} is already taken by an earlier ingress listener; ports must be unique`);
    ingressPorts.add(number);
    // Istio binds a listener of the sidecar's own for these; meshgate's inbound side takes every port already.
    if (typeof i['bind'] === 'string' && i['bind'] !== '') c.warn([...at, 'bind'], 'ignored: the sidecar opens no listener of its own for an ingress port; traffic reaches it through capture (or --inbound-port)');
    if (i['captureMode'] === 'NONE') c.warn([...at, 'captureMode'], 'NONE is ignored: the sidecar opens no listener of its own for an ingress port; traffic reaches it through capture (or --inbound-port)');
    const endpoint = asString(c, i['defaultEndpoint'], [...at, 'defaultEndpoint']);
    if (endpoint !== undefined && endpoint !== '' && !/^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]):\d{1,5}$/.test(endpoint) && !endpoint.startsWith('unix://')) {
      c.error([...at, 'defaultEndpoint'], `${JSON.stringify(endpoint)} must be 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix:///path`);
    }
    const tls = isSet(i['tls']) ? asObj(c, i['tls'], [...at, 'tls']) : undefined;
    if (tls) {
      validateServerTls(c, tls, [...at, 'tls'], false);
      checkIngressTls(c, tls, [...at, 'tls'], number !== undefined ? (i['port'] as Obj)['protocol'] : undefined);
    }
    if (isSet(i['connectionPool'])) checkConnectionPool(c, i['connectionPool'], [...at, 'connectionPool']);
  });
  if (isSet(spec['inboundConnectionPool'])) checkConnectionPool(c, spec['inboundConnectionPool'], ['spec', 'inboundConnectionPool']);
  checkOutboundTrafficPolicy(c, spec['outboundTrafficPolicy'], ['spec', 'outboundTrafficPolicy']);
}

/**
 * What Istio's validator refuses in an ingress listener's `tls` beyond a Gateway server's rules:
 * the sidecar reads certificate files only, verifies no client SANs, redirects nothing, and leaves
 * the mesh's own modes to PeerAuthentication; the port must be declared HTTPS or TLS.
 */
function checkIngressTls(c: Checker, tls: Obj, at: FieldPath, protocol: unknown): void {
  for (const f of ['credentialName', 'credentialNames', 'tlsCertificates', 'subjectAltNames']) {
    if (isSet(tls[f]) && !(Array.isArray(tls[f]) && (tls[f] as unknown[]).length === 0)) c.error([...at, f], `${f} is not supported in a Sidecar ingress listener's tls; use serverCertificate, privateKey and caCertificates files`);
  }
  if (tls['httpsRedirect'] === true) c.error([...at, 'httpsRedirect'], 'httpsRedirect is not supported in a Sidecar ingress listener');
  if (tls['mode'] === 'ISTIO_MUTUAL' || tls['mode'] === 'AUTO_PASSTHROUGH') c.error(at, `mode ${String(tls['mode'])} cannot be set in a Sidecar ingress listener's tls (PeerAuthentication decides mesh mTLS)`);
  const p = typeof protocol === 'string' ? protocol.toUpperCase() : '';
  if (p !== 'HTTPS' && p !== 'TLS') c.error(at, `tls needs the port's protocol to be HTTPS or TLS, not ${JSON.stringify(protocol ?? '')}`);
}

/** `{mode, egressProxy}`: Istio takes an egress proxy only with ALLOW_ANY. */
function checkOutboundTrafficPolicy(c: Checker, v: unknown, at: FieldPath): void {
  if (!isSet(v)) return;
  const policy = asObj(c, v, at);
  if (!policy) return;
  knownFields(c, policy, at, ['mode', 'egressProxy']);
  const mode = asEnum(c, policy['mode'], [...at, 'mode'], ['REGISTRY_ONLY', 'ALLOW_ANY'] as const);
  if (!isSet(policy['egressProxy'])) return;
  const proxy = asObj(c, policy['egressProxy'], [...at, 'egressProxy']);
  if (!proxy) return;
  if (mode !== 'ALLOW_ANY') c.error([...at, 'egressProxy'], 'egressProxy is only allowed with mode ALLOW_ANY');
  knownFields(c, proxy, [...at, 'egressProxy'], ['host', 'subset', 'port']);
  const host = asString(c, proxy['host'], [...at, 'egressProxy', 'host']);
  if (!host) c.error([...at, 'egressProxy', 'host'], 'egressProxy.host is required');
  asString(c, proxy['subset'], [...at, 'egressProxy', 'subset']);
  const port = isSet(proxy['port']) ? asObj(c, proxy['port'], [...at, 'egressProxy', 'port']) : undefined;
  if (port) {
    knownFields(c, port, [...at, 'egressProxy', 'port'], ['number']);
    checkPort(c, port['number'], [...at, 'egressProxy', 'port', 'number']);
  }
}

/** `bind` (an IP address or unix:// path) and `captureMode` of an ingress or egress listener. */
function checkListenerAddress(c: Checker, listener: Obj, at: FieldPath): void {
  const bind = asString(c, listener['bind'], [...at, 'bind']);
  if (bind !== undefined && bind !== '' && !bind.startsWith('unix://') && !isIpAddress(bind)) c.error([...at, 'bind'], `${JSON.stringify(bind)} is not an IP address or unix:// path`);
  asEnum(c, listener['captureMode'], [...at, 'captureMode'], CAPTURE_MODES);
}

/** A SidecarPort: `{number, protocol, name, targetPort}`. */
function checkSidecarPort(c: Checker, v: unknown, at: FieldPath): void {
  const port = asObj(c, v, at);
  if (!port) return;
  knownFields(c, port, at, ['number', 'protocol', 'name', 'targetPort']);
  if (isSet(port['number'])) checkPort(c, port['number'], [...at, 'number']);
  else c.error([...at, 'number'], 'port.number is required');
  if (isSet(port['targetPort'])) checkPort(c, port['targetPort'], [...at, 'targetPort']);
  asString(c, port['name'], [...at, 'name']);
  const protocol = asString(c, port['protocol'], [...at, 'protocol']);
  if (protocol !== undefined && !(PROTOCOLS as readonly string[]).includes(protocol.toUpperCase())) {
    c.error([...at, 'protocol'], `unsupported protocol ${JSON.stringify(protocol)}; use one of ${PROTOCOLS.join(', ')}`);
  }
}

/** `namespace/dnsName`: the namespace `*`, `.`, `~` or a name; the dnsName `*`, `*.suffix` or a FQDN. */
export function egressHostProblem(entry: string): string | undefined {
  const slash = entry.indexOf('/');
  if (slash <= 0 || slash === entry.length - 1) return `egress host ${JSON.stringify(entry)} must be namespace/dnsName (e.g. ./*, istio-system/*, prod/*.example.com)`;
  const ns = entry.slice(0, slash);
  const dns = entry.slice(slash + 1);
  if (ns !== '*' && ns !== '.' && ns !== '~' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns)) return `egress host ${JSON.stringify(entry)}: namespace ${JSON.stringify(ns)} is not *, ., ~ or a namespace name`;
  if (dns === '*') return undefined;
  const problem = hostProblem(dns);
  return problem ? `egress host ${JSON.stringify(entry)}: ${problem}` : undefined;
}
