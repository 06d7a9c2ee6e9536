// Validation of networking.istio.io Gateway: servers, ports, `[namespace/]host` entries and the
// server TLS block, following Istio's own rules (docs/reference/routing.md).

import type { FieldPath } from '../model/resource.js';
import {
  Checker, asBool, asEnum, asObj, asString, checkLabels, checkPort, checkSize, describe, eachObj, hostProblem,
  isDnsLabel, isIpAddress, isSet, knownFields, stringList, type Obj,
} from './validate-common.js';

export const PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'GRPC-WEB', 'HTTP2', 'MONGO', 'TCP', 'TLS', 'REDIS', 'MYSQL'] as const;
const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);
const TLS_PROTOCOLS = new Set(['HTTPS', 'TLS']);

const TLS_MODES = ['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL'] as const;
const TLS_VERSIONS = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'] as const;

const SERVER_FIELDS = ['port', 'bind', 'hosts', 'tls', 'name', 'defaultEndpoint'];
const PORT_FIELDS = ['number', 'protocol', 'name', 'targetPort'];
const TLS_FIELDS = [
  'httpsRedirect', 'mode', 'serverCertificate', 'privateKey', 'caCertificates', 'caCrl', 'credentialName', 'credentialNames',
  'tlsCertificates', 'caCertCredentialName', 'subjectAltNames', 'verifyCertificateSpki', 'verifyCertificateHash',
  'minProtocolVersion', 'maxProtocolVersion', 'cipherSuites', 'insecureSkipVerify',
];
/** Fields that name server certificates; any of them makes a passthrough block suspicious. */
const CERT_FIELDS = ['serverCertificate', 'privateKey', 'caCertificates', 'caCrl', 'credentialName', 'credentialNames', 'tlsCertificates'];

export function validateGateway(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], ['selector', 'servers']);
  checkLabels(c, spec.selector, ['spec', 'selector']);
  const servers = spec.servers;
  if (!isSet(servers) || (Array.isArray(servers) && servers.length === 0)) {
    c.error(['spec', 'servers'], 'a Gateway needs at least one server');
    return;
  }
  const portNames = new Map<string, number>();
  eachObj(c, servers, ['spec', 'servers'], (server, at, i) => {
    const name = validateServer(c, server, at);
    if (name === undefined) return;
    const first = portNames.get(name);
    if (first !== undefined) c.error([...at, 'port', 'name'], `duplicate port name ${JSON.stringify(name)} (also used by servers[${first}]); port names must be unique within a Gateway`);
    else portNames.set(name, i);
  });
}

/** Returns the server's port name, for the uniqueness check. */
function validateServer(c: Checker, server: Obj, at: FieldPath): string | undefined {
  knownFields(c, server, at, SERVER_FIELDS);
  validateServerHosts(c, server.hosts, [...at, 'hosts']);
  const bind = asString(c, server.bind, [...at, 'bind']);
  if (bind !== undefined && !bind.startsWith('unix://') && !isIpAddress(bind)) c.error([...at, 'bind'], `${JSON.stringify(bind)} is not an IP address or unix:// path`);
  asString(c, server.name, [...at, 'name']);
  asString(c, server.defaultEndpoint, [...at, 'defaultEndpoint']);

  const port = validatePort(c, server.port, [...at, 'port'], bind?.startsWith('unix://') === true);
  const tls = asObj(c, server.tls, [...at, 'tls']);
  const protocol = port.protocol;
  if (protocol !== undefined) {
    if (TLS_PROTOCOLS.has(protocol) && !tls) c.error([...at, 'tls'], `an ${protocol} server must have tls settings`);
    if (tls && HTTP_PROTOCOLS.has(protocol)) {
      const mode = tls.mode;
      const certs = CERT_FIELDS.filter((f) => isSet(tls[f]));
      if ((isSet(mode) && mode !== 'PASSTHROUGH' && mode !== 'AUTO_PASSTHROUGH') || certs.length > 0) {
        c.error([...at, 'tls'], `a plain ${protocol} server may carry tls only for httpsRedirect; use protocol HTTPS to terminate TLS`);
        return port.name;
      }
    } else if (tls && !TLS_PROTOCOLS.has(protocol)) {
      c.error([...at, 'tls'], `a ${protocol} server cannot have tls settings; use protocol TLS or HTTPS`);
      return port.name;
    }
    if (tls && tls.httpsRedirect === true && !HTTP_PROTOCOLS.has(protocol)) c.warn([...at, 'tls', 'httpsRedirect'], 'httpsRedirect applies only to plain HTTP servers; ignored');
  }
  if (tls) validateServerTls(c, tls, [...at, 'tls'], protocol !== undefined && HTTP_PROTOCOLS.has(protocol));
  return port.name;
}

function validatePort(c: Checker, v: unknown, at: FieldPath, unixBind: boolean): { protocol?: string; name?: string } {
  const port = asObj(c, v, at);
  if (!port) {
    if (!isSet(v)) c.error(at, 'port is required, as {number, protocol, name}');
    return {};
  }
  knownFields(c, port, at, PORT_FIELDS);
  if (isSet(port.number)) {
    if (!(unixBind && port.number === 0)) checkPort(c, port.number, [...at, 'number']);
  } else if (!unixBind) {
    c.error([...at, 'number'], 'port.number is required');
  }
  let protocol: string | undefined;
  const rawProtocol = asString(c, port.protocol, [...at, 'protocol']);
  if (rawProtocol === undefined) {
    if (!isSet(port.protocol)) c.error([...at, 'protocol'], `port.protocol is required; use one of ${PROTOCOLS.join(', ')}`);
  } else if ((PROTOCOLS as readonly string[]).includes(rawProtocol.toUpperCase())) {
    protocol = rawProtocol.toUpperCase();
  } else {
    c.error([...at, 'protocol'], `unsupported protocol ${JSON.stringify(rawProtocol)}; use one of ${PROTOCOLS.join(', ')}`);
  }
  const name = asString(c, port.name, [...at, 'name']);
  if (name === undefined || name === '') {
    if (name === '' || !isSet(port.name)) c.error([...at, 'name'], 'port.name is required');
  }
  if (isSet(port.targetPort)) c.error([...at, 'targetPort'], 'targetPort has no effect on a Gateway; remove it');
  return { ...(protocol !== undefined ? { protocol } : {}), ...(name ? { name } : {}) };
}

function validateServerHosts(c: Checker, v: unknown, at: FieldPath): void {
  if (!isSet(v) || (Array.isArray(v) && v.length === 0)) {
    c.error(at, 'a server needs at least one host');
    return;
  }
  for (const { value, at: hostAt } of stringList(c, v, at)) {
    const why = serverHostProblem(value);
    if (why) c.error(hostAt, why);
  }
}

/** `[namespace/]dnsName`, namespace `*`, `.` or a name; dnsName a full name, a wildcard, `*` or an IP. */
export function serverHostProblem(entry: string): string | undefined {
  const slash = entry.indexOf('/');
  const ns = slash < 0 ? undefined : entry.slice(0, slash);
  const host = slash < 0 ? entry : entry.slice(slash + 1);
  if (ns !== undefined) {
    if (ns === '' || host === '') return `${JSON.stringify(entry)} must be namespace/host with neither part empty`;
    if (ns !== '*' && ns !== '.' && !isDnsLabel(ns)) return `${JSON.stringify(ns)} is not a namespace; use "*", "." or a namespace name`;
  }
  if (host === '*') return undefined;
  if (isIpAddress(host)) return undefined;
  if (!host.includes('.')) return `short name ${JSON.stringify(host)} is not allowed in gateway hosts; use a full name such as ${host}.example.com`;
  if (host.includes('*') && !host.startsWith('*.')) return `partial wildcard ${JSON.stringify(host)} is not allowed; use *.domain or *`;
  return hostProblem(host);
}

export function validateServerTls(c: Checker, tls: Obj, at: FieldPath, onHttpServer: boolean): void {
  knownFields(c, tls, at, TLS_FIELDS);
  asBool(c, tls.httpsRedirect, [...at, 'httpsRedirect']);
  asBool(c, tls.insecureSkipVerify, [...at, 'insecureSkipVerify']);
  const mode = asEnum(c, tls.mode, [...at, 'mode'], TLS_MODES);
  for (const f of ['serverCertificate', 'privateKey', 'caCertificates', 'caCrl', 'credentialName', 'caCertCredentialName']) asString(c, tls[f], [...at, f]);
  for (const f of ['subjectAltNames', 'verifyCertificateSpki', 'verifyCertificateHash', 'cipherSuites']) stringList(c, tls[f], [...at, f]);
  const credentialNames = stringList(c, tls.credentialNames, [...at, 'credentialNames']);
  const tlsCertificates: Array<{ cert: Obj; at: FieldPath }> = [];
  eachObj(c, tls.tlsCertificates, [...at, 'tlsCertificates'], (cert, certAt) => {
    knownFields(c, cert, certAt, ['serverCertificate', 'privateKey', 'caCertificates']);
    for (const f of ['serverCertificate', 'privateKey', 'caCertificates']) asString(c, cert[f], [...certAt, f]);
    tlsCertificates.push({ cert, at: certAt });
  });
  // Istio's schema: one or two of each (an RSA and an ECDSA certificate), refused past that.
  for (const f of ['credentialNames', 'tlsCertificates']) checkSize(c, tls[f], [...at, f], { min: 1, max: 2 });
  validateProtocolVersions(c, tls, at);
  if (onHttpServer) return; // only httpsRedirect matters there, and the caller has checked the rest

  const has = (f: string): boolean => typeof tls[f] === 'string' && tls[f] !== '';
  const certs = CERT_FIELDS.filter((f) => (Array.isArray(tls[f]) ? (tls[f] as unknown[]).length > 0 : has(f)));

  if (mode === 'ISTIO_MUTUAL') {
    for (const f of certs) c.error([...at, f], 'ISTIO_MUTUAL uses the mesh certificate; no other certificate fields may be set');
    return;
  }
  if (mode === undefined || mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') {
    if (certs.length > 0) {
      if (isSet(tls.mode)) c.warn(at, `certificates will be ignored: ${mode} mode does not terminate TLS`);
      else c.warn(at, 'certificates will be ignored: tls.mode defaults to PASSTHROUGH; set mode: SIMPLE to terminate TLS');
    }
    return;
  }

  const sources = [
    has('serverCertificate') || has('privateKey') ? 'serverCertificate/privateKey' : undefined,
    has('credentialName') ? 'credentialName' : undefined,
    credentialNames.length > 0 ? 'credentialNames' : undefined,
    tlsCertificates.length > 0 ? 'tlsCertificates' : undefined,
  ].filter((s): s is string => s !== undefined);
  if (sources.length > 1) c.error(at, `only one certificate source may be set, found ${sources.join(' and ')}`);

  const mutual = mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  const remote = has('credentialName') || credentialNames.length > 0;
  if (!remote) {
    if (tlsCertificates.length > 0) {
      for (const { cert, at: certAt } of tlsCertificates) {
        if (typeof cert.serverCertificate !== 'string' || cert.serverCertificate === '') c.error([...certAt, 'serverCertificate'], `${mode} needs serverCertificate`);
        if (typeof cert.privateKey !== 'string' || cert.privateKey === '') c.error([...certAt, 'privateKey'], `${mode} needs privateKey`);
      }
    } else {
      if (!has('serverCertificate')) c.error([...at, 'serverCertificate'], `${mode} needs serverCertificate and privateKey, or credentialName`);
      if (!has('privateKey')) c.error([...at, 'privateKey'], `${mode} needs privateKey alongside serverCertificate, or credentialName`);
    }
    if (mutual && !has('caCertificates')) c.error([...at, 'caCertificates'], `${mode} with certificate files needs caCertificates to verify clients`);
  }
  if (has('caCrl')) {
    if (has('credentialName')) c.error([...at, 'caCrl'], 'caCrl cannot be used with credentialName; put the CRL in the credential');
    if (mode === 'SIMPLE') c.error([...at, 'caCrl'], 'caCrl is not supported with SIMPLE mode (no client certificates)');
  }
  if (mode === 'SIMPLE') {
    for (const f of ['subjectAltNames', 'verifyCertificateSpki', 'verifyCertificateHash']) {
      if (Array.isArray(tls[f]) && (tls[f] as unknown[]).length > 0) c.warn([...at, f], 'SIMPLE mode does not ask for client certificates; ignored');
    }
  }
}

function validateProtocolVersions(c: Checker, tls: Obj, at: FieldPath): void {
  const min = asEnum(c, tls.minProtocolVersion, [...at, 'minProtocolVersion'], TLS_VERSIONS);
  const max = asEnum(c, tls.maxProtocolVersion, [...at, 'maxProtocolVersion'], TLS_VERSIONS);
  if (min && max && min !== 'TLS_AUTO' && max !== 'TLS_AUTO' && TLS_VERSIONS.indexOf(min) > TLS_VERSIONS.indexOf(max)) {
    c.error([...at, 'minProtocolVersion'], `minProtocolVersion ${min} is above maxProtocolVersion ${max}`);
  }
  const ciphers = tls.cipherSuites;
  if (min === 'TLSV1_0' || min === 'TLSV1_1') {
    // OpenSSL 3 refuses TLS 1.0/1.1 at its default security level; the server's context is lowered to 0.
    const needs = Array.isArray(ciphers) && ciphers.length > 0 ? '' : `; it needs cipherSuites that ${min} supports (the default ciphers are TLS 1.2 only)`;
    c.warn([...at, 'minProtocolVersion'], `this server accepts legacy TLS (${min}): its OpenSSL security level is lowered to 0 (@SECLEVEL=0)${needs}`);
  }
  if (Array.isArray(ciphers)) {
    const seen = new Set<unknown>();
    ciphers.forEach((cs, i) => {
      if (seen.has(cs)) c.warn([...at, 'cipherSuites', i], `duplicate cipher suite ${describe(cs)}; ignored`);
      seen.add(cs);
    });
  }
}
