// `meshgate routes --config DIR`: the compiled routing table as the gateway (or, with --sidecar, a
// sidecar's outbound side) would serve it, with the rate limits in force on each route.

import { printRoutes } from '../core/routing/print.js';
import { parse, parsePorts } from './options.js';
import { offlineBuild, offlineRole } from './offline-snapshot.js';
import { PACKAGED_CONFIG } from './default-config.js';
import { DEFAULT_GATEWAY_LABELS_TEXT } from '../core/model/gateway-labels.js';

export async function runRoutes(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { config: { type: 'string' }, ports: { type: 'string' }, labels: { type: 'string' }, namespace: { type: 'string' }, sidecar: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) {
    console.log(
      [
        `usage: meshgate routes [--config DIR] [--ports 80=8080,443=8443] [--labels ${DEFAULT_GATEWAY_LABELS_TEXT}] [--namespace istio-system]`,
        "  --ports LIST   how the gateway listens (default 80=8080,443=8443, the demo's): listeners are shown by",
        '                 the port they listen on, as the admin /routes of a running gateway shows them',
        '  --sidecar      the outbound routes of a sidecar in --namespace (default default) with --labels instead:',
        '                 one route config per port, VirtualServices and routes attached to Services (GAMMA)',
        '  --config DIR   default: the gateway-config/ shipped with meshgate (as for meshgate demo)',
        'Each route lists its rate limits; an EnvoyFilter local rate limit filter bucket shared by a route config',
        'is listed once under it, and with --sidecar the inbound side\'s under "inbound (to the app)".',
      ].join('\n'),
    );
    return 0;
  }
  const dir = values.config ?? positionals[0] ?? PACKAGED_CONFIG;
  const { snapshot } = await offlineBuild(dir, offlineRole({ ...values, ports: parsePorts(values.ports ?? '80=8080,443=8443') }));
  process.stdout.write(printRoutes(snapshot));
  return 0;
}
