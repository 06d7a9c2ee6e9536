// The labels a meshgate gateway carries unless told otherwise: those of the pods of Istio's default
// ingress gateway (the istio-ingressgateway Deployment), so that what Istio's tasks select that
// gateway by selects meshgate's too: `istio: ingressgateway` in Gateways, `app: istio-ingressgateway`
// in AuthorizationPolicy, RequestAuthentication, Telemetry and EnvoyFilter selectors. Its telemetry
// then names it as Istio's does: workload, app and canonical service `istio-ingressgateway`.

export const DEFAULT_GATEWAY_LABELS = Object.freeze({ app: 'istio-ingressgateway', istio: 'ingressgateway' } as const);

/** As `--labels` is written: `app=istio-ingressgateway,istio=ingressgateway`. */
export const DEFAULT_GATEWAY_LABELS_TEXT = Object.entries(DEFAULT_GATEWAY_LABELS)
  .map(([k, v]) => `${k}=${v}`)
  .join(',');
