// `meshgate explain [-H 'name: value'] [-X METHOD] [--ports 80=8080,443=8443 | --port 80] URL`: the
// answer to "why 404?". The URL can be the one you curled: its port is translated as --ports says.

import { explainRequest, gatewayPortFor } from '../core/routing/explain.js';
import { parse, parsePort, parsePorts } from './options.js';
import { offlineBuild, offlineRole } from './offline-snapshot.js';
import { statusLines } from '../core/gateway-api/conditions.js';
import { UsageError } from './main.js';
import { PACKAGED_CONFIG } from './default-config.js';
import { DEFAULT_GATEWAY_LABELS_TEXT } from '../core/model/gateway-labels.js';
import { DEFAULT_GATEWAY_SERVICE_ACCOUNT } from '../core/model/gateway-names.js';

export async function runExplain(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      config: { type: 'string' },
      port: { type: 'string' },
      ports: { type: 'string' },
      header: { type: 'string', short: 'H', multiple: true },
      request: { type: 'string', short: 'X' },
      labels: { type: 'string' },
      namespace: { type: 'string' },
      principal: { type: 'string' },
      sidecar: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) {
    console.log(
      [
        "usage: meshgate explain [--config DIR] [-H 'name: value'] [-X METHOD] [--ports 80=8080,443=8443] [--port N] URL",
        '  --ports LIST   how the gateway listens (as for meshgate gateway; default 80=8080,443=8443): a URL port',
        '                 that is a listen port is explained as its Gateway port; no port means 80 or 443',
        '  --port N       the Gateway port to explain, whatever the URL says',
        "  -H 'n: v'      a request header (repeatable); -X METHOD the method (default GET)",
        `  --labels LIST  the gateway's labels (default ${DEFAULT_GATEWAY_LABELS_TEXT}); with`,
        "                 --sidecar, the workload's",
        "  --namespace NS the gateway's namespace (default istio-system); with --sidecar, the workload's",
        '  --principal ID the gateway\'s mesh identity that destination sidecars authorize (default',
        `                 cluster.local/ns/<--namespace>/sa/${DEFAULT_GATEWAY_SERVICE_ACCOUNT})`,
        '  --sidecar      explain the request as the app of a workload in --namespace (default default) with',
        '                 --labels sends it through its sidecar: the route config of the URL port (or --port)',
        '  --config DIR   default: the gateway-config/ shipped with meshgate (as for meshgate demo)',
        'After the route: its rate limits (RateLimitPolicy, EnvoyFilter local rate limits: the bucket, where it',
        'counts, and whether this request is counted), the cluster, its endpoints, 503 NC/UH when that is the',
        "answer, and the destination sidecar's decision (PeerAuthentication mode, AuthorizationPolicy with the rule).",
      ].join('\n'),
    );
    return 0;
  }
  const configDir = values.config ?? PACKAGED_CONFIG;
  const target = positionals[0];
  if (!target) throw new UsageError('which request? give a URL such as http://user.example.com/path');
  let url: URL;
  try {
    url = new URL(target.includes('://') ? target : `http://${target}`);
  } catch {
    throw new UsageError(`'${target}' is not a URL`);
  }
  const headers: Record<string, string> = {};
  for (const h of values.header ?? []) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new UsageError(`-H '${h}' is not 'name: value'`);
    headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
  }
  // A sidecar's app calls the service port itself: there is no listen port to translate.
  const port =
    values.port !== undefined ? { port: parsePort(values.port, 0, '--port') }
    : values.sidecar ? { port: url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80 }
    : gatewayPortFor(url, parsePorts(values.ports ?? '80=8080,443=8443'));
  const { snapshot, problems, loaded } = await offlineBuild(configDir, offlineRole({ sidecar: values.sidecar, labels: values.labels, namespace: values.namespace }));
  const result = explainRequest(snapshot, { port: port.port, ...(port.note ? { portNote: port.note } : {}), ...(values.principal ? { principal: values.principal.replace(/^spiffe:\/\//, '') } : {}), url, method: (values.request ?? 'GET').toUpperCase(), headers }, loaded.resources);
  for (const l of result.lines) console.log(l);
  console.log(`result: ${result.verdict}`);
  // Gateway API objects: the status conditions a cluster would show for them (docs/gateway-api.md).
  const gatewayApi = statusLines(snapshot.gatewayApi);
  if (gatewayApi.length > 0) console.log(['gateway api status:', ...gatewayApi.map((l) => `  ${l}`)].join('\n'));
  const errors = problems.filter((p) => p.severity === 'error').length;
  if (errors > 0) console.log(`note: the config has ${errors} error${errors === 1 ? '' : 's'}; resources with errors are left out (meshgate analyze ${configDir})`);
  return 0;
}
