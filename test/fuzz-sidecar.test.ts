// Property-based fuzz test of a sidecar's inbound side (helpers/fuzz-requests.ts has the requests and
// what is asserted), as at the gateway: plaintext HTTP/1 (PERMISSIVE), HTTP/1 and HTTP/2 over mesh
// mutual TLS, in front of an app protected by an AuthorizationPolicy that denies /admin*, /user/admin
// and /private*. Every request the app gets must carry the x-request-id the sidecar sets.

import { after, before, describe, it } from 'node:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_HTTP_LIMITS } from '../src/core/proxy/http-limits.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { sidecarOptions, testAuthority, workloadCertificate } from './helpers/mesh.js';
import { permissiveDenyPathsYaml } from './helpers/cluster-yaml.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { fuzzHttp1, fuzzHttp2, type FuzzTarget } from './helpers/fuzz-requests.js';

describe('fuzz: malformed HTTP/1 and HTTP/2 requests at a sidecar inbound side', () => {
  let app: Upstream;
  let dir: string;
  let sidecar: RunningSidecar;
  let fuzz: FuzzTarget;

  before(async () => {
    app = await startUpstream('app');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-fuzz-sidecar-'));
    await writeFile(join(dir, 'security.yaml'), permissiveDenyPathsYaml('fuzzed', ['/user/admin', '/admin*', '/private', '/private/*']));
    const ca = await testAuthority();
    sidecar = await startSidecar({ ...sidecarOptions(ca, dir, 'fuzzed', app.port), limits: { ...DEFAULT_HTTP_LIMITS, requestHeadersTimeoutMs: 2000, idleTimeoutMs: 2000 } });
    const client = workloadCertificate(ca, 'default', 'caller');
    const mtls = { ca: ca.rootCertPem, servername: 'fuzzed', cert: client.certChainPem, key: client.keyPem };
    fuzz = {
      app,
      plain: sidecar.inboundPort,
      tlsPort: sidecar.inboundPort,
      // PERMISSIVE terminates TLS that offers Istio's ALPN, as a mesh peer does.
      tls: { ...mtls, alpn: ['istio-http/1.1', 'http/1.1'] },
      h2: { ...mtls, alpn: ['istio-h2', 'h2'] },
      fromProxy: (e) => typeof e.headers['x-request-id'] === 'string' && e.headers['x-request-id'] !== '',
    };
  });

  after(async () => {
    await sidecar?.destroy();
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('HTTP/1 over plaintext and mutual TLS: no crash, nothing smuggled, no denied path at the app', () => fuzzHttp1(fuzz, 200));

  it('HTTP/2 over mutual TLS with odd headers and pseudo-headers: no crash, one app request per stream at most, no denied path at the app', () => fuzzHttp2(fuzz, 150));
});
