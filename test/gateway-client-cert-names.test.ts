// AuthorizationPolicy at a gateway with mutual TLS, against client certificates that carry several
// names. Envoy's RBAC compares an authenticated principal with each URI SAN, then each DNS SAN, then
// the subject, and matches when any does; before, meshgate read the first URI SAN only, so a
// certificate naming an allowed identity first and a denied one second passed a DENY on the second,
// and a certificate without a URI SAN passed a DENY on `principals: ["*"]`.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { authorizationPolicy } from './helpers/cluster-yaml.js';
import { eventually } from './helpers/gateway.js';
import { rawExchange } from './helpers/raw-http.js';
import { HOST, startTargetGateway, type TargetGateway } from './helpers/target-config.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const GATEWAY = '{matchLabels: {istio: ingressgateway}}';
const deny = (name: string, source: string, path: string): string =>
  authorizationPolicy(name, 'istio-system', GATEWAY, `  action: DENY\n  rules: [{from: [{source: ${source}}], to: [{operation: {paths: [${path}]}}]}]`);

describe('gateway mutual TLS: AuthorizationPolicy matches any name of the client certificate', () => {
  const root = issueCertificate({ subjectCN: 'client names test root', isCA: true, issuer: 'self', days: 2, keyType: 'ec' });
  let app: Upstream;
  let target: TargetGateway;

  before(async () => {
    app = await startUpstream('app');
    target = await startTargetGateway(app.port, undefined, root.certPem);
    await writeFile(
      join(target.configDir, 'policies.yaml'),
      [
        deny('deny-bad', '{principals: [cluster.local/ns/evil/sa/bad]}', '/principal'),
        deny('deny-ns', '{namespaces: [evil]}', '/namespace'),
        deny('deny-sa', '{serviceAccounts: [evil/bad]}', '/sa'),
        deny('only-good', '{notPrincipals: [cluster.local/ns/good/sa/ok]}', '/vip'),
        deny('deny-any', '{principals: ["*"]}', '/any'),
        deny('deny-dns', '{principals: ["*.bad.example.com"]}', '/dns'),
      ].join('---\n'),
    );
    const probe = client('probe', {});
    await eventually(async () => (await probe('/any')) === 403);
  });
  after(async () => {
    await target?.close();
    await app?.close();
  });

  function client(name: string, names: { uris?: string[]; dnsNames?: string[] }): (path: string) => Promise<number> {
    const c = issueCertificate({ subjectCN: name, ...names, issuer: root, days: 2, keyType: 'ec', extKeyUsage: ['clientAuth'] });
    return async (path: string): Promise<number> =>
      (await rawExchange(target.tlsPort, `GET ${path} HTTP/1.1\r\nhost: ${HOST}\r\nconnection: close\r\n\r\n`, { tls: { ...target.tls, cert: c.certPem, key: c.keyPem } })).status;
  }
  const statuses = async (get: (path: string) => Promise<number>): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const path of ['/principal', '/namespace', '/sa', '/vip', '/any', '/dns', '/open']) out[path] = await get(path);
    return out;
  };

  it('a DENY naming the second URI SAN denies; notPrincipals is satisfied by any SAN, as in Envoy', async () => {
    const two = client('two names', { uris: ['spiffe://cluster.local/ns/good/sa/ok', 'spiffe://cluster.local/ns/evil/sa/bad'] });
    assert.deepEqual(await statuses(two), { '/principal': 403, '/namespace': 403, '/sa': 403, '/vip': 200, '/any': 403, '/dns': 200, '/open': 200 });
  });

  it('one URI SAN: only the rules naming it', async () => {
    const other = client('other', { uris: ['spiffe://cluster.local/ns/other/sa/x'] });
    assert.deepEqual(await statuses(other), { '/principal': 200, '/namespace': 200, '/sa': 200, '/vip': 403, '/any': 403, '/dns': 200, '/open': 200 });
  });

  it('no URI SAN: `*` and suffix patterns match the DNS SANs and the subject, exact principals never do', async () => {
    const dnsOnly = client('dns only', { dnsNames: ['client.bad.example.com'] });
    assert.deepEqual(await statuses(dnsOnly), { '/principal': 200, '/namespace': 200, '/sa': 200, '/vip': 403, '/any': 403, '/dns': 403, '/open': 200 });
  });
});
