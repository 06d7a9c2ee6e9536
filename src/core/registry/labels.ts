// Label selection and the few well-known labels the registry reads off pods and workload entries:
// subsets, selectors and workloadSelectors all mean "every selector label is present with that value".

import type { Labels } from '../model/istio.js';

export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';
export const ISTIO_LOCALITY_LABEL = 'istio-locality';
export const REGION_LABEL = 'topology.kubernetes.io/region';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const SUBZONE_LABEL = 'topology.istio.io/subzone';

/** True when every key of `selector` is in `labels` with the same value; an empty selector selects all. */
export function selectorMatches(selector: Labels | undefined, labels: Labels): boolean {
  if (!selector) return true;
  for (const key of Object.keys(selector)) {
    if (labels[key] !== selector[key]) return false;
  }
  return true;
}

export function labelsEqual(a: Labels | undefined, b: Labels | undefined): boolean {
  const ak = Object.keys(a ?? {});
  const bk = Object.keys(b ?? {});
  if (ak.length !== bk.length) return false;
  return ak.every((k) => (a ?? {})[k] === (b ?? {})[k]);
}

/** Auto mTLS applies to workloads that carry a sidecar, which the injector marks with this label. */
export function hasMeshTls(labels: Labels): boolean {
  return labels[TLS_MODE_LABEL] === 'istio';
}

/** `region/zone/subzone` with trailing empty parts dropped: `r/z`, `/z`, or '' when nothing is known. */
export function formatLocality(region: string, zone: string, subzone: string): string {
  const parts = [region, zone, subzone];
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts.join('/');
}

/**
 * A workload's locality from its labels: `istio-locality` (dots stand for slashes, which label values
 * cannot hold) wins; otherwise the topology labels, with `fallbackZone` (an EndpointSlice's zone)
 * filling a missing zone.
 */
export function localityFromLabels(labels: Labels, fallbackZone = ''): string {
  const explicit = labels[ISTIO_LOCALITY_LABEL];
  if (explicit) return explicit.replaceAll('.', '/');
  return formatLocality(labels[REGION_LABEL] ?? '', labels[ZONE_LABEL] ?? fallbackZone, labels[SUBZONE_LABEL] ?? '');
}
