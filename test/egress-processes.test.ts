// Istio's TLS origination tasks unchanged, with meshgate as separate processes started by the CLI: a
// control plane, the sleep pod's sidecar and an egress gateway that joined the mesh. A SIMPLE rule
// trusts the public roots; here the stand-in for edition.cnn.com is signed by a CA the two proxies
// are given as the operator would give it (NODE_EXTRA_CA_CERTS), so the tasks' YAML needs no
// caCertificates. docs/tasks/egress-gateway.md.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { completeJsonLines, eventually } from './helpers/gateway.js';
import { viaProxy } from './helpers/mesh.js';
import { newRoot, startTlsUpstream, type TlsSeen, type TlsUpstream } from './helpers/mesh-tls.js';
import { allReady, exited, meshgate, type MeshgateProcess } from './helpers/processes.js';
import { egressGatewayServiceYaml, taskYaml } from './helpers/egress-gateway.js';

describe('TLS origination tasks with the sidecar and the egress gateway as processes', () => {
  let dir: string, config: string;
  let cnn: TlsUpstream;
  let control: MeshgateProcess | undefined, sidecar: MeshgateProcess | undefined, gateway: MeshgateProcess | undefined;
  let outbound = 0;
  const logs = { sidecar: '', gateway: '' };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-egress-processes-'));
    config = join(dir, 'config');
    await mkdir(config);
    const publicRoot = newRoot('public web root');
    await writeFile(join(dir, 'public-roots.pem'), publicRoot.certPem);
    cnn = await startTlsUpstream('edition.cnn.com', { cert: issueCertificate({ subjectCN: 'edition.cnn.com', dnsNames: ['edition.cnn.com'], issuer: publicRoot, days: 1, keyType: 'ec' }) });
    await writeFile(join(dir, 'tokens.yaml'), '- {token: tok-sleep, namespace: default, serviceAccount: sleep}\n- {token: tok-egress, namespace: istio-system, serviceAccount: istio-egressgateway-service-account}\n');
    await writeFile(join(dir, 'sleep.token'), 'tok-sleep\n');
    await writeFile(join(dir, 'egress.token'), 'tok-egress\n');
    const ca = join(dir, 'ca');
    control = meshgate(['control', '--config', config, '--tokens', join(dir, 'tokens.yaml'), '--ca-dir', ca, '--port', '0', '--status-port', '0', '--debug-port', '0', '--listen-host', '127.0.0.1']);
    const cp = await control.serving();
    const mesh = ['--control', `https://127.0.0.1:${Number(cp.port)}`, '--root-cert', join(ca, 'root-cert.pem')];
    const env = { NODE_EXTRA_CA_CERTS: join(dir, 'public-roots.pem') };
    const common = ['--status-port', '0', '--admin-port', '0', '--listen-host', '127.0.0.1', '--metrics-port', '0'];
    logs.sidecar = join(dir, 'sidecar.log');
    logs.gateway = join(dir, 'egressgateway.log');
    sidecar = meshgate(
      ['sidecar', ...mesh, '--token', join(dir, 'sleep.token'), '--namespace', 'default', '--service-account', 'sleep', '--workload', 'sleep-0', '--labels', 'app=sleep',
        '--app-port', '1', '--inbound-port', '0', '--outbound-port', '0', '--access-log', logs.sidecar, ...common],
      env,
    );
    gateway = meshgate(
      ['gateway', ...mesh, '--token', join(dir, 'egress.token'), '--labels', 'istio=egressgateway,app=istio-egressgateway', '--namespace', 'istio-system',
        '--ports', '80=0,443=0', '--access-log', logs.gateway, ...common],
      env,
    );
    const [sc, gw] = await Promise.all([sidecar.serving(), gateway.serving()]);
    outbound = Number(sc.outbound);
    const gwPorts = gw.ports as Record<string, number>;
    await writeFile(join(config, 'egressgateway.yaml'), egressGatewayServiceYaml(Number(gwPorts['80']), Number(gwPorts['443'])));
    await allReady({ control: { proc: control, statusPort: Number(cp.statusPort) }, sidecar: { proc: sidecar, statusPort: Number(sc.status) }, gateway: { proc: gateway, statusPort: Number(gw.statusPort) } }, 30_000);
  });

  after(async () => {
    for (const c of [gateway, sidecar, control]) c?.kill('SIGKILL');
    await Promise.all([exited(gateway), exited(sidecar), exited(control)]);
    await cnn?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Applies a task's YAML and waits until `curl http://edition.cnn.com/politics` reaches the stand-in by `via`. */
  async function apply(fixture: string, ports: Record<string, number>, via: (log: Array<Record<string, unknown>>) => boolean): Promise<TlsSeen> {
    await writeFile(join(config, 'task.yaml'), await taskYaml(fixture, { entries: { 'edition.cnn.com': ports } }));
    let seen: TlsSeen | undefined;
    await eventually(async () => {
      const r = await viaProxy(outbound, 'http://edition.cnn.com/politics').catch(() => undefined);
      if (r?.status !== 200) return false;
      seen = JSON.parse(r.text) as TlsSeen;
      return via(completeJsonLines(await readFile(logs.gateway, 'utf8').catch(() => '')));
    }, 30_000);
    return seen!;
  }

  it('Egress TLS Origination: the sidecar opens TLS to port 443, verified against the roots it was given', async () => {
    const seen = await apply('tls-origination.yaml', { 'http-port': cnn.port, 'https-port': cnn.port }, () => true);
    assert.equal(seen.sni, 'edition.cnn.com');
    assert.equal(seen.path, '/politics');
  });

  it('Egress Gateways with TLS Origination: the egress gateway opens it, after mTLS from the sidecar', async () => {
    const seen = await apply('gateway-tls-origination.yaml', { 'https-port-for-tls-origination': cnn.port }, (log) =>
      log.some((l) => l.upstream_cluster === 'outbound|443||edition.cnn.com' && l.path === '/politics' && l.response_code === 200),
    );
    assert.equal(seen.sni, 'edition.cnn.com');
    assert.deepEqual(seen.peerUris, []);
  });
});
