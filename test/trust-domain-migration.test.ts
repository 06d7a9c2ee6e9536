// Integration: Istio's "Trust Domain Migration" task (docs/tasks/trust-domain-migration.md), on a real
// control plane (its CA issuing certificates in the mesh config's trust domain), a real httpbin
// sidecar that joins the mesh through it, and sleep callers whose certificates the same CA issues
// over its API. The policy is written once, for old-td; the mesh then moves to new-td without an
// alias (sleep-allow is denied), then with old-td as an alias (allowed again, and a peer still
// holding an old-td certificate gets in). A certificate of an unrelated trust domain, signed by the
// very same root, is refused at every step.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadOrCreateAuthority, type CertificateAuthority } from '../src/core/pki/authority.js';
import { IdentityClient } from '../src/core/pki/identity-client.js';
import { spiffeIdsOfCertificate } from '../src/core/pki/spiffe.js';
import type { WorkloadCertificate } from '../src/core/pki/types.js';
import { ControlPlaneClient } from '../src/core/sources/control-plane-client.js';
import { connectToMesh, type MeshConnection } from '../src/core/sources/mesh-connection.js';
import { meshTrustDomains } from '../src/core/pki/trust-domain.js';
import { startControlPlane, type RunningControlPlane } from '../src/control/main.js';
import { ServedTrustDomain } from '../src/control/served-trust-domain.js';
import { FileTokenAuthenticator } from '../src/control/token-authenticator.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { untilSnapshot, workloadCertificate } from './helpers/mesh.js';
import { meshConfigMap } from './helpers/ext-authz.js';
import { rawExchange } from './helpers/raw-http.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const silent = pino({ level: 'silent' });
const TOKENS = {
  httpbin: { token: 'httpbin-token-0123456789', namespace: 'default', serviceAccount: 'httpbin' },
  sleep: { token: 'sleep-token-0123456789', namespace: 'default', serviceAccount: 'sleep' },
  sleepAllow: { token: 'sleep-allow-token-0123456789', namespace: 'sleep-allow', serviceAccount: 'sleep' },
};

const POLICY = `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: service-httpbin.default.svc.cluster.local, namespace: default}
spec:
  rules:
  - from:
    - source:
        principals:
        - old-td/ns/sleep-allow/sa/sleep
    to:
    - operation:
        methods:
        - GET
  selector:
    matchLabels:
      app: httpbin
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`;

/** The mesh config holding these lines. */
const meshConfig = (mesh: string): string => meshConfigMap(mesh.split('\n').map((l) => `    ${l}`).join('\n'));

describe('trust domain migration (Istio task, unchanged)', () => {
  let dir: string;
  let caDir: string;
  let cp: RunningControlPlane;
  let ca: CertificateAuthority;
  let app: Upstream;
  let httpbin: { mesh: MeshConnection; sidecar: RunningSidecar } | undefined;
  const clients: ControlPlaneClient[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-td-'));
    caDir = join(dir, 'ca');
    await mkdir(join(dir, 'config'));
    await writeFile(join(dir, 'config', 'policy.yaml'), POLICY);
    await writeFile(join(dir, 'config', 'mesh.yaml'), meshConfig('trustDomain: old-td'));
    await writeFile(join(dir, 'tokens.yaml'), Object.values(TOKENS).map((t) => `- {token: ${t.token}, namespace: ${t.namespace}, serviceAccount: ${t.serviceAccount}}`).join('\n') + '\n');
    for (const [name, t] of Object.entries(TOKENS)) await writeFile(join(dir, `${name}.token`), t.token);
    // As `meshgate control` wires it: no --trust-domain, so the mesh config's trustDomain decides.
    const served = new ServedTrustDomain(undefined, silent);
    const authority = loadOrCreateAuthority(caDir, { trustDomain: () => served.current() });
    assert.ok(authority.ok, authority.ok ? '' : authority.message);
    ca = authority.ca;
    await writeFile(join(dir, 'root-cert.pem'), ca.rootCertPem);
    const tokens = await FileTokenAuthenticator.load(join(dir, 'tokens.yaml'));
    assert.ok(tokens.ok);
    cp = await startControlPlane({ configDir: join(dir, 'config'), ca, trustDomain: served, authenticator: tokens.authenticator, port: 0, statusPort: 0, debugPort: 0, listenHost: '127.0.0.1', debounceMs: 10, logger: silent });
    app = await startUpstream('httpbin');
  });

  after(async () => {
    await stopHttpbin();
    for (const c of clients) c.close();
    await cp?.destroy();
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** httpbin's pod: a sidecar that gets its certificate and configuration from the control plane. */
  async function startHttpbin(): Promise<RunningSidecar> {
    const mesh = await connectToMesh({ url: `https://127.0.0.1:${cp.port}`, tokenFile: join(dir, 'httpbin.token'), rootCertFile: join(dir, 'root-cert.pem'), proxyId: 'httpbin-1', description: { role: 'sidecar', labels: { app: 'httpbin' } }, logger: silent });
    const sidecar = await startSidecar({
      identity: mesh.identity, source: mesh.source, namespace: 'default', serviceAccount: 'httpbin', labels: { app: 'httpbin' },
      appPort: app.port, inboundPort: 0, outboundPort: 0, statusPort: 0, adminPort: 0, listenHost: '127.0.0.1', accessLog: 'off', logger: silent,
    });
    httpbin = { mesh, sidecar };
    return sidecar;
  }

  async function stopHttpbin(): Promise<void> {
    await httpbin?.sidecar.destroy();
    httpbin?.mesh.close();
    httpbin = undefined;
  }

  /** A sleep pod's workload certificate, as the control plane's CA issues it to that pod's token. */
  async function certificateOf(who: keyof typeof TOKENS): Promise<WorkloadCertificate> {
    const client = new ControlPlaneClient({ url: `https://127.0.0.1:${cp.port}`, rootCertPem: ca.rootCertPem, token: TOKENS[who].token });
    clients.push(client);
    const identity = new IdentityClient({ requestCertificate: client.requestCertificate, rootCertPem: ca.rootCertPem, keyType: 'ec' });
    await identity.start();
    const cert = identity.current();
    identity.close();
    return cert;
  }

  /** `curl http://httpbin.default:8000/ip` from a pod holding `cert`: its sidecar's mTLS to httpbin's. 0 = connection closed. */
  async function curl(sidecar: RunningSidecar, cert: WorkloadCertificate): Promise<number> {
    const answer = await rawExchange(sidecar.inboundPort, 'GET /ip HTTP/1.1\r\nhost: httpbin.default:8000\r\nconnection: close\r\n\r\n', {
      tls: { ca: ca.rootCertPem, servername: 'httpbin.default', alpn: ['istio-http/1.1', 'http/1.1'], cert: cert.certChainPem, key: cert.keyPem },
    }).catch(() => ({ status: 0 }));
    return answer.status;
  }

  /** Rewrites the mesh config and waits until httpbin's sidecar (hence the control plane) serves it. */
  async function meshMovesTo(mesh: string, sidecar: RunningSidecar, aliases: readonly string[]): Promise<void> {
    await writeFile(join(dir, 'config', 'mesh.yaml'), meshConfig(mesh));
    await untilSnapshot(sidecar.holder, (s) => meshTrustDomains(s.resources).aliases.join(',') === aliases.join(',') && meshTrustDomains(s.resources).trustDomain === /trustDomain: (\S+)/.exec(mesh)?.[1]);
  }

  const trustDomainOf = (cert: WorkloadCertificate): string => new URL(spiffeIdsOfCertificate(new X509Certificate(cert.certChainPem))[0]!).host;
  /** The same root signing for a trust domain that is neither the mesh's nor an alias. */
  const unrelated = (): WorkloadCertificate => {
    const r = loadOrCreateAuthority(caDir, { trustDomain: 'unrelated-td' });
    assert.ok(r.ok);
    return workloadCertificate(r.ca, 'sleep-allow', 'sleep');
  };

  let oldSleepAllow: WorkloadCertificate;

  it('with the mesh in old-td, the policy for old-td lets sleep-allow in and keeps default/sleep out', async () => {
    const sidecar = await startHttpbin();
    oldSleepAllow = await certificateOf('sleepAllow');
    assert.equal(trustDomainOf(oldSleepAllow), 'old-td', 'the CA issues in the mesh config\'s trust domain');
    assert.equal(trustDomainOf(httpbin!.mesh.identity.current()), 'old-td');
    assert.equal(await curl(sidecar, await certificateOf('sleep')), 403);
    assert.equal(await curl(sidecar, oldSleepAllow), 200);
    assert.equal(await curl(sidecar, unrelated()), 0, 'a peer of another trust domain is refused');
  });

  it('moved to new-td without an alias, and the pods restarted: both callers are denied', async () => {
    await meshMovesTo('trustDomain: new-td', httpbin!.sidecar, []);
    // kubectl delete pod --all: every workload comes back with a certificate of the new domain.
    await stopHttpbin();
    const sidecar = await startHttpbin();
    assert.equal(trustDomainOf(httpbin!.mesh.identity.current()), 'new-td');
    const sleepAllow = await certificateOf('sleepAllow');
    assert.equal(trustDomainOf(sleepAllow), 'new-td');
    assert.equal(await curl(sidecar, await certificateOf('sleep')), 403);
    assert.equal(await curl(sidecar, sleepAllow), 403, 'new-td/ns/sleep-allow/sa/sleep is not old-td/ns/sleep-allow/sa/sleep');
    assert.equal(await curl(sidecar, oldSleepAllow), 0, 'an old-td peer is not of this trust domain any more');
    assert.equal(await curl(sidecar, unrelated()), 0);
  });

  it('with old-td as an alias, the unchanged policy lets sleep-allow in again; other domains stay out', async () => {
    const sidecar = httpbin!.sidecar;
    await meshMovesTo('trustDomain: new-td\ntrustDomainAliases: [old-td]', sidecar, ['old-td']);
    assert.equal(await curl(sidecar, await certificateOf('sleep')), 403);
    assert.equal(await curl(sidecar, await certificateOf('sleepAllow')), 200);
    assert.equal(await curl(sidecar, oldSleepAllow), 200, 'a peer still holding its old-td certificate is the same workload');
    assert.equal(await curl(sidecar, unrelated()), 0, 'fail closed: a trust domain that is neither the mesh\'s nor an alias');
  });
});
