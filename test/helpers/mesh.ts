// A throwaway mesh CA for tests, and fixed workload identities signed by it, so a test can start
// sidecars and gateways with real mesh certificates without running a control plane; and requests
// the way an app makes them through its sidecar.

import { mkdtemp } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { loadOrCreateAuthority, type CertificateAuthority } from '../../src/core/pki/authority.js';
import { createWorkloadCsr } from '../../src/core/pki/workload-csr.js';
import { spiffeIdOf } from '../../src/core/pki/spiffe.js';
import type { WorkloadCertificate } from '../../src/core/pki/types.js';
import { pino } from 'pino';
import { FileSource } from '../../src/core/sources/file-source.js';
import type { SidecarOptions } from '../../src/sidecar/main.js';
import type { SnapshotHolder } from '../../src/core/snapshot/holder.js';
import type { Snapshot } from '../../src/core/snapshot/snapshot.js';
import { ManualIdentity } from './mesh-tls.js';

export async function testAuthority(): Promise<CertificateAuthority> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-ca-'));
  const r = loadOrCreateAuthority(dir);
  if (!r.ok) throw new Error(r.message);
  return r.ca;
}

export function workloadCertificate(ca: CertificateAuthority, namespace: string, serviceAccount: string, ttlSeconds?: number): WorkloadCertificate {
  const { csrPem, keyPem } = createWorkloadCsr({ keyType: 'ec' });
  const identity = { trustDomain: ca.trustDomain, namespace, serviceAccount };
  const signed = ca.signWorkloadCsr(csrPem, identity, ttlSeconds !== undefined ? { ttlSeconds } : {});
  if (!signed.ok) throw new Error(signed.message);
  const chain = signed.certChain.slice(0, -1);
  const leaf = new X509Certificate(chain[0]!);
  return {
    spiffeId: spiffeIdOf(identity),
    certChainPem: chain.join(''),
    keyPem,
    rootCertPem: ca.rootCertPem,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
  };
}

export function fixedIdentity(ca: CertificateAuthority, namespace: string, serviceAccount: string): ManualIdentity {
  return new ManualIdentity(workloadCertificate(ca, namespace, serviceAccount));
}

/** A GET through an HTTP proxy (the sidecar's outbound port), as an app with HTTP_PROXY makes it. */
export function viaProxy(proxyPort: number, url: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const method = body === undefined ? 'GET' : 'POST';
    const req = httpRequest({ host: '127.0.0.1', port: proxyPort, path: url, method, headers: { host: new URL(url).host, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A test sidecar for workload `name` (labels `app: <name>`, service account `<name>`) reading the
 * config folder `dir`: loopback, every port chosen by the system, no access log, a silent logger.
 */
export function sidecarOptions(ca: CertificateAuthority, dir: string, name: string, appPort: number, namespace = 'default'): SidecarOptions {
  return {
    identity: fixedIdentity(ca, namespace, name),
    source: new FileSource({ dir }),
    namespace,
    serviceAccount: name,
    labels: { app: name },
    appPort,
    inboundPort: 0,
    outboundPort: 0,
    statusPort: 0,
    adminPort: 0,
    listenHost: '127.0.0.1',
    accessLog: 'off',
    logger: pino({ level: 'silent' }),
  };
}

/** Resolves once `holder` serves a snapshot for which `ready` holds (a configuration edit has landed). */
export function untilSnapshot(holder: SnapshotHolder, ready: (s: Snapshot) => boolean): Promise<Snapshot> {
  return new Promise((resolve) => {
    const now = holder.current();
    if (now && ready(now)) return resolve(now);
    const off = holder.onSwap((s) => {
      if (!ready(s)) return;
      off();
      resolve(s);
    });
  });
}
