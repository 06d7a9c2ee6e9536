// The connect timeout of TCP passed through to a fixed address — a CONNECT tunnel, captured TCP under
// ALLOW_ANY (PassthroughCluster), a sidecar's inbound side to its app — is the mesh config's
// `connectTimeout`, as Envoy's connect_timeout on those clusters: a destination that never answers
// the SYN fails the connection with UF instead of holding it open. The CONNECT is answered 503 (the
// local reply of a connection failure), the captured and inbound connections are closed, and each is
// logged and counted with UF. A namespace's iptables drops the SYNs; the sidecars run in it
// (helpers/connect-timeout-pod.ts). No timing is asserted: only what happened.
// Needs root (network namespaces, iptables): skipped with the reason otherwise.

import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NetnsLab, netnsSkipReason, NODE } from './helpers/netns.js';

const IP = { pod: '10.77.0.2' };
/** Where the SYNs go unanswered: the pod's own address, on a port iptables drops them for. */
const DROPPED_PORT = '8080';
const POD_SCRIPT = fileURLToPath(new URL('./helpers/connect-timeout-pod.js', import.meta.url));

type Json = Record<string, any>;

describe('connect timeout on TCP passed through to a fixed address', { skip: netnsSkipReason() ?? false }, () => {
  let lab: NetnsLab<keyof typeof IP>;
  let seen: Json;

  before(async () => {
    lab = new NetnsLab(IP);
    lab.up();
    const drop = await lab.run('pod', ['iptables', '-A', 'INPUT', '-p', 'tcp', '-d', IP.pod, '--dport', DROPPED_PORT, '--syn', '-j', 'DROP']);
    assert.ok(drop.ok, `iptables: ${drop.err}`);
    const run = await lab.run('pod', [NODE, POD_SCRIPT, IP.pod, DROPPED_PORT, '0.3s']);
    assert.ok(run.ok, `the pod's run failed: ${run.err}`);
    seen = JSON.parse(run.out.trim().split('\n').pop() ?? '{}') as Json;
  });
  after(() => lab?.down());

  it('a CONNECT tunnel is answered 503 with the connection-failure reply, and logged with UF', () => {
    assert.equal(seen['connect'].status, 503, JSON.stringify(seen));
    assert.match(seen['connect'].body, /upstream connect error or disconnect\/reset before headers\. reset reason: connection failure/);
    const [line] = seen['lines'].proxy as Json[];
    assert.equal(line!['upstream_cluster'], 'PassthroughCluster');
    assert.equal(line!['response_flags'], 'UF');
    assert.equal(line!['upstream_host'], `${IP.pod}:${DROPPED_PORT}`);
  });

  it('a captured connection under ALLOW_ANY is closed, and logged with UF', () => {
    assert.equal(seen['captured'], '', 'closed with nothing sent back');
    const [line] = seen['lines'].captured as Json[];
    assert.equal(line!['upstream_cluster'], 'PassthroughCluster');
    assert.equal(line!['response_flags'], 'UF');
  });

  it("the inbound side's connection to its app is closed, and logged with UF", () => {
    assert.equal(seen['inbound'], '');
    const [line] = seen['lines'].server as Json[];
    assert.equal(line!['upstream_cluster'], `inbound|${DROPPED_PORT}||`);
    assert.equal(line!['response_flags'], 'UF');
  });

  it('each is counted in istio_tcp_connections_closed_total with UF', () => {
    assert.deepEqual(seen['closedWithUf'], {
      proxy: [{ destination_service_name: 'PassthroughCluster', reporter: 'source', value: '1' }],
      captured: [{ destination_service_name: 'PassthroughCluster', reporter: 'source', value: '1' }],
      server: [{ destination_service_name: 'db', reporter: 'destination', value: '1' }],
    });
  });
});
