// Dry-run AuthorizationPolicies (`istio.io/dry-run: "true"`) on connections passed through as TCP:
// at a sidecar's inbound side (opaque plaintext and mesh mTLS carrying TCP) and at a gateway's TCP
// server. As Envoy's network RBAC filter runs shadow rules, the policy is evaluated on every
// connection and never enforced: the connection reaches the destination whatever it would have
// decided, and the shadow result is logged as for HTTP (`rbac shadow denied, matched policy
// ns[default]-policy[dry-deny]-rule[0]`, authz_dry_run_action, authz_dry_run_result). Enforced
// policies beside it still decide. Real sockets, a real CA.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { startGateway } from '../src/gateway/main.js';
import { PERMISSIVE_MESH_YAML, tcpGatewayYaml } from './helpers/cluster-yaml.js';
import { sidecarOptions, testAuthority, workloadCertificate } from './helpers/mesh.js';
import { ping, plain, startApp, tls } from './helpers/tcp-probe.js';

const DRY_RUN = 'annotations: {istio.io/dry-run: "true"}';

/** Policies for workload `app` in default: these (name, action, rules) as dry runs, plus enforced ones. */
function policy(name: string, app: string, action: 'ALLOW' | 'DENY', rules: string, dryRun = true): string {
  return `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: default${dryRun ? `, ${DRY_RUN}` : ''}}
spec:
  selector: {matchLabels: {app: ${app}}}
  action: ${action}
  rules:${rules}
`;
}

interface ShadowLine {
  readonly msg: string;
  readonly authz_dry_run_action?: string;
  readonly authz_dry_run_result?: string;
  readonly policy?: string;
  readonly principal?: string;
  readonly destinationPort?: number;
}

/** A logger at info that keeps its lines, and the shadow lines among them since `from`. */
function capturingLogger(): { logger: Logger; shadow: (from: number) => ShadowLine[]; count: () => number } {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done(); } }));
  const shadow = (from: number): ShadowLine[] => lines.slice(from).map((l) => JSON.parse(l) as ShadowLine).filter((l) => l.msg.startsWith('rbac shadow'));
  return { logger, shadow, count: () => lines.length };
}

describe('dry-run AuthorizationPolicy on TCP at a sidecar inbound side', () => {
  let ca: CertificateAuthority;
  let dir: string;
  let app: Awaited<ReturnType<typeof startApp>>;
  const sidecars = new Map<string, RunningSidecar>();
  const { logger, shadow, count } = capturingLogger();
  const MESH_TCP = ['istio-peer-exchange', 'istio'];

  before(async () => {
    ca = await testAuthority();
    app = await startApp();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-tcp-dry-run-'));
    await writeFile(
      join(dir, 'security.yaml'),
      PERMISSIVE_MESH_YAML +
        policy('dry-deny', 'dry', 'DENY', `\n  - from: [{source: {principals: [cluster.local/ns/default/sa/product-service]}}]\n  - to: [{operation: {methods: [GET]}}]`) +
        policy('dry-allow', 'dry', 'ALLOW', `\n  - from: [{source: {namespaces: [team-b]}}]`) +
        // An enforced DENY of loopback beside a dry-run ALLOW: the enforced one still closes.
        policy('deny-loopback', 'enforced', 'DENY', `\n  - from: [{source: {ipBlocks: [127.0.0.1/32]}}]`, false) +
        policy('dry-allow-loopback', 'enforced', 'ALLOW', `\n  - from: [{source: {ipBlocks: [127.0.0.1/32]}}]`),
    );
    for (const name of ['dry', 'enforced']) sidecars.set(name, await startSidecar({ ...sidecarOptions(ca, dir, name, app.port), logger }));
  });

  after(async () => {
    await Promise.all([...sidecars.values()].map((s) => s.destroy()));
    app?.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a connection the dry-run DENY matches still reaches the app; the shadow denial is logged with its rule', async () => {
    const from = count();
    const product = workloadCertificate(ca, 'default', 'product-service');
    assert.equal(await ping(await tls(sidecars.get('dry')!.inboundPort, ca.rootCertPem, MESH_TCP, product)), 'ping');
    const lines = shadow(from);
    assert.deepEqual(lines.map((l) => [l.authz_dry_run_action, l.authz_dry_run_result, l.policy ?? null]), [
      ['deny', 'denied', 'ns[default]-policy[dry-deny]-rule[0]'],
      ['allow', 'denied', null],
    ]);
    assert.equal(lines[0]!.msg, 'rbac shadow denied, matched policy ns[default]-policy[dry-deny]-rule[0]');
    assert.equal(lines[1]!.msg, 'rbac shadow denied, no dry-run ALLOW policy matched');
    assert.equal(lines[0]!.principal, 'spiffe://cluster.local/ns/default/sa/product-service');
    assert.equal(lines[0]!.destinationPort, app.port);
  });

  it('the TCP variant of the rules decides the shadow result: an HTTP-only DENY rule matches every connection, an ALLOW by namespace matches team-b', async () => {
    const from = count();
    assert.equal(await ping(await tls(sidecars.get('dry')!.inboundPort, ca.rootCertPem, MESH_TCP, workloadCertificate(ca, 'team-b', 'anyone'))), 'ping');
    assert.equal(await ping(await plain(sidecars.get('dry')!.inboundPort)), 'ping');
    assert.deepEqual(shadow(from).map((l) => [l.authz_dry_run_action, l.authz_dry_run_result, l.policy ?? null]), [
      // `methods: [GET]` is dropped from the DENY rule on TCP, so its rule[1] matches (as Istio builds it).
      ['deny', 'denied', 'ns[default]-policy[dry-deny]-rule[1]'],
      ['allow', 'allowed', 'ns[default]-policy[dry-allow]-rule[0]'],
      ['deny', 'denied', 'ns[default]-policy[dry-deny]-rule[1]'],
      ['allow', 'denied', null],
    ]);
  });

  it('enforced policies still decide beside a dry run, which is logged all the same', async () => {
    const from = count();
    const before = app.received();
    assert.equal(await ping(await plain(sidecars.get('enforced')!.inboundPort)), null);
    assert.equal(app.received(), before);
    assert.deepEqual(shadow(from).map((l) => [l.authz_dry_run_action, l.authz_dry_run_result]), [['allow', 'allowed']]);
  });
});

describe('dry-run AuthorizationPolicy on a gateway TCP server', () => {
  it('a dry-run DENY matching the connection lets it through and logs the shadow denial', async () => {
    const echo = createNetServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-gw-tcp-dry-run-'));
    const { logger, shadow } = capturingLogger();
    await writeFile(join(dir, 'all.yaml'), `${tcpGatewayYaml((echo.address() as AddressInfo).port)}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: dry-deny, namespace: istio-system, ${DRY_RUN}}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules:
  - from: [{source: {ipBlocks: [127.0.0.1/32]}}]
`);
    const gw = await startGateway({ configDir: dir, certsDir: join(dir, 'certs'), ports: new Map([[5432, 0]]), listenHost: '127.0.0.1', statusPort: 0, adminPort: 0, accessLog: 'off', logger });
    try {
      assert.equal(await ping(await plain(gw.listenPorts.get(5432)!)), 'ping');
      const lines = shadow(0);
      assert.deepEqual(lines.map((l) => l.msg), ['rbac shadow denied, matched policy ns[istio-system]-policy[dry-deny]-rule[0]']);
      assert.equal(lines[0]!.destinationPort, gw.listenPorts.get(5432), 'the port the gateway listens on, as its policies see it');
    } finally {
      await gw.destroy();
      echo.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
