// A real gateway reading the Kubernetes API stand-in (KubeSource through the real client) and
// writing status back through it, on loopback port 80 → an ephemeral port.

import { pino } from 'pino';
import type { KubeConfig } from '@kubernetes/client-node';
import { startGateway, type RunningGateway } from '../../src/gateway/main.js';
import { KubeSource } from '../../src/core/sources/kube-source.js';
import { GatewayApiStatusWriter } from '../../src/core/gateway-api/status-writer.js';

/** `opts`: the gateway's --gateway-name and --labels, for a gateway of a Gateway's own deployment. */
export async function startKubeGateway(kubeconfig: KubeConfig, opts: { gatewayNames?: ReadonlySet<string>; labels?: Record<string, string>; namespace?: string } = {}): Promise<{ gw: RunningGateway; port: number }> {
  const logger = pino({ level: 'silent' });
  const gw = await startGateway({
    source: new KubeSource({ kubeconfig, debounceMs: 20, logger }),
    gatewayApiStatus: new GatewayApiStatusWriter({ kubeconfig, logger }),
    ports: new Map([[80, 0]]),
    listenHost: '127.0.0.1',
    statusPort: 0,
    adminPort: 0,
    accessLog: 'off',
    logger,
    ...opts,
  });
  return { gw, port: gw.listenPorts.get(80)! };
}
