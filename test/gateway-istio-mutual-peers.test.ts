// A Gateway server with `tls.mode: ISTIO_MUTUAL` (an egress or east-west gateway taking mesh mTLS)
// takes its clients as a sidecar takes its callers (core/tls/mesh-peer.ts): a certificate from the
// mesh root naming a workload of the mesh's trust domain or one of its trustDomainAliases. Before,
// any certificate the mesh root signed was let in, another mesh's workloads included when the two
// share a root. With PILOT_SKIP_VALIDATE_TRUST_DOMAIN set, as Istio's, any trust domain is let in.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateAuthority, type CertificateAuthority } from '../src/core/pki/authority.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { SKIP_VALIDATE_TRUST_DOMAIN_ENV } from '../src/core/pki/trust-domain.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { fixedIdentity } from './helpers/mesh.js';
import { rawExchange } from './helpers/raw-http.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const HOST = 'egress.example.com';

describe('gateway ISTIO_MUTUAL server: only peers of the mesh trust domain and its aliases', () => {
  let dir: string;
  let ca: CertificateAuthority;
  /** The mesh root's signing key, to write workload certificates of trust domains its CA does not sign for. */
  let signer: { certPem: string; keyPem: string };
  let app: Upstream;
  const gateways: TestGateway[] = [];

  const start = async (): Promise<TestGateway> => {
    const gw = await startTestGateway(
      {
        'gw.yaml': `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mesh-in, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [${HOST}]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: istio-system}
spec:
  hosts: [${HOST}]
  gateways: [mesh-in]
  http: [{route: [{destination: {host: app.default.svc.cluster.local}}]}]
`,
        'app.yaml': serviceYaml('app', [{ pod: 'app-1', port: app.port }]),
      },
      { gatewayPort: 443, identity: fixedIdentity(ca, 'istio-system', 'istio-egressgateway') },
    );
    gateways.push(gw);
    return gw;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-istio-mutual-'));
    const r = loadOrCreateAuthority(join(dir, 'ca'));
    if (!r.ok) throw new Error(r.message);
    ca = r.ca;
    signer = { certPem: await readFile(join(dir, 'ca', 'ca-cert.pem'), 'utf8'), keyPem: await readFile(join(dir, 'ca', 'ca-key.pem'), 'utf8') };
    app = await startUpstream('app');
  });
  after(async () => {
    for (const gw of gateways) await gw.close();
    delete process.env[SKIP_VALIDATE_TRUST_DOMAIN_ENV];
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** GET / over mTLS with a certificate the mesh root signs for `trustDomain`; 0 when the connection is closed. */
  const get = async (port: number, trustDomain: string): Promise<number> => {
    const c = issueCertificate({ subjectCN: 'sleep', uris: [`spiffe://${trustDomain}/ns/default/sa/sleep`], issuer: signer, days: 1, keyType: 'ec' });
    const tls = { ca: ca.rootCertPem, servername: HOST, cert: c.certPem, key: c.keyPem };
    return (await rawExchange(port, `GET / HTTP/1.1\r\nhost: ${HOST}\r\nconnection: close\r\n\r\n`, { tls }).catch(() => ({ status: 0 }))).status;
  };

  it('a peer of the trust domain is served; one of another trust domain under the same root is closed until the mesh config names it an alias', async () => {
    const gw = await start();
    assert.equal(await get(gw.port, 'cluster.local'), 200);
    assert.equal(await get(gw.port, 'other.example'), 0);
    await gw.write('mesh.yaml', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    trustDomainAliases: [other.example]\n');
    await eventually(async () => (await get(gw.port, 'other.example')) === 200);
    assert.equal(await get(gw.port, 'third.example'), 0);
    await rm(join(gw.dir, 'mesh.yaml'));
    await eventually(async () => (await get(gw.port, 'other.example')) === 0);
  });

  it('PILOT_SKIP_VALIDATE_TRUST_DOMAIN=true: a peer of any trust domain under the mesh root is served', async () => {
    process.env[SKIP_VALIDATE_TRUST_DOMAIN_ENV] = 'true';
    const gw = await start();
    assert.equal(await get(gw.port, 'third.example'), 200);
    assert.equal(await get(gw.port, 'cluster.local'), 200);
  });
});
