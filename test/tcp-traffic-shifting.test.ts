// Istio's "TCP Traffic Shifting" task, the tcp-echo sample's YAML unchanged
// (test/fixtures/istio-tasks/tcp-traffic-shifting/): tcp-echo v1 (answers `one <line>`) and v2
// (`two <line>`), each beside a sidecar, behind the ingress gateway's TCP server on 31400. The task's
// loop (`date | nc $INGRESS_HOST $TCP_INGRESS_PORT`, one connection each) prints only `one ...`
// under tcp-echo-all-v1, and about one line in five `two ...` under tcp-echo-20-v2. The gateway's
// random source is seeded, so the split is the same on every run.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startGateway, type RunningGateway } from '../src/gateway/main.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { fixedIdentity, sidecarOptions, testAuthority } from './helpers/mesh.js';
import { seededRandom } from './helpers/random.js';
import { repoPath } from './helpers/route-table.js';
import { kubectlApply, untilServed } from './helpers/task-mesh.js';

const task = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/tcp-traffic-shifting/${file}`), 'utf8');
const CONNECTIONS = 50;

/** tcp-echo-server: answers each chunk with `<prefix> <chunk>`. */
function tcpEcho(prefix: string): Promise<Server> {
  const server = createServer((s) => {
    s.on('error', () => s.destroy());
    s.on('data', (d) => s.write(`${prefix} ${d.toString()}`));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('TCP Traffic Shifting', () => {
  let dir: string;
  let apps: Server[];
  let sidecars: RunningSidecar[];
  let gateway: RunningGateway;
  const apply = async (yaml: string): Promise<void> => {
    await kubectlApply(dir, yaml);
    await Promise.all([gateway, ...sidecars].map((p) => untilServed(p.holder, yaml)));
  };
  /** `date | nc $INGRESS_HOST $TCP_INGRESS_PORT`: one connection, the first line back. */
  const nc = (line: string): Promise<string> =>
    new Promise((resolve) => {
      const s = netConnect(gateway.listenPorts.get(31400)!, '127.0.0.1', () => s.write(`${line}\n`));
      let text = '';
      s.on('data', (d) => {
        text += d.toString();
        if (text.endsWith('\n')) s.end();
      });
      s.on('error', () => undefined);
      s.on('close', () => resolve(text.trim()));
    });
  const loop = async (): Promise<Map<string, number>> => {
    const seen = new Map<string, number>();
    for (let i = 0; i < CONNECTIONS; i++) {
      const answer = await nc(`connection ${i}`);
      assert.match(answer, new RegExp(`^(one|two) connection ${i}$`));
      const who = answer.split(' ')[0]!;
      seen.set(who, (seen.get(who) ?? 0) + 1);
    }
    return seen;
  };

  before(async () => {
    const ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-tcp-shift-'));
    apps = [await tcpEcho('one'), await tcpEcho('two')];
    sidecars = [];
    const tls = { 'security.istio.io/tlsMode': 'istio' };
    const endpoints = [];
    for (const [i, version] of ['v1', 'v2'].entries()) {
      const port = (apps[i]!.address() as AddressInfo).port;
      const sidecar = await startSidecar({ ...sidecarOptions(ca, dir, 'tcp-echo', port), labels: { app: 'tcp-echo', version } });
      sidecars.push(sidecar);
      endpoints.push({ pod: `tcp-echo-${version}`, port: sidecar.inboundPort, serviceAccount: 'tcp-echo', labels: { version, ...tls } });
    }
    await writeFile(join(dir, 'tcp-echo-services.yaml'), serviceYaml('tcp-echo', endpoints, { port: 9000, portName: 'tcp' }));
    gateway = await startGateway({
      configDir: dir,
      ports: new Map([[31400, 0]]),
      identity: fixedIdentity(ca, 'istio-system', 'istio-ingressgateway-service-account'),
      listenHost: '127.0.0.1',
      statusPort: 0,
      adminPort: 0,
      accessLog: 'off',
      logger: pino({ level: 'silent' }),
      random: seededRandom(7),
    });
  });
  after(async () => {
    await gateway?.destroy();
    await Promise.all((sidecars ?? []).map((s) => s.destroy()));
    for (const app of apps ?? []) app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('tcp-echo-all-v1: every connection is answered by v1 (`one ...`)', async () => {
    await apply(await task('tcp-echo-all-v1.yaml'));
    assert.deepEqual([...(await loop())], [['one', CONNECTIONS]]);
  });

  it('tcp-echo-20-v2: about one connection in five is answered by v2 (`two ...`)', async () => {
    await apply(await task('tcp-echo-20-v2.yaml'));
    const seen = await loop();
    const two = seen.get('two') ?? 0;
    assert.ok(two >= 4 && two <= 18, JSON.stringify([...seen]));
    assert.equal((seen.get('one') ?? 0) + two, CONNECTIONS);
  });
});
