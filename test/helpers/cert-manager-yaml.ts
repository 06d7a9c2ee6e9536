// cert-manager Issuer and Certificate YAML, and a Gateway serving the Certificate's secret, as ACME
// tests write them: everything in istio-system, an HTTP-01 solver, the account key in `<issuer>-account`.

export function issuerYaml(server: string, kind = 'Issuer', name = 'pebble'): string {
  return `apiVersion: cert-manager.io/v1
kind: ${kind}
metadata: {name: ${name}, namespace: istio-system}
spec:
  acme:
    server: ${server}
    email: ops@example.test
    privateKeySecretRef: {name: ${name}-account}
    solvers:
    - http01: {ingress: {ingressClassName: istio}}
`;
}

/** A Certificate named after its secretName. */
export function certificateYaml(secretName: string, dnsNames: string[], issuer = 'pebble', extra = ''): string {
  return `apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: ${secretName}, namespace: istio-system}
spec:
  secretName: ${secretName}
  dnsNames: ${JSON.stringify(dnsNames)}
  issuerRef: {name: ${issuer}, kind: Issuer}
${extra}`;
}

/** Gateway `istio-system/gw` (or `name`): HTTPS on 443 with the credential and, unless told otherwise, plain HTTP on 80 for HTTP-01. */
export function gatewayYaml(credentialName: string, host: string, opts: { readonly plainHttp?: boolean; readonly name?: string } = {}): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${opts.name ?? 'gw'}, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [${host}]
    tls: {mode: SIMPLE, credentialName: ${credentialName}}
${opts.plainHttp === false ? '' : `  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [${host}]\n`}`;
}
