// A real gateway reading the Kubernetes API stand-in (KubeSource through the real client) and
// writing status back through it (when it holds the gateway's status Lease, as every replica of
// `meshgate gateway` in a cluster), on loopback port 80 → an ephemeral port.

import { pino } from 'pino';
import type { KubeConfig } from '@kubernetes/client-node';
import { startGateway, type RunningGateway } from '../../src/gateway/main.js';
import { KubeSource } from '../../src/core/sources/kube-source.js';
import { ElectedStatusWriter } from '../../src/core/gateway-api/status-leader.js';

/** `opts`: the gateway's --gateway-name and --labels, for a gateway of a Gateway's own deployment. */
export async function startKubeGateway(kubeconfig: KubeConfig, opts: { gatewayNames?: ReadonlySet<string>; labels?: Record<string, string>; namespace?: string; identity?: string } = {}): Promise<{ gw: RunningGateway; port: number }> {
  const logger = pino({ level: 'silent' });
  const gw = await startGateway({
    source: new KubeSource({ kubeconfig, debounceMs: 20, logger }),
    // As `meshgate gateway` writes it: the replica holding the gateway's Lease (short here, so that
    // a gateway destroyed without giving it up is followed soon).
    gatewayApiStatus: new ElectedStatusWriter({
      kubeconfig, namespace: opts.namespace ?? 'istio-system', logger, timing: { leaseDurationMs: 5000, renewDeadlineMs: 2500, retryPeriodMs: 250 },
      ...(opts.gatewayNames ? { gatewayNames: opts.gatewayNames } : {}), ...(opts.identity ? { identity: opts.identity } : {}),
    }),
    ports: new Map([[80, 0]]),
    listenHost: '127.0.0.1',
    statusPort: 0,
    adminPort: 0,
    accessLog: 'off',
    logger,
    ...(opts.gatewayNames ? { gatewayNames: opts.gatewayNames } : {}),
    ...(opts.labels ? { labels: opts.labels } : {}),
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
  });
  return { gw, port: gw.listenPorts.get(80)! };
}
