// Where the injected proxy sits in the pod and how it starts and ends with the app, as Istio's
// injection template and webhook place it:
//   - a regular sidecar is the last container (kubectl exec and logs keep the app as their default);
//   - holdApplicationUntilProxyStarts (the pod's ProxyConfig, or the injector's own option, Istio's
//     values.global.proxy.holdApplicationUntilProxyStarts): the proxy is the first container and has
//     a postStart hook, `meshgate wait`, which returns once the proxy is ready; the kubelet starts the
//     containers in order and the next only after that hook, so the app's first calls find the proxy;
//   - a native sidecar (Kubernetes sidecar containers, 1.28+ behind a gate, stable in 1.33): the proxy
//     is an init container with restartPolicy Always right after istio-init, ahead of the pod's own
//     init containers, which then run in the mesh too. The kubelet starts the next init container
//     once the proxy's startupProbe passes, so no hook is needed to hold the app; and it stops the
//     proxy after the app's containers have exited, so a Job completes without /quitquitquit. As
//     that SIGTERM comes late, a preStop hook (`meshgate request … POST drain`, run when the pod
//     begins to stop) starts the proxy's drain while the app still runs.
// Every proxy has Istio's startup probe: readiness on 15021 every second, for up to 600 s.

import { DEFAULT_DRAIN_COMMAND, DEFAULT_WAIT_COMMAND } from './defaults.js';

type Json = Record<string, unknown>;

export const NATIVE_SIDECAR_ANNOTATION = 'sidecar.istio.io/nativeSidecar';

/** Istio's global.proxy.startupProbe (enabled; failureThreshold 600, i.e. 10 minutes at one a second). */
export const STARTUP_PROBE: Readonly<Json> = Object.freeze({
  httpGet: { path: '/healthz/ready', port: 15021 },
  initialDelaySeconds: 0,
  periodSeconds: 1,
  timeoutSeconds: 3,
  failureThreshold: 600,
});

/**
 * Native or not: the pod's annotation decides when it says "true" or "false"; otherwise the
 * injector's setting (ENABLE_NATIVE_SIDECARS, resolved by the injector).
 */
export function nativeSidecarFor(annotations: Readonly<Record<string, string>>, injectorDefault: boolean): boolean {
  const a = annotations[NATIVE_SIDECAR_ANNOTATION];
  if (a === 'true') return true;
  if (a === 'false') return false;
  return injectorDefault;
}

export interface Placement {
  readonly containers: Json[];
  readonly initContainers: Json[];
}

/**
 * The pod's containers and init containers with `proxy` and `init` placed. `apps` and `userInits`
 * are the pod's own, already without any earlier istio-proxy or istio-init. `proxy` is completed in
 * place (startupProbe, restartPolicy, lifecycle).
 */
export function placeProxy(apps: Json[], userInits: Json[], proxy: Json, init: Json, how: { readonly native: boolean; readonly hold: boolean }): Placement {
  proxy.startupProbe = structuredClone(STARTUP_PROBE);
  if (how.native) {
    proxy.restartPolicy = 'Always';
    proxy.lifecycle = { preStop: { exec: { command: [...DEFAULT_DRAIN_COMMAND] } } };
    return { containers: apps, initContainers: [init, proxy, ...userInits] };
  }
  // istio-init last among the init containers: the pod's own run before the capture, with the network as it is.
  if (!how.hold) return { containers: [...apps, proxy], initContainers: [...userInits, init] };
  proxy.lifecycle = { postStart: { exec: { command: [...DEFAULT_WAIT_COMMAND] } } };
  return { containers: [proxy, ...apps], initContainers: [...userInits, init] };
}
