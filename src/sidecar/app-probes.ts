// The sidecar's port 15020, Istio's agent port: POST /quitquitquit and /drain (lifecycle-endpoints.ts), the merged metrics at /stats/prometheus when
// injection asked for them (merged-metrics.ts), and the app's probes. The kubelet's HTTP probes,
// rewritten at injection to `/app-health/<container>/readyz|livez|startupz`, arrive here in
// plaintext (15020 is never captured), and the sidecar runs the app's real probe from ISTIO_KUBE_APP_PROBERS against the app
// and answers with its status code. Only the status travels back, as Istio's agent does: a probe
// answer is no channel for app content. A probe that cannot connect or times out is 503.

import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AppProbers } from '../core/inject/app-probes.js';
import { listenOn } from '../core/proxy/listen.js';
import { SIDECAR_METRICS_PATH as METRICS_PATH } from '../core/inject/prometheus-annotations.js';
import { EndpointFailures, sendEndpointFailure } from '../core/proxy/respond.js';
import { DRAIN_PATH, QUIT_PATH, serveLifecycleAction } from '../core/admin/lifecycle-endpoints.js';

export interface AppProbeOptions {
  readonly probers: AppProbers;
  /** Where the app listens (the pod's address under capture). */
  readonly appHost: string;
  /** Source address of probe connections (127.0.0.6 under capture, so they are not captured). */
  readonly localAddress?: string;
  /** GET /stats/prometheus: the merged metrics (absent: injection did not merge them here). */
  readonly metrics?: (req: IncomingMessage, res: ServerResponse) => void;
  /** POST /quitquitquit from the pod itself: the sidecar ends. */
  readonly quit?: () => void;
  /** POST /drain from the pod itself: the sidecar starts draining (a native sidecar's preStop). */
  readonly drain?: () => void;
}

export interface AppProbeServer {
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

export function createAppProbeServer(opts: AppProbeOptions): AppProbeServer {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === QUIT_PATH && opts.quit) return serveLifecycleAction(req, res, opts.quit);
    if (path === DRAIN_PATH && opts.drain) return serveLifecycleAction(req, res, opts.drain);
    if (path === METRICS_PATH && opts.metrics && req.method === 'GET') {
      opts.metrics(req, res);
      return;
    }
    const prober = Object.prototype.hasOwnProperty.call(opts.probers, path) ? opts.probers[path] : undefined;
    if (!prober || (req.method !== 'GET' && req.method !== 'HEAD')) {
      sendEndpointFailure(res, EndpointFailures.noSuchProbe);
      return;
    }
    const get = prober.httpGet;
    const https = get.scheme === 'HTTPS';
    const headers: Record<string, string> = { 'user-agent': 'kube-probe/meshgate' };
    for (const h of get.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
    const timeoutMs = Math.max(1, prober.timeoutSeconds ?? 1) * 1000;
    const call = (https ? httpsRequest : httpRequest)(
      {
        host: get.host ?? opts.appHost,
        port: get.port,
        path: get.path ?? '/',
        method: 'GET',
        headers,
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        // The kubelet does not verify an app's certificate on an HTTPS probe either.
        ...(https ? { rejectUnauthorized: false } : {}),
        timeout: timeoutMs,
      },
      (answer) => {
        answer.resume();
        answer.once('end', () => res.writeHead(answer.statusCode ?? 500).end());
      },
    );
    call.once('timeout', () => call.destroy(new Error('probe timed out')));
    call.once('error', () => {
      if (!res.headersSent) sendEndpointFailure(res, EndpointFailures.appProbeFailed);
    });
    call.end();
  });
  return {
    listen: (port, host) => listenOn(server, port, host),
    close: () => new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve())),
  };
}
