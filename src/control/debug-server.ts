// The control plane's debug port (15014, loopback only): `GET /debug/proxies` lists every proxy
// that subscribed, its identity, address and versions. That is an inventory of the mesh, so it is
// not on the proxies' port, where any valid token would do: like istiod's debug endpoints it is
// for a person on the machine (or `kubectl port-forward`), and listens on 127.0.0.1 only, answering
// only requests that name it as localhost or by address (local-only.ts).
// `GET /metrics` is the control plane's own metrics (control-metrics.ts), where istiod serves them;
// `/` is the mesh dashboard (mesh-dashboard.ts).

import { createServer, type Server } from 'node:http';
import type { ProxyRegistry } from './proxy-registry.js';
import type { ControlMetrics } from './control-metrics.js';
import type { MeshDashboard } from './mesh-dashboard.js';
import { serveDashboard } from '../core/telemetry/dashboard-page.js';
import { EndpointFailures, sendEndpointFailure } from '../core/proxy/respond.js';
import { namesThisMachine } from '../core/admin/local-only.js';

export const DEBUG_PROXIES_PATH = '/debug/proxies';
export const METRICS_PATH = '/metrics';

export function createDebugServer(registry: ProxyRegistry, metrics?: ControlMetrics, dashboard?: MeshDashboard): Server {
  return createServer((req, res) => {
    // Loopback is reachable by a DNS-rebinding page in a browser on this machine: it names itself.
    if (!namesThisMachine(req)) return sendEndpointFailure(res, EndpointFailures.foreignName);
    const path = (req.url ?? '/').split('?')[0];
    if (dashboard && serveDashboard(req, res, () => dashboard.data())) return;
    if (path === METRICS_PATH && metrics && req.method === 'GET') {
      void metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text));
      return;
    }
    if (path !== DEBUG_PROXIES_PATH) {
      sendEndpointFailure(res, EndpointFailures.notFound);
      return;
    }
    if (req.method !== 'GET') {
      sendEndpointFailure(res, EndpointFailures.getOnly);
      return;
    }
    const text = JSON.stringify(registry.list(), null, 2);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' }).end(text);
  });
}
