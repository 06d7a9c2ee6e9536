// What of a Pod the control plane sends proxies: the fields that make it an endpoint (its address,
// labels, service account, named container ports, readiness, DNS name under a headless Service),
// nothing else. A Pod as the API server holds it carries its containers' `env` values, commands and
// volumes, and `kubectl.kubernetes.io/last-applied-configuration` repeats the whole spec: passwords
// set as plain env values are common. A sidecar receives the Pods of every namespace it sends to,
// so whole Pods would hand one namespace's settings to any workload that may call it. Istio's proxies
// likewise get endpoints (address, labels, service account, locality), never a Pod.

import { isRecord } from '../core/config/load.js';

const METADATA = ['name', 'generateName', 'namespace', 'uid', 'labels', 'creationTimestamp', 'deletionTimestamp'];
const SPEC = ['serviceAccountName', 'serviceAccount', 'hostname', 'subdomain', 'nodeName'];
const STATUS = ['phase', 'podIP', 'podIPs', 'hostIP', 'conditions'];
/** Annotations of Istio's own (`sidecar.istio.io/…`, `proxy.istio.io/…`) stay; other tools' do not. */
const KEPT_ANNOTATION = /(^|\.)istio\.io\//;

/** `raw` less everything a proxy does not read. */
export function podForProxies(raw: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const metadata = pick(raw.metadata, METADATA);
  const annotations = isRecord(raw.metadata) && isRecord(raw.metadata.annotations) ? raw.metadata.annotations : {};
  const kept = Object.entries(annotations).filter(([k]) => KEPT_ANNOTATION.test(k) && k !== 'kubectl.kubernetes.io/last-applied-configuration');
  if (kept.length > 0) metadata.annotations = Object.fromEntries(kept);
  const spec = pick(raw.spec, SPEC);
  for (const list of ['containers', 'initContainers']) {
    const containers = isRecord(raw.spec) ? raw.spec[list] : undefined;
    if (Array.isArray(containers)) spec[list] = containers.map((c) => pick(c, ['name', 'ports']));
  }
  return { apiVersion: raw.apiVersion, kind: raw.kind, metadata, spec, ...(raw.status !== undefined ? { status: pick(raw.status, STATUS) } : {}) };
}

function pick(value: unknown, fields: readonly string[]): Record<string, unknown> {
  if (!isRecord(value)) return {};
  const out: Record<string, unknown> = {};
  for (const f of fields) if (value[f] !== undefined) out[f] = value[f];
  return out;
}
