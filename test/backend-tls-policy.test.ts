// Integration: the Gateway API's BackendTLSPolicy on real sockets. An HTTPRoute sends to Services
// whose pods serve TLS with a test CA; the policy makes the gateway originate TLS with SNI
// `validation.hostname`, check the certificate against the ConfigMap CA and the hostname or the
// subjectAltNames. A wrong CA, a wrong name, a missing ConfigMap or the system roots for a private
// CA answer 503 UF and never send plaintext; the policy wins over a DestinationRule's tls for the
// same Service, as in Istio. Status conditions and ancestors, and a broken policy file that leaves
// the last good one serving.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, eventually, accessLogLine, type TestGateway } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { httpRouteYaml, k8sGatewayYaml } from './helpers/gateway-api-yaml.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { formatProblem } from '../src/core/config/problem.js';
import { newRoot, startTlsUpstream, type Pem, type TlsSeen, type TlsUpstream } from './helpers/mesh-tls.js';

const SVC_PORT = 8443;

const edge = k8sGatewayYaml('edge', '  - {name: http, port: 80, protocol: HTTP}');

const route = (name: string): string => httpRouteYaml(name, { gateway: 'edge', hostname: `${name}.example.com`, backend: name, port: SVC_PORT });

function policy(name: string, validation: string, target = `{group: "", kind: Service, name: ${name}}`): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: ${name}, namespace: default}
spec:
  targetRefs: [${target}]
  validation: ${validation}
`;
}

function configMap(name: string, ca: string): string {
  return `apiVersion: v1
kind: ConfigMap
metadata: {name: ${name}, namespace: default}
data:
  ca.crt: |
${ca.trim().split('\n').map((l) => `    ${l}`).join('\n')}
`;
}

describe('BackendTLSPolicy', () => {
  let root: Pem, other: Pem;
  let backend: TlsUpstream;
  let gw: TestGateway;
  let dir: string, logFile: string;

  const service = (name: string): string => serviceYaml(name, [{ pod: `${name}-1`, port: backend.port }], { port: SVC_PORT, portName: 'https' });
  const backendCa = '[{group: "", kind: ConfigMap, name: backend-ca}]';

  before(async () => {
    root = newRoot('backend root');
    other = newRoot('another root');
    backend = await startTlsUpstream('backend', {
      cert: issueCertificate({ subjectCN: 'secure.backend.test', dnsNames: ['secure.backend.test'], uris: ['spiffe://backend.test/ns/default/sa/secure'], issuer: root, days: 1, keyType: 'ec' }),
    });
    dir = await mkdtemp(join(tmpdir(), 'meshgate-backend-tls-'));
    logFile = join(dir, 'access.log');
    const cases: Record<string, string> = {
      secure: policy('secure', `{hostname: secure.backend.test, caCertificateRefs: ${backendCa}}`),
      'wrong-ca': policy('wrong-ca', '{hostname: secure.backend.test, caCertificateRefs: [{group: "", kind: ConfigMap, name: other-ca}]}'),
      'wrong-host': policy('wrong-host', `{hostname: other.backend.test, caCertificateRefs: ${backendCa}}`),
      'dns-san': policy('dns-san', `{hostname: alias.backend.test, caCertificateRefs: ${backendCa}, subjectAltNames: [{type: Hostname, hostname: secure.backend.test}]}`),
      'uri-san': policy('uri-san', `{hostname: alias.backend.test, caCertificateRefs: ${backendCa}, subjectAltNames: [{type: URI, uri: "spiffe://backend.test/ns/default/sa/secure"}]}`),
      'no-configmap': policy('no-configmap', '{hostname: secure.backend.test, caCertificateRefs: [{group: "", kind: ConfigMap, name: absent}]}'),
      system: policy('system', '{hostname: secure.backend.test, wellKnownCACertificates: System}'),
      'by-port': policy('by-port', `{hostname: secure.backend.test, caCertificateRefs: ${backendCa}}`, '{group: "", kind: Service, name: by-port, sectionName: https}'),
      // The user's rule says plaintext; the policy's TLS is the one used, as Istio merges them.
      'with-rule':
        policy('with-rule', `{hostname: secure.backend.test, caCertificateRefs: ${backendCa}}`) +
        `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: with-rule, namespace: default}
spec:
  host: with-rule
  trafficPolicy: {tls: {mode: DISABLE}}
`,
    };
    const files: Record<string, string> = {
      'edge.yaml': edge,
      'cas.yaml': [configMap('backend-ca', root.certPem), configMap('other-ca', other.certPem)].join('---\n'),
      'plain.yaml': service('plain') + '---\n' + route('plain'),
    };
    for (const [name, yaml] of Object.entries(cases)) files[`${name}.yaml`] = [service(name), route(name), yaml].join('---\n');
    gw = await startTestGateway(files, { accessLog: logFile });
  });

  after(async () => {
    await gw?.close();
    await backend?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const seenBy = async (host: string): Promise<TlsSeen> => {
    const r = await gw.get(host, '/x');
    assert.equal(r.status, 200, `${host}: ${r.text}`);
    return r.json<TlsSeen>();
  };

  it('originates TLS with SNI validation.hostname and checks the CA of the ConfigMap', async () => {
    const seen = await seenBy('secure.example.com');
    assert.equal(seen.sni, 'secure.backend.test');
    assert.equal(seen.name, 'backend');
  });

  it('checks subjectAltNames instead of the hostname when given (Hostname and URI)', async () => {
    assert.equal((await seenBy('dns-san.example.com')).sni, 'alias.backend.test');
    assert.equal((await seenBy('uri-san.example.com')).sni, 'alias.backend.test');
  });

  it('applies to the Service port its sectionName names', async () => {
    assert.equal((await seenBy('by-port.example.com')).sni, 'secure.backend.test');
  });

  it("wins over a DestinationRule's tls for the same Service", async () => {
    assert.equal((await seenBy('with-rule.example.com')).sni, 'secure.backend.test');
  });

  it('a wrong CA, a wrong hostname, a missing ConfigMap or the system roots for a private CA: 503 UF, nothing sent', async () => {
    const cases: Array<[string, RegExp]> = [
      ['wrong-ca', /^upstream_tls_error:certificate_verify_failed/],
      ['wrong-host', /^upstream_tls_error:/],
      ['no-configmap', /^upstream_tls_error:ca_certificate_ref_invalid$/],
      ['system', /^upstream_tls_error:certificate_verify_failed/],
    ];
    for (const [name, details] of cases) {
      const before = backend.seen.length;
      const id = `btls-${name}`;
      const r = await gw.get(`${name}.example.com`, '/x', { 'x-request-id': id });
      assert.equal(r.status, 503, `${name}: ${r.text}`);
      assert.equal(backend.seen.length, before, `${name}: no request reached the backend`);
      const line = await accessLogLine(logFile, id);
      assert.match(String(line.response_flags), /^UF(,URX)?$/, name);
      assert.match(String(line.response_code_details), details, name);
    }
  });

  it('without a policy the gateway speaks plaintext to the Service (which the TLS server refuses)', async () => {
    const before = backend.seen.length;
    const r = await gw.get('plain.example.com', '/x');
    assert.notEqual(r.status, 200);
    assert.equal(backend.seen.length, before);
  });

  it('reports Accepted and ResolvedRefs for each ancestor: the Service, and the Gateway routing to it', () => {
    const policies = gw.gw.holder.current()!.gatewayApi.policies;
    const of = (name: string) => policies.find((p) => p.resource.metadata.name === name)!;
    const text = (name: string): string[] =>
      of(name).ancestors.map((a) => `${a.ancestorRef.kind} ${a.ancestorRef.name}${a.ancestorRef.sectionName ? `/${a.ancestorRef.sectionName}` : ''}: ${a.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`).join(' ')}`);
    assert.deepEqual(text('secure'), ['Service secure: Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs', 'Gateway edge: Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs']);
    assert.deepEqual(text('by-port'), ['Service by-port/https: Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs', 'Gateway edge: Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs']);
    assert.deepEqual(text('no-configmap')[0], 'Service no-configmap: Accepted=False/NoValidCACertificate ResolvedRefs=False/InvalidCACertificateRef');
    const gatewayRef = of('secure').ancestors[1]!.ancestorRef;
    assert.deepEqual(gatewayRef, { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge', namespace: 'default' });
  });

  it('a broken policy is refused at file:line with resource and field, and the last good one keeps serving', async () => {
    await gw.write('secure.yaml', [service('secure'), route('secure'), policy('secure', `{caCertificateRefs: ${backendCa}}`)].join('---\n'));
    let problems: string[] = [];
    await eventually(async () => {
      problems = gw.gw.holder.current()!.problems.map(formatProblem);
      return problems.some((p) => p.includes('BackendTLSPolicy default/secure'));
    });
    assert.ok(problems.some((p) => /secure\.yaml:\d+ BackendTLSPolicy default\/secure spec\.validation\.hostname: is required/.test(p)), problems.join('\n'));
    assert.equal((await seenBy('secure.example.com')).sni, 'secure.backend.test');
  });
});
