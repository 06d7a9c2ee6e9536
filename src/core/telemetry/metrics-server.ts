// The Prometheus endpoint of a proxy, `:15090/stats/prometheus` as Envoy serves it. With `--workers`
// the primary serves it instead and asks every worker for its series (prom-client's
// AggregatorRegistry over the cluster channel), so one scrape returns the sum over workers.

import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { promClient } from './prom-client-module.js';
import { listenOn } from '../proxy/listen.js';
import { EndpointFailures, internalFailure, sendEndpointFailure } from '../proxy/respond.js';

export const METRICS_PATH = '/stats/prometheus';
export const DEFAULT_METRICS_PORT = 15090;

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

type Render = () => Promise<{ body: string; contentType: string }>;

/** The same series as JSON (prom-client's shape), which the control plane's dashboard collects. */
export const JSON_PATH = '/stats/json';

function serve(render: Render, port: number, host: string, json?: () => Promise<unknown>): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === JSON_PATH && json) {
      json().then(
        (v) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v)),
        (err: unknown) => sendEndpointFailure(res, internalFailure((err as Error).message)),
      );
      return;
    }
    if (req.method !== 'GET' || (path !== METRICS_PATH && path !== '/metrics')) {
      sendEndpointFailure(res, EndpointFailures.notFound);
      return;
    }
    render().then(
      ({ body, contentType }) => res.writeHead(200, { 'content-type': contentType }).end(body),
      (err: unknown) => sendEndpointFailure(res, internalFailure((err as Error).message)),
    );
  });
  server.keepAliveTimeout = 5000;
  return listenOn(server, port, host).then((bound) => ({
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  }));
}

/**
 * One process's registries (the proxy's Istio series, plus any others such as a dashboard's), asked
 * for at each scrape: a proxy's registry, and prom-client with it, is made at the first one.
 */
export function serveMetrics(registries: () => readonly Registry[], port: number, host: string): Promise<MetricsServer> {
  return serve(
    async () => {
      const all = registries();
      return { body: (await Promise.all(all.map((r) => r.metrics()))).join('\n'), contentType: all[0]?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8' };
    },
    port,
    host,
    async () => (await Promise.all(registries().map((r) => r.getMetricsAsJSON()))).flat(),
  );
}

/** In the `--workers` primary: the sum of every worker's series. */
export function serveClusterMetrics(port: number, host: string): Promise<MetricsServer> {
  const aggregator = new (promClient().AggregatorRegistry)();
  return serve(async () => ({ body: await aggregator.clusterMetrics(), contentType: aggregator.contentType }), port, host);
}

/** In a worker: the registries the primary's scrape collects from this process. */
export function offerToPrimary(registries: readonly Registry[]): void {
  promClient().AggregatorRegistry.setRegistries([...registries]);
  // Constructing one is what makes a worker answer the primary's requests (prom-client adds its listener then).
  new (promClient().AggregatorRegistry)();
}
