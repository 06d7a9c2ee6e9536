// Prometheus metrics merging, as Istio's injector and agent do it: injection points the pod's
// `prometheus.io/*` annotations (the convention Prometheus' pod discovery and most charts use) at the
// sidecar's port 15020, path /stats/prometheus, and hands what the pod said before (the app's own
// scrape settings) to the sidecar in ISTIO_PROMETHEUS_ANNOTATIONS, which also tells it to serve 15020. The sidecar answers a scrape of
// 15020 with its Istio series followed by the app's own metrics (sidecar/merged-metrics.ts), so one
// scrape per pod gets both, and the app's metrics stay scraped (docs/reference/metrics.md).
//
// Left alone: a pod with `prometheus.istio.io/merge-metrics: "false"` (or without "true" when the mesh
// config says `enablePrometheusMerge: false`), a pod whose scrape annotation
// says false (it asked not to be scraped), and a pod already pointing at 15020 (injected before).

import { PROBE_PORT } from './app-probes.js';

export const SIDECAR_METRICS_PORT = 15090;
export const SIDECAR_METRICS_PATH = '/stats/prometheus';
/** The sidecar port that serves the merged metrics (and the app's rewritten probes). */
export const MERGED_METRICS_PORT = PROBE_PORT;
/** Istio's variable for the app's scrape settings, JSON `{scrape, path, port}` as the pod had them. */
export const PROMETHEUS_SCRAPE_ENV = 'ISTIO_PROMETHEUS_ANNOTATIONS';
/** Istio's per-pod switch for metrics merging (default on). */
export const MERGE_METRICS_ANNOTATION = 'prometheus.istio.io/merge-metrics';

/** The app's scrape settings as the pod's annotations gave them (strings, as annotations are). */
export interface AppScrapeSettings {
  scrape?: string;
  path?: string;
  port?: string;
}

// Prometheus reads an annotation through its label name, every character outside [a-zA-Z0-9_] made
// `_`: `prometheus.io/port`, `prometheus-io/port` and `prometheus.io.port` are one setting.
const KEYS = { prometheus_io_scrape: 'scrape', prometheus_io_path: 'path', prometheus_io_port: 'port' } as const;
const keyOf = (annotation: string): keyof AppScrapeSettings | undefined => KEYS[annotation.replace(/[^a-zA-Z0-9_]/g, '_') as keyof typeof KEYS];

/** Go's strconv.ParseBool, which Istio reads these annotations with; undefined when it is none. */
function parseBool(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

function scrapeSettings(annotations: Readonly<Record<string, string>>): AppScrapeSettings {
  const s: AppScrapeSettings = {};
  for (const [k, v] of Object.entries(annotations)) {
    const key = keyOf(k);
    if (key) s[key] = v;
  }
  return s;
}

/**
 * Points the annotations at the merged endpoint, in place. Returns the value of
 * ISTIO_PROMETHEUS_ANNOTATIONS for the sidecar (`{}` when the pod had no scrape settings: the sidecar
 * then serves its own series there), or undefined when the pod is left alone.
 */
export function applyMetricsMerge(annotations: Record<string, string>, meshDefault = true): string | undefined {
  // The pod's annotation first, then the mesh config's enablePrometheusMerge (default on).
  if (!(parseBool(annotations[MERGE_METRICS_ANNOTATION]) ?? meshDefault)) return undefined;
  const app = scrapeSettings(annotations);
  if (parseBool(app.scrape) === false) return undefined;
  if (app.port === String(MERGED_METRICS_PORT)) return undefined;
  for (const k of Object.keys(annotations)) if (keyOf(k)) delete annotations[k];
  annotations['prometheus.io/scrape'] = 'true';
  annotations['prometheus.io/port'] = String(MERGED_METRICS_PORT);
  annotations['prometheus.io/path'] = SIDECAR_METRICS_PATH;
  return JSON.stringify(app);
}

/** Whether the annotations already point at the merged endpoint (a pod injected before). */
export function pointsAtMergedMetrics(annotations: Readonly<Record<string, string>>): boolean {
  return scrapeSettings(annotations).port === String(MERGED_METRICS_PORT);
}

/** Where the sidecar scrapes the app for the merged endpoint; undefined: only the sidecar's own series. */
export interface AppMetricsTarget {
  readonly port: number;
  readonly path: string;
}

/**
 * Reads ISTIO_PROMETHEUS_ANNOTATIONS: `merge` when it is set at all (serve the merged endpoint). The
 * app is scraped too when the pod named a port (the path defaults to /metrics, Prometheus' own
 * default) and did not say scrape false.
 */
export function parseAppScrapeSettings(text: string | undefined): { merge: boolean; target?: AppMetricsTarget; problem?: string } {
  if (text === undefined) return { merge: false };
  if (text.trim() === '') return { merge: true };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { merge: true, problem: `${PROMETHEUS_SCRAPE_ENV} is not JSON: ${(err as Error).message}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { merge: true, problem: `${PROMETHEUS_SCRAPE_ENV} is not an object` };
  const s = raw as Record<string, unknown>;
  if (parseBool(typeof s.scrape === 'string' ? s.scrape : undefined) === false) return { merge: true };
  if (s.port === undefined || s.port === '') return { merge: true };
  const port = Number(s.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { merge: true, problem: `${PROMETHEUS_SCRAPE_ENV}: port ${JSON.stringify(s.port)} is not a port number` };
  const path = typeof s.path === 'string' && s.path !== '' ? (s.path.startsWith('/') ? s.path : `/${s.path}`) : '/metrics';
  return { merge: true, target: { port, path } };
}
