// Istio's "Authorization for TCP traffic" task under transparent capture, in network namespaces:
// tcp-echo listening on 9000, 9001 and 9002 (its Service declares only 9000 and 9001), sleep
// calling it as the task's `echo "port N" | nc tcp-echo N` does (9002 by the pod's IP, the
// passthrough case), each pod with `meshgate iptables` and a capturing sidecar, a control plane
// serving the config. The task's policies (test/fixtures/istio-tasks/authz-tcp/) are applied as
// written but in the namespace the lab's workloads run in (`default`; the task says "for example
// foo"). What the task prints: ALLOW ports 9000/9001 rejects 9002; an ALLOW rule with `methods`
// (HTTP-only) matches no connection, so 9000 and 9001 are rejected; a DENY with only `methods`
// rejects every connection; a DENY with `methods` and port 9000 rejects 9000 and lets 9001 through.
// Needs root (network namespaces, iptables): skipped with the reason otherwise.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { APP_UID, NetnsLab, netnsSkipReason, NODE } from './helpers/netns.js';
import { repoPath } from './helpers/route-table.js';

const IP = { cp: '10.77.0.2', sleep: '10.77.0.3', echo: '10.77.0.4' };
const TCP_ECHO_IP = '10.77.1.20';
const task = async (file: string): Promise<string> => (await readFile(repoPath(`test/fixtures/istio-tasks/authz-tcp/${file}`), 'utf8')).replace('namespace: foo', 'namespace: default');

/** The tcp-echo sample's Service (9000 `tcp`, 9001 `tcp-other`; 9002 left out on purpose), its pod and endpoints. */
const TCP_ECHO = `apiVersion: v1
kind: Service
metadata: {name: tcp-echo, namespace: default, labels: {app: tcp-echo, service: tcp-echo}}
spec:
  clusterIP: ${TCP_ECHO_IP}
  ports: [{name: tcp, port: 9000}, {name: tcp-other, port: 9001}]
  selector: {app: tcp-echo}
---
apiVersion: v1
kind: Pod
metadata: {name: tcp-echo-0, namespace: default, labels: {app: tcp-echo, version: v1, security.istio.io/tlsMode: istio}}
spec: {serviceAccountName: tcp-echo}
status: {podIP: ${IP.echo}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: tcp-echo-0, namespace: default, labels: {kubernetes.io/service-name: tcp-echo}}
addressType: IPv4
ports: [{name: tcp, port: 9000}, {name: tcp-other, port: 9001}]
endpoints:
- addresses: [${IP.echo}]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: tcp-echo-0, namespace: default}
`;

const reason = netnsSkipReason();

describe('Authorization for TCP traffic (tcp-echo, capture)', { skip: reason ?? false }, () => {
  let lab: NetnsLab<keyof typeof IP>;
  const policy = (): string => join(lab.dir, 'config', 'tcp-policy.yaml');

  /** The task's check: `echo "port N" | nc <host> N | grep hello && echo 'connection succeeded' || echo 'connection rejected'`. */
  async function nc(port: number): Promise<string> {
    const host = port === 9002 ? IP.echo : TCP_ECHO_IP;
    const call = `const s = require('node:net').connect(${port}, '${host}', () => s.write('port ${port}\\n')); let b = ''; s.on('data', (d) => { b += d; if (b.endsWith('\\n')) s.end(); }); s.on('error', () => {}); s.on('close', () => console.log(b.includes('hello') ? b.trim() : 'connection rejected'));`;
    return (await lab.run('sleep', [NODE, '-e', call], APP_UID)).out.trim();
  }
  /** Polls `nc(port)` until it prints `expected` (a new policy reaches the sidecar shortly after it is written). */
  async function until(port: number, expected: string): Promise<void> {
    let out = '';
    for (let i = 0; i < 60 && out !== expected; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 250));
      out = await nc(port);
    }
    assert.equal(out, expected, `port ${port}\n${lab.logs()}`);
  }
  const succeeded = (port: number): string => `hello port ${port}`;
  const REJECTED = 'connection rejected';

  before(async () => {
    lab = new NetnsLab(IP);
    lab.up();
    await lab.control('cp', { 'tcp-echo.yaml': TCP_ECHO }, ['sleep', 'tcp-echo']);
    for (const k of ['sleep', 'echo'] as const) {
      const init = await lab.iptables(k);
      assert.ok(init.ok, `meshgate iptables in ${k}: ${init.err}`);
    }
    const echoSidecar = lab.sidecar('echo', 'tcp-echo');
    const sleepSidecar = lab.sidecar('sleep', 'sleep');
    // tcp-echo-server "9000,9001,9002" "hello": answers each line with `hello <line>`.
    const server = `for (const p of [9000, 9001, 9002]) require('node:net').createServer((s) => { s.on('error', () => {}); s.on('data', (d) => s.write('hello ' + d)); }).listen(p, ${JSON.stringify(IP.echo)});`;
    lab.daemon('echo', [NODE, '-e', server], APP_UID);
    await lab.waitReady('echo', 'http://127.0.0.1:15021/healthz/ready', echoSidecar);
    await lab.waitReady('sleep', 'http://127.0.0.1:15021/healthz/ready', sleepSidecar);
  });
  after(() => lab?.down());

  it('without a policy sleep reaches tcp-echo on 9000, 9001 and (by pod IP) 9002', async () => {
    for (const port of [9000, 9001, 9002]) await until(port, succeeded(port));
  });

  it('ALLOW ports 9000, 9001: 9000 and 9001 succeed, 9002 is rejected', async () => {
    await writeFile(policy(), await task('allow-ports.yaml'));
    await until(9002, REJECTED);
    assert.equal(await nc(9000), succeeded(9000));
    assert.equal(await nc(9001), succeeded(9001));
  });

  it('ALLOW methods GET on port 9000: an HTTP-only field matches no connection, 9000 and 9001 are rejected', async () => {
    await writeFile(policy(), await task('allow-methods-port.yaml'));
    await until(9000, REJECTED);
    assert.equal(await nc(9001), REJECTED);
  });

  it('DENY methods GET: every connection is rejected', async () => {
    // Removed first, so that the DENY's arrival shows (the ALLOW before it rejected both ports too).
    await rm(policy());
    await until(9000, succeeded(9000));
    await writeFile(policy(), await task('deny-methods.yaml'));
    await until(9000, REJECTED);
    assert.equal(await nc(9001), REJECTED);
  });

  it('DENY methods GET on port 9000: 9000 is rejected, 9001 succeeds', async () => {
    await writeFile(policy(), await task('deny-methods-port.yaml'));
    await until(9001, succeeded(9001));
    assert.equal(await nc(9000), REJECTED);
  });
});
