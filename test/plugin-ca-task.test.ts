// Istio's "Plug in CA Certificates" task, in cluster mode against the Kubernetes API stand-in: a
// root CA and a cluster1 intermediate made with openssl as the task's Makefile makes them (the same
// subjects and CA extensions; 2048-bit keys, to keep the test quick), put in the Secret
// istio-system/cacerts under the task's four file names (`kubectl create secret generic cacerts
// --from-file=…`); the control plane started on it; httpbin in foo joining with its projected token.
// Then the task's check of what httpbin's sidecar presents (`openssl s_client -showcerts`): three
// certificates, the second the plugged ca-cert.pem, the third root-cert.pem, and the first verifying
// against the two (`openssl verify -CAfile <(cat ca-cert.pem root-cert.pem)`: OK).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadOrCreateCaSecrets } from '../src/control/ca-secrets.js';
import { startControlPlane, type RunningControlPlane } from '../src/control/main.js';
import { ROOT_CONFIGMAP } from '../src/control/root-cert-publisher.js';
import { TokenReviewAuthenticator } from '../src/control/token-review.js';
import { connectToMesh, type MeshConnection } from '../src/core/sources/mesh-connection.js';
import { KubeSource } from '../src/core/sources/kube-source.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { eventually } from './helpers/gateway.js';
import { startHttpbin, type Httpbin } from './helpers/httpbin.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';

const silent = pino({ level: 'silent' });
const FAST = { initialMs: 50, maxMs: 400 };
const CA_EXTENSIONS = 'basicConstraints=critical,CA:true\nkeyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,keyCertSign\n';
const run = (cmd: string, args: string[], cwd: string, input?: string): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = execFile(cmd, args, { cwd, timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    child.stdin?.end(input ?? '');
  });
const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g;

describe('Plug in CA Certificates (cacerts)', () => {
  let work: string;
  let api: KubeApiStandIn;
  let cp: RunningControlPlane;
  let mesh: MeshConnection;
  let httpbin: Httpbin;
  let sidecar: RunningSidecar;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'meshgate-plugin-ca-'));
    const openssl = async (...args: string[]): Promise<void> => {
      const r = await run('openssl', args, work);
      assert.equal(r.code, 0, r.stderr);
    };
    // root-ca: the root, self-signed; cluster1-cacerts: the intermediate it signs, and the chain.
    await writeFile(join(work, 'ca.ext'), CA_EXTENSIONS);
    await writeFile(join(work, 'intermediate.ext'), `${CA_EXTENSIONS.replace('CA:true', 'CA:true,pathlen:0')}subjectAltName=DNS:istiod.istio-system.svc\n`);
    await openssl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'root-key.pem', '-subj', '/O=Istio/CN=Root CA', '-out', 'root-cert.csr');
    await openssl('x509', '-req', '-sha256', '-days', '3650', '-signkey', 'root-key.pem', '-extfile', 'ca.ext', '-in', 'root-cert.csr', '-out', 'root-cert.pem');
    await openssl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-subj', '/O=Istio/CN=Intermediate CA/L=cluster1', '-out', 'cluster-ca.csr');
    await openssl('x509', '-req', '-sha256', '-days', '730', '-CA', 'root-cert.pem', '-CAkey', 'root-key.pem', '-set_serial', '1', '-extfile', 'intermediate.ext', '-in', 'cluster-ca.csr', '-out', 'ca-cert.pem');
    await writeFile(join(work, 'cert-chain.pem'), (await readFile(join(work, 'ca-cert.pem'), 'utf8')) + (await readFile(join(work, 'root-cert.pem'), 'utf8')));

    api = await startKubeApi();
    for (const ns of ['istio-system', 'foo']) api.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns }, status: { phase: 'Active' } });
    const data: Record<string, string> = {};
    for (const file of ['ca-cert.pem', 'ca-key.pem', 'root-cert.pem', 'cert-chain.pem']) data[file] = (await readFile(join(work, file))).toString('base64');
    api.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cacerts', namespace: 'istio-system' }, type: 'Opaque', data });

    const kubeconfig = api.kubeconfig();
    const ca = await loadOrCreateCaSecrets(kubeconfig, 'istio-system');
    assert.ok(ca.ok, ca.ok ? '' : ca.message);
    cp = await startControlPlane({
      ca: ca.ca,
      authenticator: new TokenReviewAuthenticator({ kubeconfig, cacheMs: 0 }),
      source: new KubeSource({ kubeconfig, debounceMs: 20, backoff: FAST, logger: silent }),
      kubeconfig,
      kubeBackoff: FAST,
      port: 0,
      statusPort: 0,
      listenHost: '127.0.0.1',
      logger: silent,
    });
    // httpbin in foo: its projected token, and the root from the ConfigMap mounted in its pod.
    api.addServiceAccountToken('httpbin-token', 'foo', 'httpbin');
    await writeFile(join(work, 'istio-token'), 'httpbin-token\n');
    const rootIn = (): string | undefined => api.get('v1', 'ConfigMap', 'foo', ROOT_CONFIGMAP)?.data?.['root-cert.pem'];
    await eventually(async () => rootIn() !== undefined);
    await writeFile(join(work, 'mesh-root.pem'), rootIn()!);
    mesh = await connectToMesh({ url: `https://127.0.0.1:${cp.port}`, tokenFile: join(work, 'istio-token'), rootCertFile: join(work, 'mesh-root.pem'), proxyId: 'httpbin-0.foo', description: { role: 'sidecar', labels: { app: 'httpbin' } }, logger: silent });
    httpbin = await startHttpbin();
    sidecar = await startSidecar({ identity: mesh.identity, source: mesh.source, namespace: 'foo', serviceAccount: 'httpbin', labels: { app: 'httpbin' }, appPort: httpbin.port, inboundPort: 0, outboundPort: 0, statusPort: 0, adminPort: 0, listenHost: '127.0.0.1', accessLog: 'off', logger: silent });
  });
  after(async () => {
    await sidecar?.destroy();
    mesh?.close();
    await httpbin?.close();
    await cp?.destroy();
    await api?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('the root every namespace is given is the plugged root-cert.pem', async () => {
    assert.equal(api.get('v1', 'ConfigMap', 'foo', ROOT_CONFIGMAP)?.data?.['root-cert.pem'], await readFile(join(work, 'root-cert.pem'), 'utf8'));
  });

  it('httpbin\'s sidecar presents its certificate, ca-cert.pem and root-cert.pem; the first verifies against the other two', async () => {
    // The task runs s_client from the sleep pod's proxy towards httpbin.foo:8000 (mesh mTLS, ALPN istio).
    const shown = await run('openssl', ['s_client', '-showcerts', '-alpn', 'istio', '-connect', `127.0.0.1:${sidecar.inboundPort}`], work);
    const certs = shown.stdout.match(PEM) ?? [];
    assert.equal(certs.length, 3, shown.stdout + shown.stderr);
    const same = (a: string, b: string): boolean => new X509Certificate(a).fingerprint256 === new X509Certificate(b).fingerprint256;
    assert.ok(same(certs[1]!, await readFile(join(work, 'ca-cert.pem'), 'utf8')), 'the second is ca-cert.pem');
    assert.ok(same(certs[2]!, await readFile(join(work, 'root-cert.pem'), 'utf8')), 'the third is root-cert.pem');
    assert.match(new X509Certificate(certs[0]!).subjectAltName ?? '', /URI:spiffe:\/\/cluster\.local\/ns\/foo\/sa\/httpbin/);
    await writeFile(join(work, 'proxy-cert-1.pem'), certs[0]!);
    await writeFile(join(work, 'ca-chain.pem'), certs[1]! + certs[2]!);
    const verify = await run('openssl', ['verify', '-CAfile', 'ca-chain.pem', 'proxy-cert-1.pem'], work);
    assert.equal(verify.stdout.trim(), 'proxy-cert-1.pem: OK', verify.stderr);
  });
});
