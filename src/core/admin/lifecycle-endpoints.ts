// The sidecar's lifecycle actions, asked for by the pod's own containers:
//   POST /quitquitquit  end the sidecar: Istio's documented way to let a Job complete (`curl -sf
//                       -XPOST http://127.0.0.1:15020/quitquitquit`). Served on the agent port (15020,
//                       app-probes.ts) and the admin port (15000, admin-port.ts), as Istio's agent and
//                       Envoy's admin both serve it;
//   POST /drain_listeners  (the admin port, as Envoy's) every listener stops accepting at once, with
//                       no drain period: new connections are refused, those open are served to their
//                       end. Istio's locality failover task uses it to take a workload out;
//   POST /drain         start draining now (the agent port): a native sidecar's preStop hook, which
//                       runs when the pod begins to stop, while the proxy's SIGTERM comes only once the
//                       app's containers have exited.
// Istio's agent answers only requests from the pod itself: 15020 listens on the pod's address for the
// kubelet, and a mesh peer must not be able to stop or drain another workload's proxy. Other methods
// are 405, a request from elsewhere 403, and so is one a web page in a browser on the machine sent
// (local-only.ts). What the action does is the sidecar's; this only answers and
// asks for it.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { EndpointFailures, sendEndpointFailure, sendEndpointText } from '../proxy/respond.js';
import { sentByWebPage } from './local-only.js';

export const QUIT_PATH = '/quitquitquit';
export const DRAIN_PATH = '/drain';
export const DRAIN_LISTENERS_PATH = '/drain_listeners';

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6: the pod's own network namespace. */
export function fromLocalhost(req: IncomingMessage): boolean {
  const addr = req.socket.remoteAddress ?? '';
  const v4 = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return v4.startsWith('127.') || addr === '::1';
}

/** Answers a request for a lifecycle path and, for a POST from the pod itself, calls `action` once the answer is sent. */
export function serveLifecycleAction(req: IncomingMessage, res: ServerResponse, action: () => void): void {
  if (!fromLocalhost(req)) return sendEndpointFailure(res, EndpointFailures.localOnly);
  if (sentByWebPage(req)) return sendEndpointFailure(res, EndpointFailures.webPage);
  if (req.method !== 'POST') return sendEndpointFailure(res, EndpointFailures.postOnly);
  // The caller's connection must not keep the port's server from closing.
  res.once('finish', action);
  sendEndpointText(res, 'OK\n', { connection: 'close' });
}
