// Kubernetes Ingress YAML for tests: IngressClasses of Istio's controller and of another, and an
// Ingress of one host with its class named by field, by the legacy annotation, or not at all.

export const INGRESS_CLASSES = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: istio}
spec: {controller: istio.io/ingress-controller}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
---
`;

/** One path entry; `port` a number or a port name. */
export function ingressPath(path: string, pathType: string, service: string, port: number | string): string {
  return `{path: ${path}, pathType: ${pathType}, backend: {service: {name: ${service}, port: {${typeof port === 'number' ? 'number' : 'name'}: ${port}}}}}`;
}

export function ingressYaml(name: string, host: string, opts: { namespace?: string; annotation?: string; className?: string; paths?: readonly string[] } = {}): string {
  const paths = opts.paths ?? [ingressPath('/', 'Prefix', 'web', 80)];
  return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${name}
  namespace: ${opts.namespace ?? 'default'}${opts.annotation ? `\n  annotations: {kubernetes.io/ingress.class: ${opts.annotation}}` : ''}
spec:${opts.className ? `\n  ingressClassName: ${opts.className}` : ''}
  rules:
  - host: ${host}
    http:
      paths:
${paths.map((p) => `      - ${p}`).join('\n')}
---
`;
}
