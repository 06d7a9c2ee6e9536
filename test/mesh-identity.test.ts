// Integration: who may reach a workload through its sidecar's STRICT inbound side. Only a mesh peer
// gets in: a certificate that chains to the mesh root and names a workload of this mesh's trust
// domain, as Istio validates the peer's trust domain (a root shared with another mesh does not make
// its workloads ours). A plaintext client, a TLS client without a certificate, a certificate from
// another root and one from the same root but another trust domain are all closed before the app
// sees a byte, over HTTP and over mesh mTLS carrying TCP.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateAuthority, type CertificateAuthority } from '../src/core/pki/authority.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { sidecarOptions, workloadCertificate } from './helpers/mesh.js';
import { rawExchange, type RawAnswer } from './helpers/raw-http.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const STRICT = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`;

const REQUEST = 'GET /who HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n';

function authority(dir: string, trustDomain?: string): CertificateAuthority {
  const r = loadOrCreateAuthority(dir, trustDomain ? { trustDomain } : {});
  if (!r.ok) throw new Error(r.message);
  return r.ca;
}

describe('mesh identity at a STRICT inbound side', () => {
  let dir: string;
  let mesh: CertificateAuthority;
  /** The same root and key, another trust domain: what a second mesh sharing the root issues. */
  let foreignDomain: CertificateAuthority;
  /** Another root altogether. */
  let stranger: CertificateAuthority;
  let app: Upstream;
  let sidecar: RunningSidecar;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-identity-'));
    mesh = authority(join(dir, 'ca'));
    foreignDomain = authority(join(dir, 'ca'), 'other.example');
    stranger = authority(join(dir, 'stranger'));
    await writeFile(join(dir, 'strict.yaml'), STRICT);
    app = await startUpstream('app');
    sidecar = await startSidecar(sidecarOptions(mesh, dir, 'app', app.port));
  });

  after(async () => {
    await sidecar?.destroy();
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The request over mesh mTLS offering `alpn`, with the certificate of `ca` for default/client. */
  const asPeer = (ca: CertificateAuthority | undefined, alpn: string[]): Promise<RawAnswer> => {
    const cert = ca ? workloadCertificate(ca, 'default', 'client') : undefined;
    return rawExchange(sidecar.inboundPort, REQUEST, {
      tls: { ca: mesh.rootCertPem, servername: 'app', alpn, ...(cert ? { cert: cert.certChainPem, key: cert.keyPem } : {}) },
    }).catch(() => ({ text: '', status: 0, statuses: [] }));
  };

  it('lets a peer of this mesh in, over HTTP and over mTLS carrying TCP', async () => {
    assert.equal((await asPeer(mesh, ['istio-http/1.1', 'http/1.1'])).status, 200);
    assert.equal((await asPeer(mesh, ['istio-peer-exchange', 'istio'])).status, 200);
  });

  it('closes plaintext, no certificate, another root, and the mesh root signing another trust domain', async () => {
    const before = app.seen.length;
    assert.equal((await rawExchange(sidecar.inboundPort, REQUEST).catch(() => ({ status: 0 }))).status, 0, 'plaintext');
    for (const alpn of [['istio-http/1.1', 'http/1.1'], ['istio-peer-exchange', 'istio']]) {
      assert.equal((await asPeer(undefined, alpn)).status, 0, `no certificate, ${alpn.join(',')}`);
      assert.equal((await asPeer(stranger, alpn)).status, 0, `another root, ${alpn.join(',')}`);
      assert.equal((await asPeer(foreignDomain, alpn)).status, 0, `trust domain other.example, ${alpn.join(',')}`);
    }
    assert.equal(app.seen.length, before, 'the app saw none of them');
  });
});
