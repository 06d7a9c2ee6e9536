// The names of Istio's default ingress gateway (the default profile's istio-ingressgateway chart),
// which meshgate's shared gateway takes so that Istio's tasks work unchanged: they find the gateway's
// address with `kubectl -n istio-system get service istio-ingressgateway`, and an AuthorizationPolicy
// that lets only the ingress gateway reach a workload names its service account's principal,
// cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account. Under any other name such a
// policy denies every request the gateway forwards.

/** The Deployment and the Service of the shared gateway (and the mesh config's default ingressService). */
export const DEFAULT_GATEWAY_NAME = 'istio-ingressgateway';

/** The ServiceAccount the shared gateway runs as: its mesh identity when none is given. */
export const DEFAULT_GATEWAY_SERVICE_ACCOUNT = 'istio-ingressgateway-service-account';
