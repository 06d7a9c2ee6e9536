// The scrape annotations injection puts on a pod so that Prometheus' pod discovery (the
// `prometheus.io/*` convention Istio's samples and most charts use) finds its sidecar's Istio
// metrics. Istio points them at the agent's port 15020, which merges the app's own metrics in;
// meshgate's sidecar serves /stats/prometheus itself on 15090 (pod IP) and merges nothing, so the
// annotations name 15090, and a pod that already says how to scrape it keeps what it says: its
// app's metrics stay scraped, and the sidecar's need a scrape of their own (docs/reference/metrics.md).

export const SIDECAR_METRICS_PORT = 15090;
export const SIDECAR_METRICS_PATH = '/stats/prometheus';

const SCRAPE = 'prometheus.io/scrape';
const PORT = 'prometheus.io/port';
const PATH = 'prometheus.io/path';
/** Istio's per-pod opt-out of metrics merging; "false" leaves the pod's annotations alone. */
export const MERGE_METRICS_ANNOTATION = 'prometheus.istio.io/merge-metrics';

export function addScrapeAnnotations(annotations: Record<string, string>): void {
  if (annotations[MERGE_METRICS_ANNOTATION] === 'false') return;
  // The pod already decides (to be scraped elsewhere, or not at all): changing that would lose the app's metrics.
  if (annotations[SCRAPE] !== undefined || annotations[PORT] !== undefined || annotations[PATH] !== undefined) return;
  annotations[SCRAPE] = 'true';
  annotations[PORT] = String(SIDECAR_METRICS_PORT);
  annotations[PATH] = SIDECAR_METRICS_PATH;
}
