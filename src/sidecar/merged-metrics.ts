// The merged metrics endpoint, `:15020/stats/prometheus`, which injection points the pod's
// `prometheus.io/*` annotations at (core/inject/prometheus-annotations.ts), as Istio's agent serves
// it: the sidecar's Istio series, then the app's own metrics, scraped at that moment from the port and
// path the pod's annotations named before injection. One scrape per pod gets both.
//
// The app is reached on 127.0.0.1 as Istio's agent reaches it on localhost (the capture rules let the
// proxy's own loopback connections through). An app that cannot be scraped (down, slow, an error
// status) costs its part only: the sidecar's series are still answered, and the failure is logged
// when it starts and when it ends, not at every scrape.

import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AppMetricsTarget } from '../core/inject/prometheus-annotations.js';
import { internalFailure, sendEndpointFailure } from '../core/proxy/respond.js';

export interface MergedMetricsOptions {
  /** The sidecar's Istio series; undefined when its metrics are off (`--metrics-port 0`). */
  readonly own: () => Registry | undefined;
  readonly app?: AppMetricsTarget;
  readonly appHost?: string;
  readonly log: Logger;
}

const TEXT_FORMAT = 'text/plain; version=0.0.4; charset=utf-8';
/** Prometheus sends its scrape timeout; without it, a scrape of the app gets this long. */
const DEFAULT_APP_TIMEOUT_MS = 10_000;

/** The app's exposition, or why there is none. */
function scrapeApp(target: AppMetricsTarget, host: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const call = request(
      // The text format is what can follow the proxy's series; OpenMetrics ends with `# EOF`.
      { host, port: target.port, path: target.path, method: 'GET', headers: { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1' }, timeout: timeoutMs },
      (answer: IncomingMessage) => {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.once('error', reject);
        answer.once('end', () => {
          if ((answer.statusCode ?? 500) >= 300) reject(new Error(`the app answered ${answer.statusCode}`));
          else resolve(Buffer.concat(chunks).toString('utf8').replace(/^# EOF\s*$/m, ''));
        });
      },
    );
    call.once('timeout', () => call.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    call.once('error', reject);
    call.end();
  });
}

function timeoutOf(req: IncomingMessage): number {
  const s = Number(req.headers['x-prometheus-scrape-timeout-seconds']);
  return Number.isFinite(s) && s > 0 ? Math.min(s * 1000, 60_000) : DEFAULT_APP_TIMEOUT_MS;
}

/** Answers one scrape of the merged endpoint. */
export function mergedMetricsHandler(o: MergedMetricsOptions): (req: IncomingMessage, res: ServerResponse) => void {
  let failing: string | undefined;
  const appPart = async (req: IncomingMessage): Promise<string> => {
    if (!o.app) return '';
    try {
      const text = await scrapeApp(o.app, o.appHost ?? '127.0.0.1', timeoutOf(req));
      if (failing) o.log.info({ port: o.app.port, path: o.app.path }, 'app metrics scraped again for the merged endpoint');
      failing = undefined;
      return text;
    } catch (err) {
      const why = (err as Error).message;
      if (failing !== why) o.log.warn({ port: o.app.port, path: o.app.path, error: why }, 'app metrics cannot be scraped; the merged endpoint serves the sidecar\'s only');
      failing = why;
      return '';
    }
  };
  return (req, res) => {
    const registry = o.own();
    Promise.all([registry ? registry.metrics() : Promise.resolve(''), appPart(req)]).then(
      ([own, app]) => {
        const parts = [own, app].filter((p) => p !== '').map((p) => (p.endsWith('\n') ? p : `${p}\n`));
        res.writeHead(200, { 'content-type': registry?.contentType ?? TEXT_FORMAT }).end(parts.join(''));
      },
      (err: unknown) => sendEndpointFailure(res, internalFailure((err as Error).message)),
    );
  };
}
