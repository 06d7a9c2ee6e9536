// The mesh as separate processes on loopback, started with the CLI as an operator would: a control
// plane, a sidecar in front of an app, and a gateway joined to the mesh. Under a steady stream of
// requests the control plane is killed and brought back, and the sidecar's certificate (20 s) rotates
// at half its life, every 10 s, a few times during the run and never more often: no request fails,
// and a change made after the control plane returns reaches every proxy.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { eventually, send } from './helpers/gateway.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { freshGet } from './helpers/ports.js';
import { allReady, exited, meshgate, type MeshgateProcess } from './helpers/processes.js';

const ROUTE = (extra = '') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [app.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: user-service}}]${extra}
`;

describe('the mesh as processes: control plane outage and certificate rotation under load', () => {
  let dir: string;
  let app: Upstream;
  let control: MeshgateProcess | undefined, sidecar: MeshgateProcess | undefined, gateway: MeshgateProcess | undefined;
  let sidecarStarted = 0;
  const ports = { control: 0, controlStatus: 0, inbound: 0, sidecarStatus: 0, gateway: 0, gatewayStatus: 0 };
  let controlArgs: string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-processes-'));
    app = await startUpstream('user-app');
    const config = join(dir, 'config');
    await mkdir(config);
    await writeFile(join(config, 'gw.yaml'), gatewayYaml(['app.example.com']));
    await writeFile(join(config, 'vs.yaml'), ROUTE());
    await writeFile(join(config, 'pa.yaml'), 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n');
    await writeFile(join(dir, 'tokens.yaml'), '- {token: tok-user, namespace: default, serviceAccount: user-service}\n- {token: tok-gw, namespace: istio-system, serviceAccount: istio-ingressgateway-service-account}\n');
    await writeFile(join(dir, 'user.token'), 'tok-user\n');
    await writeFile(join(dir, 'gw.token'), 'tok-gw\n');
    const ca = join(dir, 'ca');
    // Every process binds port 0 and says in its `… serving` line which ports it got.
    const controlFlags = (port: number) => ['control', '--config', config, '--tokens', join(dir, 'tokens.yaml'), '--ca-dir', ca, '--port', String(port), '--status-port', '0', '--debug-port', '0', '--listen-host', '127.0.0.1'];
    control = meshgate(controlFlags(0));
    const cp = await control.serving();
    ports.control = Number(cp.port);
    ports.controlStatus = Number(cp.statusPort);
    // A restarted control plane comes back on the address the proxies know.
    controlArgs = controlFlags(ports.control);
    await allReady({ control: { proc: control, statusPort: ports.controlStatus } }, 20_000);
    assert.ok(existsSync(join(ca, 'root-cert.pem')));
    const mesh = ['--control', `https://127.0.0.1:${ports.control}`, '--root-cert', join(ca, 'root-cert.pem')];
    sidecarStarted = Date.now();
    sidecar = meshgate([
      'sidecar', ...mesh, '--token', join(dir, 'user.token'),
      '--namespace', 'default', '--service-account', 'user-service', '--workload', 'user-0', '--labels', 'app=user-service',
      '--app-port', String(app.port), '--inbound-port', '0', '--outbound-port', '0',
      '--status-port', '0', '--admin-port', '0', '--listen-host', '127.0.0.1', '--access-log', 'off', '--metrics-port', '0',
      // Short-lived certificates: renewed every 10 s, again and again while the test runs.
      '--cert-ttl', '20',
    ]);
    gateway = meshgate([
      'gateway', ...mesh, '--token', join(dir, 'gw.token'),
      '--ports', '80=0', '--status-port', '0', '--admin-port', '0', '--listen-host', '127.0.0.1', '--access-log', 'off', '--metrics-port', '0',
      // Two workers, each its own proxy of the control plane with its own identity and snapshot.
      '--workers', '2',
    ]);
    const [sc, gw] = await Promise.all([sidecar.serving(), gateway.serving()]);
    ports.inbound = Number(sc.inbound);
    ports.sidecarStatus = Number(sc.status);
    ports.gateway = Number((gw.ports as Record<string, number>)['80']);
    ports.gatewayStatus = Number(gw.statusPort);
    // The service's endpoint is the sidecar's inbound port, known now.
    await writeFile(join(config, 'svc.yaml'), serviceYaml('user-service', [{ pod: 'user-0', port: ports.inbound, serviceAccount: 'user-service', labels: { 'security.istio.io/tlsMode': 'istio' } }]));
    await allReady({ sidecar: { proc: sidecar, statusPort: ports.sidecarStatus }, gateway: { proc: gateway, statusPort: ports.gatewayStatus } }, 20_000);
    // Both gateway workers route to it once the control plane has pushed the service.
    await eventually(async () => {
      for (let i = 0; i < 4; i++) if ((await freshGet(ports.gateway, 'app.example.com', '/ready')).status !== 200) return false;
      return true;
    }, 20_000);
  });

  after(async () => {
    // SIGTERM first: the gateway's primary passes it on to its workers.
    gateway?.kill('SIGTERM');
    await exited(gateway);
    for (const c of [gateway, sidecar, control]) c?.kill('SIGKILL');
    await Promise.all([exited(gateway), exited(sidecar), exited(control)]);
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Requests, 8 at a time, until `during` settles; returns how many were sent and which failed. */
  async function underLoad(during: () => Promise<void>): Promise<{ total: number; failures: string[] }> {
    let stop = false;
    let total = 0;
    const failures: string[] = [];
    const load = (async () => {
      while (!stop) {
        const rs = await Promise.all(Array.from({ length: 8 }, () => send(ports.gateway, 'app.example.com', '/load').catch((e: Error) => ({ status: 0, text: e.message }))));
        for (const r of rs) {
          total++;
          if (r.status !== 200) failures.push(`${r.status} ${r.text.slice(0, 120)}`);
        }
      }
    })();
    try {
      await during();
    } finally {
      stop = true;
      await load;
    }
    return { total, failures };
  }

  it('a sidecar whose --namespace/--service-account are not its token\'s identity refuses to start', async () => {
    const wrong = meshgate([
      'sidecar', '--control', `https://127.0.0.1:${ports.control}`, '--root-cert', join(dir, 'ca', 'root-cert.pem'), '--token', join(dir, 'user.token'),
      '--namespace', 'default', '--service-account', 'product-service', '--workload', 'impostor-0', '--labels', 'app=product-service',
      '--app-port', String(app.port), '--inbound-port', '0', '--outbound-port', '0', '--status-port', '0', '--admin-port', '0', '--listen-host', '127.0.0.1',
    ]);
    const code = await new Promise<number | null>((resolve) => wrong.once('exit', resolve));
    assert.equal(code, 1, wrong.log());
    assert.match(wrong.log(), /disagree with the identity the control plane issued for the token: the workload certificate names spiffe:\/\/cluster\.local\/ns\/default\/sa\/user-service, not namespace default and service account product-service/);
  });

  it('serves through gateway → sidecar → app over mTLS, the app seeing the gateway identity', async () => {
    const r = await send(ports.gateway, 'app.example.com', '/hello');
    assert.equal(r.status, 200, gateway!.log());
    assert.match(String(r.json<{ headers: Record<string, string> }>().headers['x-forwarded-client-cert']), /URI=spiffe:\/\/cluster\.local\/ns\/istio-system\/sa\/istio-ingressgateway-service-account/);
  });

  it('keeps serving while the control plane is down, and a change after it returns reaches every proxy', async () => {
    const { total, failures } = await underLoad(async () => {
      control!.kill('SIGKILL');
      await exited(control);
      // Serve a good while with nobody to ask for configuration or certificates.
      await new Promise((r) => setTimeout(r, 1500));
      control = meshgate(controlArgs);
      ports.controlStatus = Number((await control.serving()).statusPort);
      await allReady({ control: { proc: control, statusPort: ports.controlStatus } }, 20_000);
    });
    assert.ok(total > 50, `only ${total} requests`);
    assert.deepEqual(failures, [], `${failures.length} of ${total} failed`);

    // One edit, seen by both proxies: the gateway's route adds a header, the sidecar's policy denies a path.
    await writeFile(join(dir, 'config', 'vs.yaml'), ROUTE('\n    headers: {response: {set: {x-config: after-outage}}}'));
    await writeFile(
      join(dir, 'config', 'deny.yaml'),
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-blocked, namespace: default}\nspec:\n  selector: {matchLabels: {app: user-service}}\n  action: DENY\n  rules: [{to: [{operation: {paths: [/blocked]}}]}]\n',
    );
    // Each new connection goes to either worker: ten fresh connections in a row answered with the
    // header means both workers run the new version.
    await eventually(async () => {
      for (let i = 0; i < 10; i++) if ((await freshGet(ports.gateway, 'app.example.com', '/x')).headers['x-config'] !== 'after-outage') return false;
      return true;
    }, 15_000);
    await eventually(async () => (await send(ports.gateway, 'app.example.com', '/blocked')).status === 403, 15_000);
  });

  it('rotates the sidecar certificate under load without failing a request', async () => {
    const fingerprint = () =>
      new Promise<string>((resolve, reject) => {
        // Any client may look at the server certificate; the handshake then fails for lack of ours.
        const s = tlsConnect({ host: '127.0.0.1', port: ports.inbound, rejectUnauthorized: false }, () => {
          resolve(createHash('sha256').update(s.getPeerCertificate().raw).digest('hex'));
          s.destroy();
        });
        s.on('error', reject);
      });
    // Two rotations seen from outside while requests flow, each one a new certificate served.
    const seen = [await fingerprint()];
    const { total, failures } = await underLoad(() =>
      eventually(async () => {
        const now = await fingerprint();
        if (now !== seen.at(-1)) seen.push(now);
        return seen.length >= 3;
      }, 40_000),
    );
    assert.ok(total > 20, `only ${total} requests`);
    assert.deepEqual(failures, [], `${failures.length} of ${total} failed`);
    // At half of 20 s (±1 % jitter), never faster: a certificate is not renewed before 9.8 s of its life.
    const rotations = sidecar!.count('workload certificate rotated');
    const bound = Math.floor((Date.now() - sidecarStarted) / 9800);
    assert.ok(rotations >= 2 && rotations <= bound, `${rotations} rotations in ${Date.now() - sidecarStarted} ms (at most ${bound})`);
  });
});
