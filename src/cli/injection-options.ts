// The control plane's injection flags: parsed here so `meshgate control` only spreads them in.
// Injection is on by default with --config-source kubernetes (the API server calls it) and off in
// file mode unless --injection-port is given.

import type { Logger } from 'pino';
import { loadKubeConfig } from '../core/sources/kube-source.js';
import { DEFAULT_CONTROL_ADDRESS, DEFAULT_INJECT_IMAGE } from '../core/inject/defaults.js';
import type { ControlPlaneOptions } from '../control/main.js';
import { INJECTION_PORT } from '../control/injection-webhook.js';
import { caBundleUpdater } from '../control/webhook-ca-bundle.js';
import { parsePort } from './options.js';
import { NATIVE_SIDECARS_ENV, nativeSidecarMode } from '../core/inject/native-sidecars.js';
import { NodeVersions } from '../control/node-versions.js';
import { UsageError } from './main.js';

export const DEFAULT_WEBHOOK_CONFIG = 'meshgate-sidecar-injector';
export const DEFAULT_INJECTOR_SERVICE = 'meshgate-sidecar-injector';

export const INJECTION_FLAGS = {
  'injection-port': { type: 'string' },
  'injector-service': { type: 'string' },
  'injector-namespace': { type: 'string' },
  'webhook-config': { type: 'string' },
  'proxy-image': { type: 'string' },
  'control-address': { type: 'string' },
  'hold-application-until-proxy-starts': { type: 'boolean' },
} as const;

export const INJECTION_HELP = `  --injection-port N    HTTPS port of the sidecar injection webhook (POST /inject); default ${INJECTION_PORT}
                        with --config-source kubernetes, off in file mode unless given
  --injector-service NAME
                        the Service the API server calls the webhook through; its certificate is
                        for NAME.NAMESPACE.svc (default ${DEFAULT_INJECTOR_SERVICE})
  --injector-namespace NS
                        that Service's namespace (default $POD_NAMESPACE, else istio-system)
  --webhook-config NAME the MutatingWebhookConfiguration whose caBundle is kept at the mesh root
                        (default ${DEFAULT_WEBHOOK_CONFIG}; kubernetes mode only)
  --proxy-image IMAGE   the image injected sidecars run, and in cluster mode the gateways deployed for
                        Gateway API Gateways (default ${DEFAULT_INJECT_IMAGE})
  --control-address URL the control plane as injected sidecars reach it
                        (default ${DEFAULT_CONTROL_ADDRESS})
  --hold-application-until-proxy-starts
                        every injected pod starts its proxy first and its app once the proxy is
                        ready (Istio's values.global.proxy.holdApplicationUntilProxyStarts); a pod
                        asks for it alone with holdApplicationUntilProxyStarts in proxy.istio.io/config,
                        the mesh with it in defaultConfig
                        Native sidecars (the proxy an init container with restartPolicy Always):
                        env ${NATIVE_SIDECARS_ENV}=true|false|auto (default auto: where every node's
                        kubelet is 1.33 or later, cluster mode only); a pod's
                        sidecar.istio.io/nativeSidecar annotation wins`;

export interface InjectionValues {
  readonly 'injection-port'?: string | undefined;
  readonly 'injector-service'?: string | undefined;
  readonly 'injector-namespace'?: string | undefined;
  readonly 'webhook-config'?: string | undefined;
  readonly 'proxy-image'?: string | undefined;
  readonly 'control-address'?: string | undefined;
  readonly 'hold-application-until-proxy-starts'?: boolean | undefined;
}

export function injectionOptions(
  values: InjectionValues,
  kube: { readonly kubeconfig: string | undefined } | undefined,
  trustDomain: string | undefined,
  log: Logger,
): Pick<ControlPlaneOptions, 'injection'> {
  if (values['injection-port'] === undefined && !kube) return {};
  const controlAddress = values['control-address'] ?? DEFAULT_CONTROL_ADDRESS;
  if (!/^https:\/\//.test(controlAddress)) throw new UsageError(`--control-address: '${controlAddress}' must be an https:// URL`);
  const native = nativeSidecarMode(process.env[NATIVE_SIDECARS_ENV]);
  if (native.problem) log.warn({ problem: native.problem }, 'injector setting not read');
  // auto needs the nodes' kubelet versions: watched in cluster mode; without a cluster, auto is off.
  const nodes = native.mode === 'auto' && kube ? new NodeVersions({ kubeconfig: loadKubeConfig(kube.kubeconfig), logger: log.child({ component: 'injector-nodes' }) }) : undefined;
  return {
    injection: {
      port: parsePort(values['injection-port'], INJECTION_PORT, '--injection-port'),
      serviceName: values['injector-service'] ?? DEFAULT_INJECTOR_SERVICE,
      namespace: values['injector-namespace'] ?? process.env.POD_NAMESPACE ?? 'istio-system',
      inject: {
        image: values['proxy-image'] ?? DEFAULT_INJECT_IMAGE,
        controlAddress,
        ...(trustDomain ? { trustDomain } : {}),
        ...(values['hold-application-until-proxy-starts'] ? { holdApplicationUntilProxyStarts: true } : {}),
        nativeSidecars: native.mode === 'true',
      },
      ...(nodes ? { nodes, nativeSidecars: (node?: string) => nodes.nativeSidecars(node) } : {}),
      ...(kube ? { caBundle: caBundleUpdater(loadKubeConfig(kube.kubeconfig), values['webhook-config'] ?? DEFAULT_WEBHOOK_CONFIG, log.child({ component: 'injector' })) } : {}),
    },
  };
}
