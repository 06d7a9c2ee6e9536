// `meshgate inject -f FILE`: the sidecar injection of the cluster's webhook, offline, like
// `istioctl kube-inject`: prints the manifest with every pod template injected. The webhook takes
// the trust domain from the mesh config it serves; offline, `--mesh-config` gives that mesh config
// (istioctl's `--meshConfigFile`), and `--trust-domain` still wins over it, as the control plane's flag does.

import { kubeInject } from '../core/inject/workloads.js';
import { DEFAULT_INJECT_IMAGE, DEFAULT_CONTROL_ADDRESS } from '../core/inject/defaults.js';
import { parse, readFlagFile } from './options.js';
import { parseEmbeddedYaml } from '../core/config/embedded-yaml.js';
import { isRecord } from '../core/config/load.js';
import { trustDomainProblem } from '../core/pki/trust-domain.js';
import { meshProxyMetadata } from '../core/inject/proxy-metadata.js';
import { UsageError } from './main.js';

export const INJECT_HELP = `usage: meshgate inject -f FILE [options]

Prints FILE (multi-document YAML; - reads standard input) with the meshgate sidecar injected into
every Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob and ReplicationController,
as the control plane's admission webhook would inject their pods; other kinds pass through. A pod
template labelled sidecar.istio.io/inject: "false", with hostNetwork, or already injected is left
alone. Apply the result: meshgate inject -f app.yaml | kubectl apply -f -

  -f, --filename FILE     the manifest (- for standard input)
  --image IMAGE           the meshgate image for the sidecar and its init container
                          (default ${DEFAULT_INJECT_IMAGE})
  --control-address URL   the control plane as sidecars reach it (default ${DEFAULT_CONTROL_ADDRESS})
  --mesh-config FILE      the mesh config, as istioctl kube-inject --meshConfigFile takes it (its YAML,
                          or the istio ConfigMap holding it in data.mesh): its trustDomain is used,
                          and defaultConfig.proxyMetadata becomes both containers' environment
  --trust-domain NAME     SPIFFE trust domain (default: the mesh config's, else cluster.local)
  --revision NAME         the control plane revision written in sidecar.istio.io/status (default default)`;

export async function runInjectCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    filename: { type: 'string', short: 'f' },
    image: { type: 'string' },
    'control-address': { type: 'string' },
    'trust-domain': { type: 'string' },
    'mesh-config': { type: 'string' },
    revision: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(INJECT_HELP);
    return 0;
  }
  if (!values.filename) throw new UsageError('-f FILE is required');
  const text = readFlagFile(values.filename === '-' ? 0 : values.filename, '-f');
  const controlAddress = values['control-address'] ?? DEFAULT_CONTROL_ADDRESS;
  if (!/^https:\/\//.test(controlAddress)) throw new UsageError(`--control-address: '${controlAddress}' must be an https:// URL`);
  const mesh = values['mesh-config'] ? readMeshConfig(values['mesh-config']) : undefined;
  const trustDomain = values['trust-domain'] ?? (mesh ? meshConfigTrustDomain(mesh, values['mesh-config']!) : undefined);
  const proxyMetadata = meshProxyMetadata(mesh);
  const result = kubeInject(
    text,
    {
      image: values.image ?? DEFAULT_INJECT_IMAGE,
      controlAddress,
      ...(trustDomain ? { trustDomain } : {}),
      ...(values.revision ? { revision: values.revision } : {}),
      ...(Object.keys(proxyMetadata).length > 0 ? { proxyMetadata } : {}),
      onProblem: (problem) => console.error(`meshgate inject: ${problem}`),
    },
    values.filename,
  );
  for (const p of result.problems) console.error(`meshgate inject: ${p}`);
  if (result.problems.length > 0) return 1;
  console.log(result.yaml.trimEnd());
  return 0;
}

/** The mesh config in `file` (undefined when empty); a file that is no mesh config is a usage error. */
function readMeshConfig(file: string): Record<string, unknown> | undefined {
  const parsed = parseEmbeddedYaml(readFlagFile(file, '--mesh-config'));
  if (!parsed.ok) throw new UsageError(`--mesh-config: ${file}:${parsed.line}: ${parsed.message}`);
  let mesh = parsed.value;
  // The istio ConfigMap (kubectl get configmap istio -o yaml) holds the mesh config as text in data.mesh.
  if (isRecord(mesh) && mesh['kind'] === 'ConfigMap') {
    const data = isRecord(mesh['data']) ? mesh['data']['mesh'] : undefined;
    const inner = typeof data === 'string' ? parseEmbeddedYaml(data) : undefined;
    if (!inner?.ok) throw new UsageError(`--mesh-config: ${file}: the ConfigMap has no readable data.mesh`);
    mesh = inner.value;
  }
  if (mesh !== null && mesh !== undefined && !isRecord(mesh)) throw new UsageError(`--mesh-config: ${file} is not a mesh config (a YAML mapping)`);
  return mesh ?? undefined;
}

/** The mesh config's `trustDomain` (undefined when it names none); an invalid domain is a usage error. */
function meshConfigTrustDomain(mesh: Record<string, unknown>, file: string): string | undefined {
  const td = mesh['trustDomain'];
  if (td === undefined) return undefined;
  const problem = typeof td === 'string' ? trustDomainProblem(td) : 'trustDomain must be a string';
  if (problem) throw new UsageError(`--mesh-config: ${file}: ${problem}`);
  return td as string;
}
