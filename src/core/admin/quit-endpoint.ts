// `POST /quitquitquit`: how a container of the pod tells its sidecar to end, Istio's documented way
// to let a Job complete (`curl -sf -XPOST http://127.0.0.1:15020/quitquitquit`). Served on the
// agent port (15020, app-probes.ts) and the admin port (15000, admin-port.ts), as Istio's agent and
// Envoy's admin both serve it. Istio's agent answers only requests from the pod itself: 15020 listens
// on the pod's address for the kubelet, and a mesh peer must not be able to stop another workload's
// proxy. Other methods are 405, a request from elsewhere 403. What a quit then does (no drain
// period, exit 0) is the sidecar's; this only answers and asks for it.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { EndpointFailures, sendEndpointFailure, sendEndpointText } from '../proxy/respond.js';

export const QUIT_PATH = '/quitquitquit';

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6: the pod's own network namespace. */
export function fromLocalhost(req: IncomingMessage): boolean {
  const addr = req.socket.remoteAddress ?? '';
  const v4 = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return v4.startsWith('127.') || addr === '::1';
}

/** Answers a request for QUIT_PATH and, for a POST from the pod itself, calls `quit` once the answer is sent. */
export function serveQuit(req: IncomingMessage, res: ServerResponse, quit: () => void): void {
  if (!fromLocalhost(req)) return sendEndpointFailure(res, EndpointFailures.localOnly);
  if (req.method !== 'POST') return sendEndpointFailure(res, EndpointFailures.postOnly);
  // The caller's connection must not keep the port's server from closing.
  res.once('finish', quit);
  sendEndpointText(res, 'OK\n', { connection: 'close' });
}
