// Istio's "Egress using Wildcard Hosts" task under transparent capture, in network namespaces, its
// YAML unchanged (test/fixtures/istio-tasks/wildcard-egress/) but for www.wikipedia.org's address:
// - the mesh is REGISTRY_ONLY, so sleep's `curl -s https://en.wikipedia.org/wiki/Main_Page` fails
//   until the ServiceEntry `*.wikipedia.org` (HTTPS 443, resolution NONE by default) is applied; then
//   en. and de.wikipedia.org answer with their titles, the sidecar passing the TLS through to the
//   address the app dialled (Envoy's ORIGINAL_DST), routed by the ClientHello's SNI;
// - through istio-egressgateway: with that entry deleted, the task's Gateway (PASSTHROUGH
//   `*.wikipedia.org`), DestinationRule and VirtualService (mesh: SNI `*.wikipedia.org` to the
//   gateway; gateway: to www.wikipedia.org) and the www-wikipedia ServiceEntry; both titles come back
//   by way of the gateway and www.wikipedia.org, the one server every language then reaches.
// Wikipedia is a host of the lab (10.77.0.5) serving every language behind one certificate; the app
// dials it as `curl --resolve` would, as DNS would answer it. www-wikipedia's `resolution: DNS` is
// given that address as a STATIC endpoint (the lab has no public DNS), as the egress tests do.
// Needs root (network namespaces, iptables): skipped with the reason otherwise.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { meshConfigYaml } from './helpers/cluster-yaml.js';
import { APP_UID, NetnsLab, netnsSkipReason, NODE } from './helpers/netns.js';
import { repoPath } from './helpers/route-table.js';
import { fetchTitle, TITLES, wikipediaCertificates, wikipediaServer } from './helpers/wikipedia.js';

const IP = { cp: '10.77.0.2', sleep: '10.77.0.3', wikipedia: '10.77.0.5', egress: '10.77.0.6' };
const EGRESS_SERVICE_IP = '10.77.1.30';
const task = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/wildcard-egress/${file}`), 'utf8');

/** istio-egressgateway's Service (443 `https` → 8443) and pod, as `istioctl install` makes them. */
const EGRESS_GATEWAY = `apiVersion: v1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  clusterIP: ${EGRESS_SERVICE_IP}
  selector: {istio: egressgateway}
  ports: [{name: https, port: 443, targetPort: 8443}]
---
apiVersion: v1
kind: Pod
metadata: {name: istio-egressgateway-0, namespace: istio-system, labels: {istio: egressgateway, app: istio-egressgateway}}
spec: {serviceAccountName: istio-egressgateway-service-account}
status: {podIP: ${IP.egress}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: istio-egressgateway-0, namespace: istio-system, labels: {kubernetes.io/service-name: istio-egressgateway}}
addressType: IPv4
ports: [{name: https, port: 8443}]
endpoints:
- addresses: [${IP.egress}]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: istio-egressgateway-0, namespace: istio-system}
`;

const reason = netnsSkipReason();

describe('Egress using Wildcard Hosts (sleep, capture, REGISTRY_ONLY)', { skip: reason ?? false }, () => {
  let lab: NetnsLab<keyof typeof IP>;
  const wikipedia = wikipediaCertificates();
  const config = (file: string): string => join(lab.dir, 'config', file);

  /** `curl -s https://<page> | grep -o "<title>.*</title>"` from sleep (uid 1000, captured): the title, or what failed. */
  async function curl(page: string): Promise<string> {
    return (await lab.run('sleep', [NODE, '-e', fetchTitle(page, IP.wikipedia)], APP_UID, { CA: wikipedia.caPem })).out.trim().split('\n')[0] ?? '';
  }
  /** Polls `page` until its output is as `expected` says (config reaches the sidecar shortly after it is written). */
  async function until(page: string, expected: (out: string) => boolean): Promise<string> {
    let out = await curl(page);
    for (let i = 0; i < 60 && !expected(out); i++) {
      await new Promise((r) => setTimeout(r, 250));
      out = await curl(page);
    }
    return out;
  }

  before(async () => {
    lab = new NetnsLab(IP);
    lab.up();
    const mesh = meshConfigYaml('outboundTrafficPolicy:\n  mode: REGISTRY_ONLY');
    await lab.control('cp', { 'mesh.yaml': mesh, 'egressgateway.yaml': EGRESS_GATEWAY }, ['sleep', 'istio-system/istio-egressgateway-service-account']);
    const init = await lab.iptables('sleep');
    assert.ok(init.ok, `meshgate iptables: ${init.err}`);
    const sleep = lab.sidecar('sleep', 'sleep');
    const egress = lab.gateway('egress', 'istio-system', 'istio-egressgateway-service-account', ['--labels', 'istio=egressgateway,app=istio-egressgateway', '--ports', '443=8443', '--status-port', '15021']);
    lab.daemon('wikipedia', [NODE, '-e', wikipediaServer(IP.wikipedia)], undefined, wikipedia.serverEnv);
    await lab.waitReady('sleep', 'http://127.0.0.1:15021/healthz/ready', sleep);
    await lab.waitReady('egress', 'http://127.0.0.1:15021/healthz/ready', egress);
  });
  after(() => lab?.down());

  it('REGISTRY_ONLY: without a ServiceEntry, https://en.wikipedia.org is not reached', async () => {
    assert.match(await curl('en.wikipedia.org/wiki/Main_Page'), /^failed: |^no title$/);
  });

  it('ServiceEntry *.wikipedia.org: en. and de.wikipedia.org answer, the TLS passed through', async () => {
    await writeFile(config('wikipedia.yaml'), await task('wikipedia.yaml'));
    for (const [page, title] of Object.entries(TITLES)) assert.equal(await until(page, (o) => o === title), title, lab.logs());
  });

  it('through istio-egressgateway: both pages, by way of the gateway, to www.wikipedia.org', async () => {
    await rm(config('wikipedia.yaml'));
    assert.match(await until('en.wikipedia.org/wiki/Main_Page', (o) => o !== TITLES['en.wikipedia.org/wiki/Main_Page']), /^failed: |^no title$/);
    const www = (await task('www-wikipedia.yaml')).replace('  resolution: DNS', `  resolution: STATIC\n  endpoints: [{address: ${IP.wikipedia}}]`);
    await writeFile(config('egress-gateway.yaml'), await task('egress-gateway.yaml'));
    await writeFile(config('www-wikipedia.yaml'), www);
    for (const [page, title] of Object.entries(TITLES)) assert.equal(await until(page, (o) => o === title), title, lab.logs());
    // The task's check at the gateway (`pilot-agent request GET clusters | grep www.wikipedia.org.*cx_total`):
    // its connections to www.wikipedia.org, here in the gateway's own TCP metrics.
    const scrape = `fetch('http://127.0.0.1:15090/stats/prometheus').then((r) => r.text()).then((t) => console.log(t))`;
    const metrics = (await lab.run('egress', [NODE, '-e', scrape])).out;
    const opened = metrics.split('\n').filter((l) => l.startsWith('istio_tcp_connections_opened_total{') && l.includes('destination_service="www.wikipedia.org"'));
    assert.ok(opened.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0) >= 2, metrics);
  });
});
