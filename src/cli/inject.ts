// `meshgate inject -f FILE`: the sidecar injection of the cluster's webhook, offline, like
// `istioctl kube-inject`: prints the manifest with every pod template injected. The webhook takes
// the trust domain from the mesh config it serves; offline, `--mesh-config` gives that mesh config
// (istioctl's `--meshConfigFile`), and `--trust-domain` still wins over it, as the control plane's flag does.
// From the mesh config it also takes what the webhook takes from the served one: enablePrometheusMerge
// and defaultConfig (each pod's proxy.istio.io/config goes over it).

import { kubeInject } from '../core/inject/workloads.js';
import { DEFAULT_INJECT_IMAGE, DEFAULT_CONTROL_ADDRESS } from '../core/inject/defaults.js';
import { parse, readFlagFile } from './options.js';
import { parseEmbeddedYaml } from '../core/config/embedded-yaml.js';
import { isRecord } from '../core/config/load.js';
import { trustDomainProblem } from '../core/pki/trust-domain.js';
import { UsageError } from './main.js';
import { NATIVE_SIDECARS_ENV, nativeSidecarMode } from '../core/inject/native-sidecars.js';

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
                          or the istio ConfigMap holding it in data.mesh): its trustDomain,
                          enablePrometheusMerge and defaultConfig (ProxyConfig, under each pod's
                          proxy.istio.io/config annotation) are used
  --hold-application-until-proxy-starts
                          every pod starts its proxy first and its app once the proxy is ready
                          (Istio's values.global.proxy.holdApplicationUntilProxyStarts)
  Native sidecars (the proxy an init container with restartPolicy Always) when the env var
  ${NATIVE_SIDECARS_ENV} is true (offline, auto is off: no nodes to ask), or for a pod annotated
  sidecar.istio.io/nativeSidecar: "true".
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
    'hold-application-until-proxy-starts': { type: 'boolean' },
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
  const mesh = values['mesh-config'] ? meshConfigFile(values['mesh-config']) : undefined;
  const trustDomain = values['trust-domain'] ?? mesh?.trustDomain;
  const native = nativeSidecarMode(process.env[NATIVE_SIDECARS_ENV]);
  if (native.problem) console.error(`meshgate inject: ${native.problem}`);
  const result = kubeInject(
    text,
    {
      image: values.image ?? DEFAULT_INJECT_IMAGE,
      controlAddress,
      ...(trustDomain ? { trustDomain } : {}),
      ...(values.revision ? { revision: values.revision } : {}),
      ...(mesh?.enablePrometheusMerge !== undefined ? { enablePrometheusMerge: mesh.enablePrometheusMerge } : {}),
      ...(mesh?.defaultConfig ? { meshDefaultConfig: mesh.defaultConfig } : {}),
      ...(values['hold-application-until-proxy-starts'] ? { holdApplicationUntilProxyStarts: true } : {}),
      nativeSidecars: native.mode === 'true',
    },
    values.filename,
  );
  for (const p of result.problems) console.error(`meshgate inject: ${p}`);
  if (result.problems.length > 0) return 1;
  console.log(result.yaml.trimEnd());
  return 0;
}

interface MeshForInjection {
  readonly trustDomain?: string;
  readonly enablePrometheusMerge?: boolean;
  readonly defaultConfig?: Record<string, unknown>;
}

/** What injection takes of the mesh config in `file`; a file that is no mesh config, or an invalid trust domain or defaultConfig, is a usage error. */
function meshConfigFile(file: string): MeshForInjection {
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
  const td = mesh?.['trustDomain'];
  const problem = td === undefined ? undefined : typeof td === 'string' ? trustDomainProblem(td) : 'trustDomain must be a string';
  if (problem) throw new UsageError(`--mesh-config: ${file}: ${problem}`);
  const dc = mesh?.['defaultConfig'];
  if (dc !== undefined && !isRecord(dc)) throw new UsageError(`--mesh-config: ${file}: defaultConfig must be a ProxyConfig (a mapping)`);
  const merge = mesh?.['enablePrometheusMerge'];
  return {
    ...(typeof td === 'string' ? { trustDomain: td } : {}),
    ...(typeof merge === 'boolean' ? { enablePrometheusMerge: merge } : {}),
    ...(dc !== undefined ? { defaultConfig: dc } : {}),
  };
}
