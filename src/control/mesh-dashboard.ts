// The control plane's view of the whole mesh for the dashboard: every connected proxy's Istio
// counters, collected from its metrics port (`/stats/json`, the same series as
// `/stats/prometheus`), turned into the live service graph, with each node's routes and the
// configuration problems that name it. Collected on demand, at most once a second, so an open
// dashboard is what makes it work and a closed one costs nothing.

import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { DEFAULT_METRICS_PORT, JSON_PATH } from '../core/telemetry/metrics-server.js';
import { ServiceGraphBuilder } from '../core/telemetry/service-graph.js';
import { nodeDetails } from '../core/telemetry/dashboard-details.js';
import type { DashboardData } from '../core/telemetry/dashboard-page.js';
import type { PublishedSet } from './config-set.js';
import type { ProxyRegistry } from './proxy-registry.js';

export interface MeshDashboardOptions {
  readonly registry: ProxyRegistry;
  readonly config: () => PublishedSet | undefined;
  /** `host:port` of each proxy's metrics; default: each connected proxy's address on 15090. */
  readonly targets?: () => readonly string[];
}

const MIN_INTERVAL_MS = 1000;
const SCRAPE_TIMEOUT_MS = 1500;
/**
 * The most of one proxy's `/stats/json` read (a proxy's Istio series at their cap are a few MiB): a
 * proxy answering with more, or without end, is left out of the round, not buffered whole.
 */
export const MAX_SCRAPE_BYTES = 32 << 20;

export class MeshDashboard {
  readonly #o: MeshDashboardOptions;
  readonly #graph = new ServiceGraphBuilder();
  #last: { at: number; data: Promise<DashboardData> } | undefined;

  constructor(o: MeshDashboardOptions) {
    this.#o = o;
  }

  data(): Promise<DashboardData> {
    const now = Date.now();
    if (this.#last && now - this.#last.at < MIN_INTERVAL_MS) return this.#last.data;
    const data = this.#collect();
    this.#last = { at: now, data };
    return data;
  }

  async #collect(): Promise<DashboardData> {
    const targets = this.#o.targets?.() ?? [...new Set(this.#o.registry.list().filter((p) => p.connected).map((p) => `${p.address.includes(':') ? `[${p.address}]` : p.address}:${DEFAULT_METRICS_PORT}`))];
    const scrapes = await Promise.all(targets.map((t) => scrape(t)));
    const graph = this.#graph.update(scrapes.filter((s): s is MetricObjectWithValues<MetricValue<string>>[] => s !== undefined));
    const config = this.#o.config();
    return { ...graph, title: `meshgate mesh · ${targets.length} proxies · config ${config?.version ?? 'none'}`, details: nodeDetails(graph.nodes, config?.resources ?? [], config?.problems ?? []) };
  }
}

async function scrape(target: string): Promise<MetricObjectWithValues<MetricValue<string>>[] | undefined> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), SCRAPE_TIMEOUT_MS);
  try {
    // A redirect is not followed: a proxy's metrics port must not send the control plane elsewhere.
    const r = await fetch(`http://${target}${JSON_PATH}`, { signal: abort.signal, redirect: 'manual' });
    if (!r.ok || !r.body) return undefined;
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of r.body) {
      size += chunk.byteLength;
      if (size > MAX_SCRAPE_BYTES) {
        abort.abort();
        return undefined;
      }
      chunks.push(chunk);
    }
    // Its shape is checked where it is read (service-graph.ts): a proxy's answer is not trusted.
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as MetricObjectWithValues<MetricValue<string>>[];
  } catch {
    // A proxy without metrics (or gone) is left out of this round.
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
