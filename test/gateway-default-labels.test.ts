// `meshgate gateway` without --labels carries Istio's ingress gateway labels (`app:
// istio-ingressgateway`, `istio: ingressgateway`), so the YAML of Istio's ingress tasks selects it
// unchanged: the httpbin sample's Gateway (`istio: ingressgateway`) and the ingress authorization
// task's policy (`app: istio-ingressgateway`, an ALLOW list by ipBlocks that leaves the test client
// out, hence 403).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exited, meshgate, ready, type MeshgateProcess } from './helpers/processes.js';
import { freshGet } from './helpers/ports.js';
import { eventually } from './helpers/gateway.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { serviceYaml } from './helpers/cluster-yaml.js';

// As published with Istio (samples/httpbin/httpbin-gateway.yaml), in namespace foo as the task applies it.
const HTTPBIN_GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: httpbin-gateway
  namespace: foo
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - "*"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
  namespace: foo
spec:
  hosts:
  - "*"
  gateways:
  - httpbin-gateway
  http:
  - route:
    - destination:
        host: httpbin
        port:
          number: 8000
`;

// Istio's "Ingress Gateway" authorization task, IP-based allow list.
const INGRESS_POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ingress-policy
  namespace: istio-system
spec:
  selector:
    matchLabels:
      app: istio-ingressgateway
  action: ALLOW
  rules:
  - from:
    - source:
        ipBlocks: ["1.2.3.4", "5.6.7.0/24"]
`;

describe('meshgate gateway without --labels is selected as Istio’s ingress gateway', () => {
  let app: Upstream;
  let dir: string;
  let child: MeshgateProcess;
  let http: number;

  before(async () => {
    app = await startUpstream('httpbin');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-default-labels-'));
    await writeFile(join(dir, 'httpbin-gateway.yaml'), HTTPBIN_GATEWAY);
    await writeFile(join(dir, 'httpbin.yaml'), serviceYaml('httpbin', [{ pod: 'httpbin-1', port: app.port }], { namespace: 'foo', port: 8000 }));
    child = meshgate(['gateway', '--config', dir, '--ports', '80=0', '--status-port', '0', '--admin-port', '0', '--metrics-port', '0', '--listen-host', '127.0.0.1', '--access-log', 'off', '--workers', '1']);
    const line = await child.serving();
    http = Number((line.ports as Record<string, number>)['80']);
    await eventually(() => ready(Number(line.statusPort)), 60_000).catch((err: Error) => assert.fail(`${err.message}\n${child.log()}`));
  });

  after(async () => {
    child?.kill('SIGKILL');
    await exited(child);
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the sample Gateway selects it, and the task’s policy applies to it', async () => {
    assert.equal((await freshGet(http, 'httpbin.example', '/headers')).status, 200);
    await writeFile(join(dir, 'ingress-policy.yaml'), INGRESS_POLICY);
    await eventually(async () => (await freshGet(http, 'httpbin.example', '/headers')).status === 403);
  });
});
