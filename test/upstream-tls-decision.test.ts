// Unit tables: which TLS a connection to one endpoint of one cluster gets (DestinationRule tls, auto
// mTLS), the SPIFFE identities the server may present, SNI and names to verify; SAN parsing.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientTlsSettings } from '../src/core/model/istio.js';
import type { Cluster } from '../src/core/policy/types.js';
import type { Endpoint, Service } from '../src/core/registry/types.js';
import type { IdentityProvider, WorkloadCertificate } from '../src/core/pki/types.js';
import { decideUpstreamTls, hostOnly, type UpstreamTlsProfile } from '../src/core/tls/upstream-tls.js';
import { checkPeerIdentity, sanEntries } from '../src/core/tls/upstream-connector.js';

const identity: IdentityProvider = {
  current: () => ({ spiffeId: 'spiffe://example.org/ns/istio-system/sa/gw' }) as WorkloadCertificate,
  onRotate: () => () => undefined,
};

function endpoint(over: Partial<Endpoint> = {}): Endpoint {
  return { address: '10.0.0.1', ports: new Map(), labels: {}, locality: '', weight: 1, namespace: 'shop', meshTls: true, ready: true, serviceAccount: 'cart', ...over };
}

function cluster(tls: ClientTlsSettings | undefined, over: { subset?: string; sans?: string[]; hostname?: string } = {}): Cluster {
  const service = { hostname: over.hostname ?? 'cart.shop.svc.cluster.local', subjectAltNames: over.sans ?? [] } as unknown as Service;
  return {
    name: 'c',
    service,
    port: { number: 8080, name: 'http', protocol: 'HTTP' },
    subset: over.subset ?? '',
    endpoints: [],
    policy: tls ? { tls } : {},
    lb: { algorithm: 'x', pick: () => undefined },
  };
}

function profile(c: Cluster, e: Endpoint, id: IdentityProvider | undefined = identity, host = 'cart.example.com'): UpstreamTlsProfile | undefined {
  const d = decideUpstreamTls(c, e, id, host);
  assert.ok(d.ok, JSON.stringify(d));
  return d.profile;
}

describe('upstream TLS decision', () => {
  it('auto mTLS: Istio mTLS to a sidecar when the proxy has an identity, plaintext otherwise', () => {
    const p = profile(cluster(undefined), endpoint());
    assert.equal(p?.kind, 'ISTIO_MUTUAL');
    assert.equal(profile(cluster(undefined), endpoint({ meshTls: false })), undefined);
    assert.deepEqual(decideUpstreamTls(cluster(undefined), endpoint(), undefined, 'x'), { ok: true, profile: undefined });
  });

  it('ISTIO_MUTUAL: SNI outbound_.<port>_.<subset>_.<fqdn>, peer from the endpoint service account in our trust domain', () => {
    const p = profile(cluster(undefined, { subset: 'v2' }), endpoint());
    assert.ok(p?.kind === 'ISTIO_MUTUAL');
    assert.equal(p.sni, 'outbound_.8080_.v2_.cart.shop.svc.cluster.local');
    assert.deepEqual(p.peerIdentities, ['spiffe://example.org/ns/shop/sa/cart']);
    const noSubset = profile(cluster(undefined), endpoint());
    assert.ok(noSubset?.kind === 'ISTIO_MUTUAL');
    assert.equal(noSubset.sni, 'outbound_.8080_._.cart.shop.svc.cluster.local');
  });

  it('ISTIO_MUTUAL peers: the account in our trust domain and in each of the mesh config\'s other trust domains', () => {
    const c = { ...cluster(undefined), trustDomainAliases: ['new-td', 'example.org', 'old-td'] };
    const p = profile(c, endpoint());
    assert.deepEqual(p?.kind === 'ISTIO_MUTUAL' && p.peerIdentities, ['spiffe://example.org/ns/shop/sa/cart', 'spiffe://new-td/ns/shop/sa/cart', 'spiffe://old-td/ns/shop/sa/cart']);
    // A DestinationRule's own SANs are taken as written.
    const rule = profile({ ...cluster({ mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://x/ns/a/sa/b'] }), trustDomainAliases: ['old-td'] }, endpoint());
    assert.deepEqual(rule?.kind === 'ISTIO_MUTUAL' && rule.peerIdentities, ['spiffe://x/ns/a/sa/b']);
  });

  it('ISTIO_MUTUAL peers: DestinationRule SANs, else the ServiceEntry SANs, else the account, else chain only', () => {
    const rule = profile(cluster({ mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://x/ns/a/sa/b'] }, { sans: ['spiffe://se'] }), endpoint());
    assert.deepEqual(rule?.kind === 'ISTIO_MUTUAL' && rule.peerIdentities, ['spiffe://x/ns/a/sa/b']);
    const entry = profile(cluster(undefined, { sans: ['spiffe://se'] }), endpoint());
    assert.deepEqual(entry?.kind === 'ISTIO_MUTUAL' && entry.peerIdentities, ['spiffe://se']);
    const unknown = profile(cluster({ mode: 'ISTIO_MUTUAL' }), endpoint({ serviceAccount: undefined, meshTls: false }));
    assert.deepEqual(unknown?.kind === 'ISTIO_MUTUAL' && unknown.peerIdentities, []);
  });

  it('a DestinationRule tls block decides alone: DISABLE (or no mode) is plaintext even to a sidecar', () => {
    assert.equal(profile(cluster({ mode: 'DISABLE' }), endpoint()), undefined);
    assert.equal(profile(cluster({}), endpoint()), undefined);
  });

  it('explicit ISTIO_MUTUAL without an identity is refused, never plaintext', () => {
    const d = decideUpstreamTls(cluster({ mode: 'ISTIO_MUTUAL' }), endpoint(), undefined, 'x');
    assert.equal(d.ok, false);
    assert.equal(!d.ok && d.reason, 'no_workload_certificate');
    const throwing: IdentityProvider = { current: () => { throw new Error('not yet issued'); }, onRotate: () => () => undefined };
    assert.equal(decideUpstreamTls(cluster({ mode: 'ISTIO_MUTUAL' }), endpoint(), throwing, 'x').ok, false);
    // A proxy in the mesh whose certificate is not there yet fails closed under auto mTLS too.
    assert.equal(decideUpstreamTls(cluster(undefined), endpoint(), throwing, 'x').ok, false);
  });

  it('SIMPLE: SNI and name from `sni`, else the upstream Host; subjectAltNames replace the name check', () => {
    const fromHost = profile(cluster({ mode: 'SIMPLE' }), endpoint(), identity, 'API.Example.com:8443');
    assert.ok(fromHost?.kind === 'SIMPLE');
    assert.equal(fromHost.sni, 'api.example.com');
    assert.deepEqual(fromHost.verifyNames, ['api.example.com']);
    const named = profile(cluster({ mode: 'SIMPLE', sni: 'backend.test', subjectAltNames: ['alt.test'] }), endpoint());
    assert.ok(named?.kind === 'SIMPLE');
    assert.equal(named.sni, 'backend.test');
    assert.deepEqual(named.verifyNames, ['alt.test']);
    const ip = profile(cluster({ mode: 'SIMPLE' }), endpoint(), identity, '10.1.2.3:443');
    assert.ok(ip?.kind === 'SIMPLE');
    assert.equal(ip.sni, undefined, 'no SNI for an IP address');
    assert.deepEqual(ip.verifyNames, ['10.1.2.3']);
  });

  it('profiles that differ get different pool keys; equal ones the same object', () => {
    const c = cluster({ mode: 'SIMPLE' });
    const a = profile(c, endpoint(), identity, 'a.test');
    const b = profile(c, endpoint(), identity, 'b.test');
    assert.notEqual(a?.key, b?.key);
    assert.equal(profile(c, endpoint(), identity, 'a.test'), a);
    const m1 = profile(cluster({ mode: 'MUTUAL', credentialName: 'one' }), endpoint());
    const m2 = profile(cluster({ mode: 'MUTUAL', credentialName: 'two' }), endpoint());
    assert.notEqual(m1?.key, m2?.key);
    const i1 = profile(cluster(undefined), endpoint({ serviceAccount: 'a' }));
    const i2 = profile(cluster(undefined), endpoint({ serviceAccount: 'b' }));
    assert.notEqual(i1?.key, i2?.key);
  });

  it('hostOnly strips ports and brackets', () => {
    assert.equal(hostOnly('a.test:80'), 'a.test');
    assert.equal(hostOnly('[::1]:80'), '::1');
    assert.equal(hostOnly('::1'), '::1');
    assert.equal(hostOnly('A.test'), 'a.test');
  });
});

describe('peer identity check', () => {
  it('reads URI SANs from Node’s subjectaltname, quoted ones included', () => {
    assert.deepEqual(sanEntries('DNS:a.test, URI:spiffe://td/ns/a/sa/b, IP Address:1.2.3.4', 'URI'), ['spiffe://td/ns/a/sa/b']);
    assert.deepEqual(sanEntries('URI:"spiffe://td/ns/a/sa/b,c"', 'URI'), ['spiffe://td/ns/a/sa/b,c']);
    assert.deepEqual(sanEntries(undefined, 'URI'), []);
  });

  it('matches exactly; an empty list accepts any chain-verified certificate', () => {
    const peer = { subjectaltname: 'URI:spiffe://td/ns/a/sa/b' } as never;
    assert.equal(checkPeerIdentity(['spiffe://td/ns/a/sa/b'], peer), undefined);
    assert.ok(checkPeerIdentity(['spiffe://td/ns/a/sa/bb'], peer));
    assert.ok(checkPeerIdentity(['spiffe://td/ns/a/sa/b'], { subjectaltname: 'URI:spiffe://td/ns/a/sa/b/x' } as never));
    assert.ok(checkPeerIdentity(['spiffe://td/ns/a/sa/b'], { subjectaltname: 'DNS:spiffe://td/ns/a/sa/b' } as never));
    assert.equal(checkPeerIdentity([], peer), undefined);
  });
});
