// Validation of networking.istio.io DestinationRule: host, subsets and every traffic-policy block
// (load balancer, connection pool, outlier detection, client TLS, port-level settings), following
// docs/concepts/resilience.md

import type { FieldPath } from '../model/resource.js';
import {
  Checker, asBool, asEnum, asInt, asList, asNumber, asObj, asString, atMostOne, checkDuration, checkExportTo, checkLabels, checkSize,
  checkLocalityText, checkPort, checkWorkloadSelector, eachObj, hostProblem, isDnsLabel, isIpAddress, isSet, knownFields, stringList, type Obj,
} from './validate-common.js';

const POLICY_BLOCKS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'];
const SIMPLE_LB = ['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'] as const;
const HASH_KEYS = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'];
const CLIENT_TLS_MODES = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'] as const;
const MAGLEV_LIMIT = 5000011;

export function validateDestinationRule(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], ['host', 'trafficPolicy', 'subsets', 'exportTo', 'workloadSelector']);
  const host = asString(c, spec.host, ['spec', 'host']);
  if (!host) {
    if (host === '' || !isSet(spec.host)) c.error(['spec', 'host'], 'host is required: the service this rule applies to');
  } else {
    const why = hostProblem(host);
    if (why) c.error(['spec', 'host'], why);
  }
  checkTrafficPolicy(c, spec.trafficPolicy, ['spec', 'trafficPolicy'], true);
  const names = new Map<string, number>();
  eachObj(c, spec.subsets, ['spec', 'subsets'], (subset, at, i) => {
    knownFields(c, subset, at, ['name', 'labels', 'trafficPolicy']);
    const name = asString(c, subset.name, [...at, 'name']);
    if (!name) {
      if (name === '' || !isSet(subset.name)) c.error([...at, 'name'], 'subset name is required');
    } else {
      if (!isDnsLabel(name)) c.error([...at, 'name'], `subset name ${JSON.stringify(name)} may use only a-z, 0-9 and '-'`);
      const first = names.get(name);
      if (first !== undefined) c.error([...at, 'name'], `duplicate subset name ${JSON.stringify(name)} (also subsets[${first}])`);
      else names.set(name, i);
    }
    checkLabels(c, subset.labels, [...at, 'labels']);
    checkTrafficPolicy(c, subset.trafficPolicy, [...at, 'trafficPolicy'], true);
  });
  checkWorkloadSelector(c, spec.workloadSelector, ['spec', 'workloadSelector'], 'matchLabels');
  const ns = c.resource.metadata.namespace;
  checkExportTo(c, spec.exportTo, ['spec', 'exportTo'], ns, false);
  if (isSet(spec.workloadSelector)) {
    // A rule bound to workloads only makes sense where those workloads are.
    const exportTo = Array.isArray(spec.exportTo) ? spec.exportTo : [];
    exportTo.forEach((value, i) => {
      if (typeof value === 'string' && value !== '.' && value !== ns) c.error(['spec', 'exportTo', i], 'a DestinationRule with workloadSelector can only be exported to its own namespace (".")');
    });
  }
}

/** Kubernetes' topology labels, which zone-aware balancing orders by itself. */
const TOPOLOGY_LABELS = ['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone'];

function checkTrafficPolicy(c: Checker, v: unknown, at: FieldPath, topLevel: boolean): void {
  const p = asObj(c, v, at);
  if (!p) return;
  const blocks = topLevel ? [...POLICY_BLOCKS, 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget'] : POLICY_BLOCKS;
  knownFields(c, p, at, topLevel ? blocks : ['port', ...blocks]);
  if (!blocks.some((b) => isSet(p[b]))) c.error(at, `${topLevel ? 'trafficPolicy' : 'a port-level policy'} must set at least one of ${blocks.join(', ')}`);
  checkLoadBalancer(c, p.loadBalancer, [...at, 'loadBalancer'], isSet(p.outlierDetection));
  checkConnectionPool(c, p.connectionPool, [...at, 'connectionPool']);
  checkOutlierDetection(c, p.outlierDetection, [...at, 'outlierDetection']);
  checkClientTls(c, p.tls, [...at, 'tls']);
  if (!topLevel) return;
  if (isSet(p.tunnel) && isSet(p.proxyProtocol)) c.error([...at, 'proxyProtocol'], 'tunnel and proxyProtocol cannot both be set');
  checkTunnel(c, p.tunnel, [...at, 'tunnel']);
  const proxyProtocol = asObj(c, p.proxyProtocol, [...at, 'proxyProtocol']);
  if (proxyProtocol) {
    knownFields(c, proxyProtocol, [...at, 'proxyProtocol'], ['version']);
    asEnum(c, proxyProtocol.version, [...at, 'proxyProtocol', 'version'], ['V1', 'V2']);
  }
  const budget = asObj(c, p.retryBudget, [...at, 'retryBudget']);
  if (budget) {
    knownFields(c, budget, [...at, 'retryBudget'], ['percent', 'minRetryConcurrency', 'budgetInterval']);
    // A plain number (a DoubleValue), not Istio's Percent mapping.
    const pct = asNumber(c, budget.percent, [...at, 'retryBudget', 'percent']);
    if (pct !== undefined && (pct < 0 || pct > 100)) c.error([...at, 'retryBudget', 'percent'], `must be between 0 and 100, not ${pct}`);
    checkDuration(c, budget.budgetInterval, [...at, 'retryBudget', 'budgetInterval']);
    asInt(c, budget.minRetryConcurrency, [...at, 'retryBudget', 'minRetryConcurrency'], 0);
  }
  const ports = new Map<number, number>();
  checkSize(c, p.portLevelSettings, [...at, 'portLevelSettings'], { max: 4096 });
  eachObj(c, p.portLevelSettings, [...at, 'portLevelSettings'], (pl, plAt, i) => {
    const port = asObj(c, pl.port, [...plAt, 'port']);
    if (!port || !isSet(port.number)) c.error([...plAt, 'port', 'number'], 'port.number is required: the service port this policy applies to');
    else {
      knownFields(c, port, [...plAt, 'port'], ['number']);
      const n = checkPort(c, port.number, [...plAt, 'port', 'number']);
      if (n !== undefined && ports.has(n)) c.warn([...plAt, 'port', 'number'], `port ${n} is already configured by portLevelSettings[${ports.get(n)}]; only the first applies`);
      else if (n !== undefined) ports.set(n, i);
    }
    checkTrafficPolicy(c, pl, plAt, false);
  });
}

function checkLoadBalancer(c: Checker, v: unknown, at: FieldPath, hasOutlier: boolean): void {
  const lb = asObj(c, v, at);
  if (!lb) return;
  knownFields(c, lb, at, ['simple', 'consistentHash', 'localityLbSetting', 'zoneAwareLbSetting', 'warmupDurationSecs', 'warmup']);
  atMostOne(c, lb, at, ['simple', 'consistentHash']);
  asEnum(c, lb.simple, [...at, 'simple'], SIMPLE_LB);
  checkConsistentHash(c, lb.consistentHash, [...at, 'consistentHash']);
  checkLocality(c, lb.localityLbSetting, [...at, 'localityLbSetting'], hasOutlier);
  if (isSet(lb.localityLbSetting) && isSet(lb.zoneAwareLbSetting)) c.error([...at, 'zoneAwareLbSetting'], 'only one of localityLbSetting and zoneAwareLbSetting can be set');
  checkZoneAware(c, lb.zoneAwareLbSetting, [...at, 'zoneAwareLbSetting'], hasOutlier);
  checkDuration(c, lb.warmupDurationSecs, [...at, 'warmupDurationSecs']);
  const warmup = asObj(c, lb.warmup, [...at, 'warmup']);
  if (warmup) {
    const wAt = [...at, 'warmup'];
    knownFields(c, warmup, wAt, ['duration', 'minimumPercent', 'aggression']);
    if (!isSet(warmup.duration)) c.error([...wAt, 'duration'], 'warmup.duration is required');
    checkDuration(c, warmup.duration, [...wAt, 'duration']);
    // DoubleValue fields: plain numbers in YAML, as Istio's CRD declares them.
    const min = asNumber(c, warmup.minimumPercent, [...wAt, 'minimumPercent']);
    if (min !== undefined && (min < 0 || min > 100)) c.error([...wAt, 'minimumPercent'], `must be between 0 and 100, not ${min}`);
    const aggression = asNumber(c, warmup.aggression, [...wAt, 'aggression']);
    if (aggression !== undefined && aggression <= 0) c.error([...wAt, 'aggression'], `must be greater than 0, not ${aggression}`);
  }
}

/** Istio's newer zone-aware balancing: validated as Istio does; meshgate balances by locality instead. */
function checkZoneAware(c: Checker, v: unknown, at: FieldPath, hasOutlier: boolean): void {
  const z = asObj(c, v, at);
  if (!z) return;
  knownFields(c, z, at, ['enabled', 'failover', 'failoverPriority', 'minClusterSize']);
  asBool(c, z.enabled, [...at, 'enabled']);
  asInt(c, z.minClusterSize, [...at, 'minClusterSize'], 1);
  const priority = stringList(c, z.failoverPriority, [...at, 'failoverPriority']);
  for (const { value, at: pAt } of priority) {
    if (TOPOLOGY_LABELS.includes(value)) c.error(pAt, `must not use topology label ${value}: region and zone order is applied already`);
  }
  let failovers = 0;
  eachObj(c, z.failover, [...at, 'failover'], (f, fAt) => {
    failovers++;
    knownFields(c, f, fAt, ['from', 'to']);
    const from = asString(c, f.from, [...fAt, 'from']) ?? '';
    const to = asString(c, f.to, [...fAt, 'to']) ?? '';
    if (from === to) c.error(fAt, 'failover must name two different regions');
    if (from.includes('/') || to.includes('/')) c.error(fAt, 'failover names regions only; zones are handled by themselves');
    if (from.includes('*') || to.includes('*')) c.error(fAt, 'failover regions cannot contain "*"');
  });
  if ((failovers > 0 || priority.length > 0) && !hasOutlier) c.warn(at, 'failover needs outlierDetection: without it no endpoint is ever ejected');
  c.warn(at, 'zoneAwareLbSetting is not implemented by meshgate; endpoints are balanced as with localityLbSetting defaults');
}

function checkConsistentHash(c: Checker, v: unknown, at: FieldPath): void {
  const h = asObj(c, v, at);
  if (!h) return;
  knownFields(c, h, at, [...HASH_KEYS, 'ringHash', 'maglev', 'minimumRingSize']);
  const key = atMostOne(c, h, at, HASH_KEYS);
  if (key === undefined) c.error(at, `consistentHash needs one hash key: ${HASH_KEYS.join(', ')}`);
  for (const f of ['httpHeaderName', 'httpQueryParameterName']) {
    if (asString(c, h[f], [...at, f]) === '') c.error([...at, f], `${f} must not be empty`);
  }
  asBool(c, h.useSourceIp, [...at, 'useSourceIp']);
  const cookie = asObj(c, h.httpCookie, [...at, 'httpCookie']);
  if (cookie) {
    const cAt = [...at, 'httpCookie'];
    knownFields(c, cookie, cAt, ['name', 'path', 'ttl', 'attributes']);
    const name = asString(c, cookie.name, [...cAt, 'name']);
    if (!name) c.error([...cAt, 'name'], 'httpCookie.name is required');
    asString(c, cookie.path, [...cAt, 'path']);
    checkDuration(c, cookie.ttl, [...cAt, 'ttl'], { zeroDisables: true });
    eachObj(c, cookie.attributes, [...cAt, 'attributes'], (attr, aAt) => {
      knownFields(c, attr, aAt, ['name', 'value']);
      if (!asString(c, attr.name, [...aAt, 'name'])) c.error([...aAt, 'name'], 'attribute name is required');
      asString(c, attr.value, [...aAt, 'value']);
    });
  }
  const algorithm = atMostOne(c, h, at, ['ringHash', 'maglev']);
  if (isSet(h.minimumRingSize)) {
    asInt(c, h.minimumRingSize, [...at, 'minimumRingSize'], 0);
    if (algorithm) c.error([...at, 'minimumRingSize'], `minimumRingSize cannot be combined with ${algorithm}; use ringHash.minimumRingSize`);
    else c.warn([...at, 'minimumRingSize'], 'minimumRingSize is deprecated; use ringHash: {minimumRingSize: N}');
  }
  const ring = asObj(c, h.ringHash, [...at, 'ringHash']);
  if (ring) {
    knownFields(c, ring, [...at, 'ringHash'], ['minimumRingSize']);
    asInt(c, ring.minimumRingSize, [...at, 'ringHash', 'minimumRingSize'], 0);
  }
  const maglev = asObj(c, h.maglev, [...at, 'maglev']);
  if (maglev) {
    const mAt = [...at, 'maglev', 'tableSize'];
    knownFields(c, maglev, [...at, 'maglev'], ['tableSize']);
    const size = asInt(c, maglev.tableSize, mAt, 0);
    if (!isSet(maglev.tableSize) || size === 0) c.error(mAt, 'maglev.tableSize is required, a prime below 5000011 such as 65537');
    else if (size !== undefined && size >= MAGLEV_LIMIT) c.error(mAt, `tableSize must be below ${MAGLEV_LIMIT}`);
    else if (size !== undefined && size > 0 && !isPrime(size)) c.error(mAt, `tableSize ${size} must be a prime number (e.g. 65537)`);
  }
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let f = 3; f * f <= n; f += 2) if (n % f === 0) return false;
  return true;
}

function checkLocality(c: Checker, v: unknown, at: FieldPath, hasOutlier: boolean): void {
  const l = asObj(c, v, at);
  if (!l) return;
  knownFields(c, l, at, ['distribute', 'failover', 'failoverPriority', 'enabled']);
  asBool(c, l.enabled, [...at, 'enabled']);
  const used = ['distribute', 'failover', 'failoverPriority'].filter((f) => Array.isArray(l[f]) ? (l[f] as unknown[]).length > 0 : isSet(l[f]));
  for (const extra of used.slice(1)) c.error([...at, extra], `only one of distribute, failover or failoverPriority may be set (found ${used[0]} too)`);
  eachObj(c, l.distribute, [...at, 'distribute'], (d, dAt) => {
    knownFields(c, d, dAt, ['from', 'to']);
    const from = asString(c, d.from, [...dAt, 'from']);
    if (from !== undefined) checkLocalityText(c, from, [...dAt, 'from'], true);
    const to = asObj(c, d.to, [...dAt, 'to']);
    let total = 0;
    for (const [loc, weight] of Object.entries(to ?? {})) {
      checkLocalityText(c, loc, [...dAt, 'to', loc], true);
      const w = asInt(c, weight, [...dAt, 'to', loc], 1, 100);
      total += w ?? 0;
    }
    if (to && total !== 100) c.error([...dAt, 'to'], `locality weights add up to ${total}; they must add up to 100`);
  });
  eachObj(c, l.failover, [...at, 'failover'], (f, fAt) => {
    knownFields(c, f, fAt, ['from', 'to']);
    const from = asString(c, f.from, [...fAt, 'from']);
    const to = asString(c, f.to, [...fAt, 'to']);
    for (const [side, value] of [['from', from], ['to', to]] as const) {
      if (value !== undefined && (value.includes('/') || value.includes('*'))) c.error([...fAt, side], 'failover names a region only, without "/" or "*"');
    }
    if (from !== undefined && from === to) c.error([...fAt, 'to'], 'failover must name a different region than from');
  });
  stringList(c, l.failoverPriority, [...at, 'failoverPriority']);
  if ((used.includes('failover') || used.includes('failoverPriority')) && !hasOutlier) {
    c.warn(at, 'failover takes effect only when outlierDetection is set in the same policy');
  }
}

export function checkConnectionPool(c: Checker, v: unknown, at: FieldPath): void {
  const pool = asObj(c, v, at);
  if (!pool) return;
  knownFields(c, pool, at, ['tcp', 'http']);
  if (!isSet(pool.tcp) && !isSet(pool.http)) c.error(at, 'connectionPool must set tcp, http, or both');
  const tcp = asObj(c, pool.tcp, [...at, 'tcp']);
  if (tcp) {
    const tAt = [...at, 'tcp'];
    knownFields(c, tcp, tAt, ['maxConnections', 'connectTimeout', 'tcpKeepalive', 'maxConnectionDuration', 'idleTimeout']);
    asInt(c, tcp.maxConnections, [...tAt, 'maxConnections'], 0);
    checkDuration(c, tcp.connectTimeout, [...tAt, 'connectTimeout']);
    checkDuration(c, tcp.maxConnectionDuration, [...tAt, 'maxConnectionDuration']);
    checkDuration(c, tcp.idleTimeout, [...tAt, 'idleTimeout'], { zeroDisables: true });
    const ka = asObj(c, tcp.tcpKeepalive, [...tAt, 'tcpKeepalive']);
    if (ka) {
      knownFields(c, ka, [...tAt, 'tcpKeepalive'], ['probes', 'time', 'interval']);
      asInt(c, ka.probes, [...tAt, 'tcpKeepalive', 'probes'], 0);
      checkDuration(c, ka.time, [...tAt, 'tcpKeepalive', 'time']);
      checkDuration(c, ka.interval, [...tAt, 'tcpKeepalive', 'interval']);
    }
  }
  const http = asObj(c, pool.http, [...at, 'http']);
  if (http) {
    const hAt = [...at, 'http'];
    const counts = ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'maxConcurrentStreams'];
    knownFields(c, http, hAt, [...counts, 'idleTimeout', 'h2UpgradePolicy', 'useClientProtocol', 'http2KeepAlive']);
    for (const f of counts) asInt(c, http[f], [...hAt, f], 0);
    checkDuration(c, http.idleTimeout, [...hAt, 'idleTimeout']);
    const upgrade = asEnum(c, http.h2UpgradePolicy, [...hAt, 'h2UpgradePolicy'], ['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']);
    const useClient = asBool(c, http.useClientProtocol, [...hAt, 'useClientProtocol']);
    if (upgrade === 'UPGRADE' && useClient) c.error([...hAt, 'useClientProtocol'], 'useClientProtocol cannot be true when h2UpgradePolicy is UPGRADE');
    const ka = asObj(c, http.http2KeepAlive, [...hAt, 'http2KeepAlive']);
    if (ka) {
      knownFields(c, ka, [...hAt, 'http2KeepAlive'], ['time', 'timeout', 'interval']);
      for (const f of ['time', 'timeout', 'interval']) checkDuration(c, ka[f], [...hAt, 'http2KeepAlive', f]);
    }
  }
}

function checkOutlierDetection(c: Checker, v: unknown, at: FieldPath): void {
  const o = asObj(c, v, at);
  if (!o) return;
  const counts = ['consecutiveErrors', 'consecutive5xxErrors', 'consecutiveGatewayErrors', 'consecutiveLocalOriginFailures'];
  knownFields(c, o, at, [...counts, 'splitExternalLocalOriginErrors', 'interval', 'baseEjectionTime', 'maxEjectionPercent', 'minHealthPercent', 'outlierDetectionHttpErrorCodes']);
  for (const f of counts) asInt(c, o[f], [...at, f], 0);
  const codes = asList(c, o.outlierDetectionHttpErrorCodes, [...at, 'outlierDetectionHttpErrorCodes']);
  codes?.forEach((code, i) => asInt(c, code, [...at, 'outlierDetectionHttpErrorCodes', i], 100, 599));
  if (codes && codes.length > 0) c.warn([...at, 'outlierDetectionHttpErrorCodes'], 'not implemented by meshgate: 5xx answers count as errors, other codes do not');
  if (isSet(o.consecutiveErrors)) c.warn([...at, 'consecutiveErrors'], 'consecutiveErrors is deprecated; use consecutive5xxErrors or consecutiveGatewayErrors');
  const split = asBool(c, o.splitExternalLocalOriginErrors, [...at, 'splitExternalLocalOriginErrors']);
  if (typeof o.consecutiveLocalOriginFailures === 'number' && o.consecutiveLocalOriginFailures > 0 && !split) {
    c.error([...at, 'consecutiveLocalOriginFailures'], 'consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true');
  }
  checkDuration(c, o.interval, [...at, 'interval']);
  checkDuration(c, o.baseEjectionTime, [...at, 'baseEjectionTime']);
  asInt(c, o.maxEjectionPercent, [...at, 'maxEjectionPercent'], 0, 100);
  asInt(c, o.minHealthPercent, [...at, 'minHealthPercent'], 0, 100);
}

function checkClientTls(c: Checker, v: unknown, at: FieldPath): void {
  const t = asObj(c, v, at);
  if (!t) return;
  const files = ['clientCertificate', 'privateKey', 'caCertificates', 'caCrl'];
  knownFields(c, t, at, ['mode', ...files, 'credentialName', 'subjectAltNames', 'sni', 'insecureSkipVerify']);
  const mode = asEnum(c, t.mode, [...at, 'mode'], CLIENT_TLS_MODES);
  for (const f of [...files, 'credentialName', 'sni']) asString(c, t[f], [...at, f]);
  const sans = stringList(c, t.subjectAltNames, [...at, 'subjectAltNames']);
  const insecure = asBool(c, t.insecureSkipVerify, [...at, 'insecureSkipVerify']);
  const has = (f: string): boolean => typeof t[f] === 'string' && t[f] !== '';
  if (insecure && (mode === 'SIMPLE' || mode === 'MUTUAL')) {
    const verifying = [mode === 'SIMPLE' && has('credentialName') ? 'credentialName' : undefined, has('caCertificates') ? 'caCertificates' : undefined, sans.length > 0 ? 'subjectAltNames' : undefined];
    for (const f of verifying) if (f) c.error([...at, f], 'cannot verify the server when insecureSkipVerify is true; remove one of them');
  }
  if ((mode === 'SIMPLE' || mode === 'MUTUAL') && has('credentialName')) {
    for (const f of files) if (has(f)) c.error([...at, f], 'certificate files cannot be combined with credentialName; the credential holds them');
    return;
  }
  if (mode === 'MUTUAL') {
    if (!has('clientCertificate')) c.error([...at, 'clientCertificate'], 'MUTUAL needs clientCertificate and privateKey, or credentialName');
    if (!has('privateKey')) c.error([...at, 'privateKey'], 'MUTUAL needs privateKey alongside clientCertificate, or credentialName');
  }
}

function checkTunnel(c: Checker, v: unknown, at: FieldPath): void {
  const t = asObj(c, v, at);
  if (!t) return;
  knownFields(c, t, at, ['protocol', 'targetHost', 'targetPort']);
  asEnum(c, t.protocol, [...at, 'protocol'], ['CONNECT', 'POST']);
  const host = asString(c, t.targetHost, [...at, 'targetHost']);
  if (!host) c.error([...at, 'targetHost'], 'tunnel.targetHost is required');
  else if (hostProblem(host, false) && !isIpAddress(host)) c.error([...at, 'targetHost'], `${JSON.stringify(host)} is not a host name or IP address`);
  if (!isSet(t.targetPort)) c.error([...at, 'targetPort'], 'tunnel.targetPort is required');
  else checkPort(c, t.targetPort, [...at, 'targetPort']);
}
