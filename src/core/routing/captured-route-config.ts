// Which outbound route config serves an HTTP request a sidecar captured on its way to `address:port`
// (docs/reference/routing.md, "Captured HTTP"), as Istio's outbound listeners decide it:
// - the address is a mesh service's own (a cluster IP, a headless Service's pod, a ServiceEntry
//   address) and that service leaves the port's protocol to be detected: Istio listens on that
//   address:port alone and gives the HTTP it detects that service's virtual host whatever the Host
//   header says (its `<host>:<port>` route config, whose one virtual host answers `*`);
// - else the port is one some service declares HTTP (or a ServiceEntry leaves undeclared): Istio's
//   listener is on 0.0.0.0:<port> and routes by Host in the `<port>` route config, an unknown Host
//   (a pod's IP among them) going to the PassthroughCluster or the BlackHoleCluster;
// - else no HTTP listener has it and the connection is plain TCP (undefined here).

import type { Dialled } from '../policy/original-dst.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { RouteConfig, VirtualHost } from './types.js';

/** The single-host route configs made so far, per port route config (so per snapshot) and host. */
const sniffed = new WeakMap<RouteConfig, Map<string, RouteConfig>>();

export function capturedRouteConfig(snapshot: Snapshot, dialled: Dialled): RouteConfig | undefined {
  if (snapshot.role.kind !== 'sidecar') return undefined;
  const config = snapshot.routeConfigs.get(String(dialled.port));
  if (!config) return undefined;
  const target = snapshot.meshTcp?.byAddress(dialled.address, dialled.port);
  if (target && target.port.protocol === 'UNKNOWN') {
    const vh = config.findVirtualHost(target.service.hostname);
    if (vh) return singleHost(config, target.service.hostname, vh);
  }
  return config.anyAddress ? config : undefined;
}

function singleHost(config: RouteConfig, host: string, vh: VirtualHost): RouteConfig {
  let byHost = sniffed.get(config);
  if (!byHost) sniffed.set(config, (byHost = new Map()));
  let one = byHost.get(host);
  if (!one) {
    one = Object.freeze({ name: `${host}:${config.name}`, virtualHosts: [vh], findVirtualHost: () => vh });
    byHost.set(host, one);
  }
  return one;
}
