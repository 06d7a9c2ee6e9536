// The merged metrics endpoint, `:15020/stats/prometheus`, which injection points the pod's
// `prometheus.io/*` annotations at (core/inject/prometheus-annotations.ts), as Istio's agent serves
// it: the sidecar's Istio series, then the app's own metrics, scraped at that moment from the port and
// path the pod's annotations named before injection. One scrape per pod gets both.
//
// The app is reached on 127.0.0.1 as Istio's agent reaches it on localhost (the capture rules let the
// proxy's own loopback connections through). An app that cannot be scraped (down, an error status,
// no complete answer within the scrape's timeout, or more than maxAppBytes of it) costs its part
// only: the sidecar's series are still answered, the failure is logged when it starts and when it
// ends, not at every scrape, and counted as Istio's agent counts it, in the agent's own series that
// lead the merged answer: istio_agent_scrapes_total, istio_agent_scrape_failures_total{type}.
// Istio's agent streams the app's answer through; this one holds it to append it, so it is bounded:
// a huge or endless exposition is cut at the cap and a slow one at the deadline, and either way the
// sidecar's memory holds at most the cap.

import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AppMetricsTarget } from '../core/inject/prometheus-annotations.js';
import { internalFailure, sendEndpointFailure } from '../core/proxy/respond.js';
import { promClient } from '../core/telemetry/prom-client-module.js';

export interface MergedMetricsOptions {
  /** The sidecar's Istio series; undefined when its metrics are off (`--metrics-port 0`). */
  readonly own: () => Registry | undefined;
  readonly app?: AppMetricsTarget;
  readonly appHost?: string;
  readonly log: Logger;
  /** The most of the app's exposition one scrape holds (default DEFAULT_MAX_APP_BYTES); past it the app's part is dropped. */
  readonly maxAppBytes?: number;
}

const TEXT_FORMAT = 'text/plain; version=0.0.4; charset=utf-8';
/** Prometheus sends its scrape timeout; without it, a scrape of the app gets this long, the whole answer included. */
const DEFAULT_APP_TIMEOUT_MS = 10_000;
/** Far above what an app exposes (hundreds of KB for thousands of series), far below what hurts a sidecar. */
export const DEFAULT_MAX_APP_BYTES = 8 * 1024 * 1024;

/** The app's exposition, or why there is none: all of it within `timeoutMs` and `maxBytes`, or nothing. */
function scrapeApp(target: AppMetricsTarget, host: string, timeoutMs: number, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      call.destroy();
      reject(err);
    };
    const call = request(
      // The text format is what can follow the proxy's series; OpenMetrics ends with `# EOF`.
      { host, port: target.port, path: target.path, method: 'GET', headers: { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1' } },
      (answer: IncomingMessage) => {
        if ((answer.statusCode ?? 500) >= 300) return fail(new Error(`the app answered ${answer.statusCode}`));
        const tooLarge = (): Error => new Error(`the app's metrics are larger than ${maxBytes} bytes`);
        if (Number(answer.headers['content-length'] ?? 0) > maxBytes) return fail(tooLarge());
        const chunks: Buffer[] = [];
        let size = 0;
        answer.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) return fail(tooLarge());
          chunks.push(c);
        });
        answer.once('error', fail);
        answer.once('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(deadline);
          resolve(Buffer.concat(chunks).toString('utf8').replace(/^# EOF\s*$/m, ''));
        });
      },
    );
    // A deadline for the whole answer, not an idle timeout: an app that drips bytes must not hold the scrape.
    const deadline = setTimeout(() => fail(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    call.once('error', fail);
    call.end();
  });
}

/** The agent's own series, which lead the merged answer as istio-agent's do. */
function agentMetrics(): { registry: import('prom-client').Registry; scrapes: import('prom-client').Counter; failures: import('prom-client').Counter<'type'> } {
  const client = promClient();
  const registry = new client.Registry();
  return {
    registry,
    scrapes: new client.Counter({ name: 'istio_agent_scrapes_total', help: 'Scrapes of the merged metrics endpoint.', registers: [registry] }),
    failures: new client.Counter({ name: 'istio_agent_scrape_failures_total', help: 'Scrapes of the merged endpoint that went without a part, by the part missing (`application`, `envoy`).', labelNames: ['type'], registers: [registry] }),
  };
}

function timeoutOf(req: IncomingMessage): number {
  const s = Number(req.headers['x-prometheus-scrape-timeout-seconds']);
  return Number.isFinite(s) && s > 0 ? Math.min(s * 1000, 60_000) : DEFAULT_APP_TIMEOUT_MS;
}

/** Answers one scrape of the merged endpoint. */
export function mergedMetricsHandler(o: MergedMetricsOptions): (req: IncomingMessage, res: ServerResponse) => void {
  let failing: string | undefined;
  const agent = agentMetrics();
  const appPart = async (req: IncomingMessage): Promise<string> => {
    if (!o.app) return '';
    try {
      const text = await scrapeApp(o.app, o.appHost ?? '127.0.0.1', timeoutOf(req), o.maxAppBytes ?? DEFAULT_MAX_APP_BYTES);
      if (failing) o.log.info({ port: o.app.port, path: o.app.path }, 'app metrics scraped again for the merged endpoint');
      failing = undefined;
      return text;
    } catch (err) {
      const why = (err as Error).message;
      agent.failures.inc({ type: 'application' });
      if (failing !== why) o.log.warn({ port: o.app.port, path: o.app.path, error: why }, 'app metrics cannot be scraped; the merged endpoint serves the sidecar\'s only');
      failing = why;
      return '';
    }
  };
  return (req, res) => {
    const registry = o.own();
    agent.scrapes.inc();
    Promise.all([registry ? registry.metrics() : Promise.resolve(''), appPart(req)]).then(
      async ([own, app]) => {
        const parts = [await agent.registry.metrics(), own, app].filter((p) => p !== '').map((p) => (p.endsWith('\n') ? p : `${p}\n`));
        res.writeHead(200, { 'content-type': registry?.contentType ?? TEXT_FORMAT }).end(parts.join(''));
      },
      (err: unknown) => sendEndpointFailure(res, internalFailure((err as Error).message)),
    );
  };
}
