// Which TLS, if any, a connection to one endpoint of one cluster gets, and whom the server must be
// (docs/concepts/resilience.md and auto mTLS, docs/concepts/mesh-security.md). The answer is a profile: a plain
// description the connector turns into sockets, with a `key` so that connections of different
// profiles never share a pool. Pure and cached: it runs on every request attempt.
//
// - A DestinationRule `tls` block decides alone: DISABLE is plaintext even to a sidecar.
// - Without one, auto mTLS: Istio mutual TLS to endpoints that run a sidecar when this proxy has a
//   workload identity, plaintext otherwise (a gateway without a control plane keeps working), and
//   plaintext to a sidecar whose PeerAuthentication is DISABLE on that port (decided at snapshot
//   build, Cluster.plaintextSidecars), which would refuse mTLS.
// - Istio mTLS that cannot be done (no workload certificate) is refused, never sent in plaintext.

import type { ClientTlsSettings } from '../model/istio.js';
import type { IdentityProvider, WorkloadCertificate } from '../pki/types.js';
import type { Cluster } from '../policy/types.js';
import type { Endpoint } from '../registry/types.js';
import { isIP } from 'node:net';

/** Istio mutual TLS: our workload certificate out, a mesh certificate with an expected SPIFFE id back. */
export interface IstioMutualProfile {
  readonly kind: 'ISTIO_MUTUAL';
  /** Tells pools apart: connections are only reused by requests of the same profile. */
  readonly key: string;
  readonly identity: IdentityProvider;
  /** `outbound_.<port>_.<subset>_.<fqdn>`, as Istio sets it, unless the DestinationRule's `sni` says otherwise. */
  readonly sni: string;
  /** SPIFFE URIs the server may present; empty: any certificate that chains to the mesh root. */
  readonly peerIdentities: readonly string[];
}

/** DestinationRule SIMPLE or MUTUAL: TLS origination to a server outside the mesh. */
export interface OriginationProfile {
  readonly kind: 'SIMPLE' | 'MUTUAL';
  readonly key: string;
  /** Absent when the name is an IP address (RFC 6066 has no SNI for addresses). */
  readonly sni?: string;
  /** The server certificate must match one of these (DNS name, IP address or URI SAN). */
  readonly verifyNames: readonly string[];
  readonly insecureSkipVerify: boolean;
  readonly caCertificates?: string;
  readonly clientCertificate?: string;
  readonly privateKey?: string;
  readonly credentialName?: string;
  /** A BackendTLSPolicy's CA bundle (PEM text from its ConfigMap), in place of a file. */
  readonly caCertificatesPem?: string;
  /** A BackendTLSPolicy whose CA could not be had: connections fail with this, never go out unverified. */
  readonly unusable?: string;
}

export type UpstreamTlsProfile = IstioMutualProfile | OriginationProfile;

export type UpstreamTlsDecision =
  /** `profile` undefined: plaintext. */
  | { readonly ok: true; readonly profile: UpstreamTlsProfile | undefined }
  /** The rule asks for something this proxy cannot do; never fall back to plaintext. */
  | { readonly ok: false; readonly reason: string; readonly message: string };

const PLAINTEXT: UpstreamTlsDecision = Object.freeze({ ok: true, profile: undefined });
/** Bounds the per-cluster cache: the SNI of SIMPLE/MUTUAL may follow the client's Host header. */
const CACHE_LIMIT = 256;

const cache = new WeakMap<Cluster, Map<string, UpstreamTlsDecision>>();

/**
 * The TLS for a connection to `endpoint` of `cluster`. `upstreamHost` is the Host the request goes
 * out with (port stripped or not); SIMPLE/MUTUAL without `sni` take SNI and name check from it, as
 * Istio's auto SNI does.
 */
export function decideUpstreamTls(
  cluster: Cluster,
  endpoint: Endpoint,
  identity: IdentityProvider | undefined,
  upstreamHost: string,
): UpstreamTlsDecision {
  const tls = cluster.policy.tls;
  if (tls) {
    switch (tls.mode ?? 'DISABLE') {
      case 'ISTIO_MUTUAL':
        return istioMutual(cluster, endpoint, identity, tls);
      case 'SIMPLE':
      case 'MUTUAL':
        return origination(cluster, tls, upstreamHost);
      default:
        return PLAINTEXT;
    }
  }
  if (!endpoint.meshTls || !identity || cluster.plaintextSidecars?.has(endpoint)) return PLAINTEXT;
  return istioMutual(cluster, endpoint, identity, undefined);
}

function istioMutual(cluster: Cluster, endpoint: Endpoint, identity: IdentityProvider | undefined, tls: ClientTlsSettings | undefined): UpstreamTlsDecision {
  const cert = identity ? currentCertificate(identity) : undefined;
  if (!identity || !cert) {
    return {
      ok: false,
      reason: 'no_workload_certificate',
      message: `${cluster.name} asks for ISTIO_MUTUAL but this proxy has no workload certificate`,
    };
  }
  const trustDomain = trustDomainOf(cert);
  const cacheKey = `istio|${endpoint.namespace}|${endpoint.serviceAccount ?? ''}|${trustDomain}`;
  // Clusters belong to one proxy's snapshot, but a provider swapped under it must not be ignored.
  const sameIdentity = (d: UpstreamTlsDecision): boolean => d.ok && d.profile?.kind === 'ISTIO_MUTUAL' && d.profile.identity === identity;
  return cached(cluster, cacheKey, sameIdentity, () => {
    const peerIdentities = expectedPeers(cluster, endpoint, tls, trustDomain);
    // A rule's `sni` replaces the cluster's name: an egress gateway picks its server by it.
    const sni = tls?.sni || `outbound_.${cluster.port.number}_.${cluster.subset}_.${cluster.service.hostname}`;
    return {
      ok: true,
      profile: Object.freeze({
        kind: 'ISTIO_MUTUAL',
        key: `ISTIO_MUTUAL|${sni}|${peerIdentities.join(',')}`,
        identity,
        sni,
        peerIdentities: Object.freeze(peerIdentities),
      }),
    };
  });
}

/**
 * DR subjectAltNames, else the ServiceEntry's, else the endpoint's own service account in this
 * proxy's trust domain and the mesh config's other ones (trustDomain, trustDomainAliases), else none.
 */
function expectedPeers(cluster: Cluster, endpoint: Endpoint, tls: ClientTlsSettings | undefined, trustDomain: string | undefined): string[] {
  const fromRule = nonEmpty(tls?.subjectAltNames);
  if (fromRule) return [...fromRule];
  const fromService = nonEmpty(cluster.service.subjectAltNames);
  if (fromService) return [...fromService];
  if (endpoint.serviceAccount && trustDomain) {
    const domains = [trustDomain, ...(cluster.trustDomainAliases ?? []).filter((d) => d !== trustDomain)];
    return domains.map((d) => `spiffe://${d}/ns/${endpoint.namespace}/sa/${endpoint.serviceAccount}`);
  }
  return [];
}

function origination(cluster: Cluster, tls: ClientTlsSettings, upstreamHost: string): UpstreamTlsDecision {
  const host = tls.sni || hostOnly(upstreamHost) || cluster.service.hostname;
  return cached(cluster, `origination|${host}`, () => true, () => {
    const sni = isIP(host) === 0 && !host.includes('*') ? host : undefined;
    const verifyNames = nonEmpty(tls.subjectAltNames) ?? [host];
    const kind = tls.mode === 'MUTUAL' ? 'MUTUAL' : 'SIMPLE';
    const files = {
      ...(tls.caCertificates ? { caCertificates: tls.caCertificates } : {}),
      ...(tls.credentialName ? { credentialName: tls.credentialName } : {}),
      ...(tls.caCertificatesPem ? { caCertificatesPem: tls.caCertificatesPem } : {}),
      ...(tls.unusable ? { unusable: tls.unusable } : {}),
      ...(kind === 'MUTUAL' && tls.clientCertificate ? { clientCertificate: tls.clientCertificate } : {}),
      ...(kind === 'MUTUAL' && tls.privateKey ? { privateKey: tls.privateKey } : {}),
    };
    const insecureSkipVerify = tls.insecureSkipVerify === true;
    const key = JSON.stringify([kind, sni ?? '', verifyNames, insecureSkipVerify, files]);
    return { ok: true, profile: Object.freeze({ kind, key, ...(sni ? { sni } : {}), verifyNames: Object.freeze([...verifyNames]), insecureSkipVerify, ...files }) };
  });
}

function cached(cluster: Cluster, key: string, fresh: (d: UpstreamTlsDecision) => boolean, build: () => UpstreamTlsDecision): UpstreamTlsDecision {
  let perCluster = cache.get(cluster);
  if (!perCluster) {
    perCluster = new Map();
    cache.set(cluster, perCluster);
  }
  let d = perCluster.get(key);
  if (!d || !fresh(d)) {
    if (perCluster.size >= CACHE_LIMIT) perCluster.clear();
    d = build();
    perCluster.set(key, d);
  }
  return d;
}

/** The workload certificate the provider holds now, or none while it has not been issued one. */
export function currentCertificate(identity: IdentityProvider): WorkloadCertificate | undefined {
  try {
    return identity.current();
  } catch {
    // A provider that has not yet been issued a certificate: the same as having none.
    return undefined;
  }
}

const trustDomains = new WeakMap<WorkloadCertificate, string | undefined>();

/** `cluster.local` from `spiffe://cluster.local/ns/x/sa/y`. */
export function trustDomainOf(cert: WorkloadCertificate): string | undefined {
  if (trustDomains.has(cert)) return trustDomains.get(cert);
  const m = /^spiffe:\/\/([^/]+)\//.exec(cert.spiffeId);
  const td = m?.[1];
  trustDomains.set(cert, td);
  return td;
}

/** The host part of an authority: `a.example.com:8443` → `a.example.com`, `[::1]:80` → `::1`. */
export function hostOnly(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end > 0 ? authority.slice(1, end) : authority;
  }
  const colon = authority.indexOf(':');
  return (colon >= 0 && authority.indexOf(':', colon + 1) < 0 ? authority.slice(0, colon) : authority).toLowerCase();
}

function nonEmpty(list: readonly string[] | undefined): readonly string[] | undefined {
  return Array.isArray(list) && list.length > 0 ? list : undefined;
}
