// Integration: Istio's External Authorization task on sidecars. httpbin, curl and the authorizer
// each run beside a sidecar in namespace foo; httpbin's CUSTOM policy sends /headers to the
// `envoyExtAuthzGrpc` provider, a real gRPC server (Envoy's Authorization/Check) reached over the
// mesh's mutual TLS. The authorizer sees the request's headers and both peers' identities; its OK
// lets the call on with its headers, its denial is the client's answer, and a call that fails is 403.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { sidecarOptions, testAuthority, untilSnapshot, viaProxy } from './helpers/mesh.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { NO_APP } from './helpers/ports.js';
import { BODY_DENIED, DENY_BODY, meshConfigMap, startGrpcAuthorizer, type TestGrpcAuthorizer } from './helpers/ext-authz.js';

const MESH = `    extensionProviders:
    - name: "sample-ext-authz-grpc"
      envoyExtAuthzGrpc:
        service: "ext-authz.foo.svc.cluster.local"
        port: "9000"
        includeRequestBodyInCheck: {maxRequestBytes: 64}`;

// STRICT: the authorizer's sidecar takes the check only over the mesh's mutual TLS.
const POLICY = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: foo}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ext-authz
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  action: CUSTOM
  provider:
    name: sample-ext-authz-grpc
  rules:
  - to:
    - operation:
        paths: ["/headers"]
`;

describe('sidecars: CUSTOM with an envoyExtAuthzGrpc provider over mutual TLS', () => {
  let ca: CertificateAuthority;
  let dir: string;
  let httpbin: Upstream;
  let authz: TestGrpcAuthorizer;
  let httpbinSidecar: RunningSidecar, curlSidecar: RunningSidecar, authzSidecar: RunningSidecar;
  const meshed = { 'security.istio.io/tlsMode': 'istio' };

  before(async () => {
    ca = await testAuthority();
    httpbin = await startUpstream('httpbin');
    authz = await startGrpcAuthorizer();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-extauthz-grpc-'));
    await writeFile(join(dir, 'mesh.yaml'), meshConfigMap(MESH));
    await writeFile(join(dir, 'policy.yaml'), POLICY);
    httpbinSidecar = await startSidecar(sidecarOptions(ca, dir, 'httpbin', httpbin.port, 'foo'));
    curlSidecar = await startSidecar(sidecarOptions(ca, dir, 'curl', NO_APP, 'foo'));
    authzSidecar = await startSidecar(sidecarOptions(ca, dir, 'ext-authz', authz.port, 'foo'));
    await writeFile(
      join(dir, 'services.yaml'),
      serviceYaml('httpbin', [{ pod: 'httpbin-0', port: httpbinSidecar.inboundPort, serviceAccount: 'httpbin', labels: meshed }], { namespace: 'foo', port: 8000 }) +
        '---\n' +
        serviceYaml('ext-authz', [{ pod: 'ext-authz-0', port: authzSidecar.inboundPort, serviceAccount: 'ext-authz', labels: meshed }], { namespace: 'foo', port: 9000, portName: 'grpc' }),
    );
    await Promise.all([httpbinSidecar, curlSidecar].map((s) => untilSnapshot(s.holder, (snap) => snap.extAuthz?.get('sample-ext-authz-grpc')?.kind === 'grpc' && snap.registry.lookup('httpbin.foo.svc.cluster.local') !== undefined)));
  });

  after(async () => {
    await Promise.all([httpbinSidecar?.destroy(), curlSidecar?.destroy(), authzSidecar?.destroy()]);
    await Promise.all([httpbin?.close(), authz?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('x-ext-authz: deny is the authorizer\'s denial, and httpbin never sees it', async () => {
    const before = httpbin.seen.length;
    const r = await viaProxy(curlSidecar.outboundPort, 'http://httpbin.foo:8000/headers', { 'x-ext-authz': 'deny' });
    assert.equal(r.status, 403);
    assert.equal(r.text, DENY_BODY);
    assert.equal(r.headers['x-ext-authz-check-result'], 'denied');
    assert.equal(httpbin.seen.length, before);
  });

  it('x-ext-authz: allow reaches httpbin with the authorizer\'s headers', async () => {
    const r = await viaProxy(curlSidecar.outboundPort, 'http://httpbin.foo:8000/headers', { 'x-ext-authz': 'allow', 'x-removed': 'secret' });
    assert.equal(r.status, 200, r.text);
    const echo = JSON.parse(r.text) as { headers: Record<string, string> };
    assert.equal(echo.headers['x-ext-authz-check-result'], 'allowed');
    assert.equal(echo.headers['x-removed'], undefined, 'headers_to_remove');
    assert.equal(r.headers['x-authz-said'], 'yes', 'response_headers_to_add');
  });

  it('the CheckRequest carries the request and both peers, as Envoy sends them', async () => {
    const check = authz.seen.at(-1)!.attributes;
    const http = check.request!.http!;
    assert.equal(http.method, 'GET');
    assert.equal(http.path, '/headers');
    assert.equal(http.host, 'httpbin.foo:8000');
    assert.equal(http.headers[':path'], '/headers');
    assert.equal(http.headers[':authority'], 'httpbin.foo:8000');
    assert.equal(http.headers['x-ext-authz'], 'allow');
    assert.ok(http.id, 'the request id');
    assert.equal(check.source!.principal, 'spiffe://cluster.local/ns/foo/sa/curl');
    assert.equal(check.destination!.principal, 'spiffe://cluster.local/ns/foo/sa/httpbin');
  });

  it('includeRequestBodyInCheck: the authorizer decides on the body, and httpbin still gets all of it', async () => {
    const before = httpbin.seen.length;
    assert.equal((await viaProxy(curlSidecar.outboundPort, 'http://httpbin.foo:8000/headers', { 'x-ext-authz': 'allow' }, 'sidecar body')).status, 200);
    assert.equal(authz.seen.at(-1)!.attributes.request!.http!.body, 'sidecar body');
    assert.equal((await viaProxy(curlSidecar.outboundPort, 'http://httpbin.foo:8000/headers', { 'x-ext-authz': 'allow' }, BODY_DENIED)).status, 403);
    assert.equal((await viaProxy(curlSidecar.outboundPort, 'http://httpbin.foo:8000/headers', { 'x-ext-authz': 'allow' }, 'x'.repeat(65))).status, 413);
    assert.deepEqual(httpbin.seen.slice(before).map((e) => [e.method, e.bodyBytes]), [['POST', 12]]);
  });

  it('paths the policy does not name go to httpbin without a check', async () => {
    const checks = authz.seen.length;
    const r = await viaProxy(curlSidecar.outboundPort, 'http://httpbin.foo:8000/ip', { 'x-ext-authz': 'deny' });
    assert.equal(r.status, 200);
    assert.equal(authz.seen.length, checks);
  });

  it('a failed Check call is an error: 403 with no body', async () => {
    const r = await viaProxy(curlSidecar.outboundPort, 'http://httpbin.foo:8000/headers', { 'x-ext-authz': 'crash' });
    assert.equal(r.status, 403);
    assert.equal(r.text, '');
  });
});
