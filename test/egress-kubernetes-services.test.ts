// Istio's "Kubernetes Services for Egress Traffic" task: an ExternalName Service names the external
// host, and the app calls the Service's cluster name through its sidecar, which sends the request to
// the external name (DNS) on the Service's port. The task's YAML with two stand-ins: `localhost` for
// httpbin.org, and the loopback server's port for 80. docs/tasks/egress-gateway.md.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { accessLogLine } from './helpers/gateway.js';
import { sidecarOptions, testAuthority, viaProxy } from './helpers/mesh.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const task = (port: number): string => `kind: Service
apiVersion: v1
metadata:
  name: my-httpbin
spec:
  type: ExternalName
  externalName: localhost
  ports:
  - name: http
    protocol: TCP
    port: ${port}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: my-httpbin
spec:
  host: my-httpbin.default.svc.cluster.local
  trafficPolicy:
    tls:
      mode: DISABLE
`;

describe('Kubernetes Services for egress traffic: an ExternalName Service', () => {
  let httpbin: Upstream;
  let sidecar: RunningSidecar;
  let dir: string;

  before(async () => {
    httpbin = await startUpstream('httpbin.org');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-externalname-'));
    await writeFile(join(dir, 'task.yaml'), task(httpbin.port));
    sidecar = await startSidecar({ ...sidecarOptions(await testAuthority(), dir, 'sleep', 1), accessLog: join(dir, 'access.log') });
  });
  after(async () => {
    await sidecar?.destroy();
    await httpbin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("reaches the external name through the Service's name, plaintext as the rule says, logged under the Service", async () => {
    const r = await viaProxy(sidecar.outboundPort, `http://my-httpbin.default.svc.cluster.local:${httpbin.port}/headers`, { 'x-request-id': 'external-name-1' });
    assert.equal(r.status, 200, r.text);
    assert.equal(httpbin.seen.at(-1)!.url, '/headers');
    assert.equal(httpbin.seen.at(-1)!.headers.host, `my-httpbin.default.svc.cluster.local:${httpbin.port}`);
    const line = await accessLogLine(join(dir, 'access.log'), 'external-name-1');
    assert.equal(line.upstream_cluster, `outbound|${httpbin.port}||my-httpbin.default.svc.cluster.local`);
  });
});
