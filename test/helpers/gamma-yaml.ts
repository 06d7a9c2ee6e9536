// The HTTPRoutes of Istio's bookinfo traffic-management tasks (their Gateway API tab), attached to
// Service reviews on port 9080 exactly as the tasks write them, for the mesh (GAMMA) tests.

/** An HTTPRoute named reviews attached to Service reviews port 9080, with these rules. */
export const reviewsRoute = (rules: string): string => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: reviews
    port: 9080
  rules:
${rules}`;

/** "Request routing": end-user jason to reviews-v2, everyone else to reviews-v1. */
export const REQUEST_ROUTING = reviewsRoute(`  - matches:
    - headers:
      - name: end-user
        value: jason
    backendRefs:
    - name: reviews-v2
      port: 9080
  - backendRefs:
    - name: reviews-v1
      port: 9080
`);

/** "Traffic shifting": half to reviews-v1, half to reviews-v3. */
export const TRAFFIC_SHIFTING = reviewsRoute(`  - backendRefs:
    - name: reviews-v1
      port: 9080
      weight: 50
    - name: reviews-v3
      port: 9080
      weight: 50
`);
