// Istio's `Sidecar` kind (networking.istio.io): which workloads it selects (`workloadSelector.labels`)
// and, in `egress[].hosts`, which services and routes those sidecars import, as `namespace/dnsName`
// (`./*`, `*/*`, `~/*`, `prod/*.example.com`). The control plane narrows what it sends a sidecar by
// it; the other fields (ingress listeners, ports, capture modes) are accepted and not acted on.

import { asString, checkWorkloadSelector, eachObj, hostProblem, knownFields, stringList, type Checker, type Obj } from './validate-common.js';

const SIDECAR_FIELDS = ['workloadSelector', 'egress', 'ingress', 'outboundTrafficPolicy', 'inboundConnectionPool'];

export function validateSidecar(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], SIDECAR_FIELDS);
  if (spec['workloadSelector'] !== undefined) checkWorkloadSelector(c, spec['workloadSelector'], ['spec', 'workloadSelector'], 'labels');
  eachObj(c, spec['egress'], ['spec', 'egress'], (e, at) => {
    knownFields(c, e, at, ['port', 'bind', 'captureMode', 'hosts']);
    if (e['bind'] !== undefined) asString(c, e['bind'], [...at, 'bind']);
    const hosts = stringList(c, e['hosts'], [...at, 'hosts']);
    if (hosts.length === 0) c.error([...at, 'hosts'], 'an egress listener needs at least one host (namespace/dnsName)');
    for (const { value, at: hostAt } of hosts) {
      const problem = egressHostProblem(value);
      if (problem) c.error(hostAt, problem);
    }
  });
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
