// `meshgate inject -f FILE`: the sidecar injection of the cluster's webhook, offline, like
// `istioctl kube-inject`: prints the manifest with every pod template injected.

import { kubeInject } from '../core/inject/workloads.js';
import { DEFAULT_INJECT_IMAGE, DEFAULT_CONTROL_ADDRESS } from '../core/inject/defaults.js';
import { parse, readFlagFile } from './options.js';
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
  --trust-domain NAME     SPIFFE trust domain (default cluster.local)
  --revision NAME         the control plane revision written in sidecar.istio.io/status (default default)`;

export async function runInjectCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    filename: { type: 'string', short: 'f' },
    image: { type: 'string' },
    'control-address': { type: 'string' },
    'trust-domain': { type: 'string' },
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
  const result = kubeInject(
    text,
    {
      image: values.image ?? DEFAULT_INJECT_IMAGE,
      controlAddress,
      ...(values['trust-domain'] ? { trustDomain: values['trust-domain'] } : {}),
      ...(values.revision ? { revision: values.revision } : {}),
    },
    values.filename,
  );
  for (const p of result.problems) console.error(`meshgate inject: ${p}`);
  if (result.problems.length > 0) return 1;
  console.log(result.yaml.trimEnd());
  return 0;
}
