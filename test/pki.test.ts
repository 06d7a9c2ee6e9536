// The mesh CA: SPIFFE ids, a self-signed root created once and reloaded, a plugged-in intermediate
// (Istio's cacerts layout) with chains leaf → intermediate(s) → root, CSR checks, the identity written
// being the authenticated one whatever the CSR asks, TTL rules, and a real mTLS handshake between two
// workload certificates on 127.0.0.1.

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { issueCertificate, type IssuedCertificate } from '../src/core/tls/issue-certificate.js';
import { loadOrCreateAuthority, type CertificateAuthority } from '../src/core/pki/authority.js';
import { createWorkloadCsr } from '../src/core/pki/workload-csr.js';
import { DEFAULT_TRUST_DOMAIN, parseSpiffeId, principalOf, spiffeIdOf, spiffeIdsOfCertificate } from '../src/core/pki/spiffe.js';
import type { WorkloadIdentity } from '../src/core/pki/types.js';

const roots: string[] = [];
after(() => {
  for (const d of roots) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'meshgate-pki-'));
  roots.push(d);
  return d;
}

const product: WorkloadIdentity = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'product' };
const reviews: WorkloadIdentity = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'reviews' };
const NOW = new Date('2030-06-01T12:00:00Z');
const HOUR = 3600_000;

function authority(dir: string, now = () => NOW): CertificateAuthority {
  const r = loadOrCreateAuthority(dir, { now });
  if (!r.ok) assert.fail(r.message);
  return r.ca;
}

function sign(ca: CertificateAuthority, csrPem: string, id: WorkloadIdentity, opts?: { ttlSeconds?: number; now?: Date }): string[] {
  const r = ca.signWorkloadCsr(csrPem, id, opts);
  if (!r.ok) assert.fail(r.message);
  return r.certChain;
}

/** root → intermediate(s) → signer, written as Istio's `cacerts` folder. */
function pluggedIn(opts: { levels?: number; signerKeyType?: 'rsa' | 'ec'; signerDays?: number; at?: Date } = {}): { dir: string; root: IssuedCertificate; chain: IssuedCertificate[] } {
  const root = issueCertificate({ subjectCN: 'operator root', days: 3650, isCA: true, notBefore: new Date((opts.at ?? NOW).getTime() - 24 * HOUR) });
  const chain: IssuedCertificate[] = [];
  let issuer = root;
  for (let i = 0; i < (opts.levels ?? 1); i++) {
    const last = i === (opts.levels ?? 1) - 1;
    issuer = issueCertificate({
      subjectCN: `intermediate ${i}`,
      days: last ? (opts.signerDays ?? 365) : 1000,
      isCA: true,
      issuer,
      keyType: last ? (opts.signerKeyType ?? 'rsa') : 'rsa',
      notBefore: new Date((opts.at ?? NOW).getTime() - 24 * HOUR),
    });
    chain.unshift(issuer);
  }
  const dir = tempDir();
  writeFileSync(join(dir, 'ca-cert.pem'), chain[0]!.certPem);
  writeFileSync(join(dir, 'ca-key.pem'), chain[0]!.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'root-cert.pem'), root.certPem);
  writeFileSync(join(dir, 'cert-chain.pem'), [...chain.map((c) => c.certPem), root.certPem].join(''));
  return { dir, root, chain };
}

const x509 = (pem: string) => new X509Certificate(pem);

describe('SPIFFE ids', () => {
  it('formats, parses and strips to a principal', () => {
    assert.equal(DEFAULT_TRUST_DOMAIN, 'cluster.local');
    assert.equal(spiffeIdOf(product), 'spiffe://cluster.local/ns/default/sa/product');
    assert.deepEqual(parseSpiffeId('spiffe://cluster.local/ns/default/sa/product'), product);
    assert.equal(principalOf('spiffe://cluster.local/ns/default/sa/product'), 'cluster.local/ns/default/sa/product');
    for (const bad of ['http://cluster.local/ns/a/sa/b', 'spiffe://cluster.local/ns/a/sa', 'spiffe://cluster.local/ns/a/sa/b/c', 'spiffe:///ns/a/sa/b', 'spiffe://td/sa/a/ns/b', 'spiffe://td/ns/a%2f/sa/b', 'spiffe://td/ns/../sa/b']) {
      assert.equal(parseSpiffeId(bad), undefined, bad);
    }
  });
});

describe('self-signed root', () => {
  it('is created once (key 0600) and the next start loads the same root', () => {
    const dir = join(tempDir(), 'ca');
    const first = authority(dir);
    assert.equal(first.source, 'self-signed');
    assert.equal(first.dir, dir);
    assert.equal(statSync(join(dir, 'ca-key.pem')).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(dir, 'root-cert.pem'), 'utf8'), readFileSync(join(dir, 'ca-cert.pem'), 'utf8'));
    const root = x509(first.rootCertPem);
    assert.ok(root.ca);
    assert.equal(root.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    const years = (new Date(root.validTo).getTime() - new Date(root.validFrom).getTime()) / (365 * 24 * HOUR);
    assert.ok(years > 9.9 && years < 10.1, `${years} years`);

    const second = authority(dir);
    assert.equal(second.rootCertPem, first.rootCertPem);
    // Signed by the reloaded CA, verified against the first root.
    const chain = sign(second, createWorkloadCsr().csrPem, product);
    assert.equal(chain.length, 2);
    assert.equal(chain[1], first.rootCertPem);
    assert.ok(x509(chain[0]!).verify(root.publicKey));
  });

  it('refuses a damaged folder, naming the file', () => {
    const dir = tempDir();
    authority(dir);
    writeFileSync(join(dir, 'ca-key.pem'), issueCertificate({ subjectCN: 'x', days: 1 }).keyPem);
    const r = loadOrCreateAuthority(dir);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.message : '', /ca-key\.pem does not match/);
    rmSync(join(dir, 'ca-cert.pem'));
    const r2 = loadOrCreateAuthority(dir);
    assert.match(!r2.ok ? r2.message : '', /ca-cert\.pem is missing/);
  });
});

describe('plugged-in CA', () => {
  it('signs with the intermediate and returns leaf → intermediate → root', () => {
    const { dir, root, chain: inter } = pluggedIn();
    const ca = authority(dir);
    assert.equal(ca.source, 'plugged-in');
    assert.equal(ca.rootCertPem, root.certPem);
    const chain = sign(ca, createWorkloadCsr().csrPem, product);
    assert.deepEqual(chain.slice(1), [inter[0]!.certPem, root.certPem]);
    assert.ok(x509(chain[0]!).checkIssued(x509(inter[0]!.certPem)));
    assert.ok(x509(chain[0]!).verify(x509(inter[0]!.certPem).publicKey));
  });

  it('orders two intermediates, and signs with an ECDSA key', () => {
    const { dir, root, chain: inter } = pluggedIn({ levels: 2, signerKeyType: 'ec' });
    const chain = sign(authority(dir), createWorkloadCsr({ keyType: 'ec' }).csrPem, product);
    assert.deepEqual(chain.slice(1), [inter[0]!.certPem, inter[1]!.certPem, root.certPem]);
    assert.equal(x509(chain[0]!).publicKey.asymmetricKeyType, 'ec');
    assert.ok(x509(chain[0]!).verify(x509(inter[0]!.certPem).publicKey));
  });

  it('accepts a cert-chain.pem without the signer or the root', () => {
    const { dir, root, chain: inter } = pluggedIn({ levels: 2 });
    writeFileSync(join(dir, 'cert-chain.pem'), inter[1]!.certPem);
    const chain = sign(authority(dir), createWorkloadCsr().csrPem, product);
    assert.deepEqual(chain.slice(1), [inter[0]!.certPem, inter[1]!.certPem, root.certPem]);
  });

  it('refuses a chain that does not lead to the root, a mismatched key and a missing file, naming the file', () => {
    const a = pluggedIn();
    writeFileSync(join(a.dir, 'root-cert.pem'), issueCertificate({ subjectCN: 'other root', days: 10, isCA: true }).certPem);
    const r1 = loadOrCreateAuthority(a.dir, { now: () => NOW });
    assert.match(!r1.ok ? r1.message : 'loaded', /cert-chain\.pem.*does not lead to a root in root-cert\.pem/);

    const b = pluggedIn();
    writeFileSync(join(b.dir, 'ca-key.pem'), issueCertificate({ subjectCN: 'x', days: 1 }).keyPem);
    const r2 = loadOrCreateAuthority(b.dir, { now: () => NOW });
    assert.match(!r2.ok ? r2.message : 'loaded', /ca-key\.pem does not match the certificate in ca-cert\.pem/);

    const c = pluggedIn();
    rmSync(join(c.dir, 'root-cert.pem'));
    const r3 = loadOrCreateAuthority(c.dir, { now: () => NOW });
    assert.match(!r3.ok ? r3.message : 'loaded', /root-cert\.pem is missing/);
  });
});

describe('workload certificates', () => {
  const ca = authority(tempDir());

  it('carry the given identity only, whatever the CSR asks for (URI SAN and CN)', () => {
    const dir = tempDir();
    const keyFile = join(dir, 'key.pem');
    writeFileSync(keyFile, createWorkloadCsr().keyPem);
    const csrPem = execFileSync('openssl', ['req', '-new', '-key', keyFile, '-subj', '/CN=admin/O=system:masters', '-addext', 'subjectAltName=URI:spiffe://cluster.local/ns/kube-system/sa/admin,DNS:evil.example'], { encoding: 'utf8' });
    const leaf = x509(sign(ca, csrPem, product)[0]!);
    assert.deepEqual(spiffeIdsOfCertificate(leaf), ['spiffe://cluster.local/ns/default/sa/product']);
    assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/product');
    // Dual use: a CSR with a CN gets the identity as CN, nothing else of its subject.
    assert.equal(leaf.subject, 'CN=spiffe://cluster.local/ns/default/sa/product');
  });

  it('shows the SPIFFE URI, key usages and an empty subject to openssl', () => {
    const dir = tempDir();
    const file = join(dir, 'leaf.pem');
    writeFileSync(file, sign(ca, createWorkloadCsr().csrPem, product)[0]!);
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', file], { encoding: 'utf8' });
    assert.match(text, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/product/);
    assert.match(text, /Subject: *\n/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /Digital Signature, Key Encipherment/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    const rootFile = join(dir, 'root.pem');
    writeFileSync(rootFile, ca.rootCertPem);
    assert.match(execFileSync('openssl', ['verify', '-attime', String(NOW.getTime() / 1000), '-CAfile', rootFile, '-purpose', 'sslclient', file], { encoding: 'utf8' }), /OK/);
  });

  it('last 24 h by default, backdated 2 minutes; TTLs above 90 days are refused', () => {
    const csr = createWorkloadCsr({ keyType: 'ec' }).csrPem;
    const leaf = x509(sign(ca, csr, product, { now: NOW })[0]!);
    assert.equal(new Date(leaf.validFrom).getTime(), NOW.getTime() - 2 * 60_000);
    assert.equal(new Date(leaf.validTo).getTime(), NOW.getTime() + 24 * HOUR);
    const hour = x509(sign(ca, csr, product, { now: NOW, ttlSeconds: 3600 })[0]!);
    assert.equal(new Date(hour.validTo).getTime(), NOW.getTime() + HOUR);
    assert.equal(sign(ca, csr, product, { now: NOW, ttlSeconds: 90 * 24 * 3600 }).length, 2);
    const tooLong = ca.signWorkloadCsr(csr, product, { now: NOW, ttlSeconds: 90 * 24 * 3600 + 1 });
    assert.equal(tooLong.ok, false);
    assert.match(!tooLong.ok ? tooLong.message : '', /above the maximum/);
  });

  it('never outlive the signing certificate', () => {
    const { dir, chain: inter } = pluggedIn({ signerDays: 2 });
    const leaf = x509(sign(authority(dir), createWorkloadCsr().csrPem, product, { now: NOW, ttlSeconds: 30 * 24 * 3600 })[0]!);
    assert.equal(leaf.validTo, x509(inter[0]!.certPem).validTo);
  });

  it('refuse a CSR whose signature does not verify, garbage and foreign trust domains', () => {
    const { csrPem } = createWorkloadCsr({ keyType: 'ec' });
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] ^= 0x01;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const r = ca.signWorkloadCsr(tampered, product);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.message : '', /signature|malformed/);
    assert.equal(ca.signWorkloadCsr('not a csr', product).ok, false);
    assert.equal(ca.signWorkloadCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', product).ok, false);
    assert.equal(ca.signWorkloadCsr(csrPem, { ...product, trustDomain: 'other.domain' }).ok, false);
    assert.equal(ca.signWorkloadCsr(csrPem, { ...product, namespace: 'a/b' }).ok, false);
  });
});

describe('mTLS between workload certificates', () => {
  /** Server and client each present their chain, verify the other against the root and read its SPIFFE id. */
  async function handshake(ca: CertificateAuthority): Promise<{ serverSaw: string[]; clientSaw: string[] }> {
    const issue = (id: WorkloadIdentity) => {
      const csr = createWorkloadCsr();
      const chain = sign(ca, csr.csrPem, id);
      return { key: csr.keyPem, cert: chain.slice(0, -1).join('') };
    };
    const server = issue(reviews);
    const client = issue(product);
    let serverSaw: string[] = [];
    const srv = createTlsServer({ ...server, ca: ca.rootCertPem, requestCert: true, rejectUnauthorized: true }, (s) => {
      serverSaw = spiffeIdsOfCertificate(s.getPeerCertificate());
      s.end('ok');
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    try {
      const port = (srv.address() as AddressInfo).port;
      const clientSaw = await new Promise<string[]>((resolve, reject) => {
        const s: TLSSocket = tlsConnect({
          host: '127.0.0.1',
          port,
          ...client,
          ca: ca.rootCertPem,
          // Mesh peers are named by SPIFFE id, not by host name.
          checkServerIdentity: (_host, cert) => (spiffeIdsOfCertificate(cert).includes(spiffeIdOf(reviews)) ? undefined : new Error('unexpected peer')),
        });
        let saw: string[] = [];
        s.on('secureConnect', () => {
          assert.equal(s.authorized, true, String(s.authorizationError));
          saw = spiffeIdsOfCertificate(s.getPeerCertificate());
        });
        s.on('error', reject);
        s.resume();
        // The server answers only after it has verified our certificate.
        s.on('end', () => {
          s.destroy();
          resolve(saw);
        });
      });
      return { serverSaw, clientSaw };
    } finally {
      srv.close();
    }
  }

  it('each side verifies the other against the self-signed root', async () => {
    const r = await handshake(authority(tempDir(), () => new Date()));
    assert.deepEqual(r.clientSaw, [spiffeIdOf(reviews)]);
    assert.deepEqual(r.serverSaw, [spiffeIdOf(product)]);
  });

  it('and through a plugged-in intermediate', async () => {
    const r = await handshake(authority(pluggedIn({ at: new Date() }).dir, () => new Date()));
    assert.deepEqual(r.clientSaw, [spiffeIdOf(reviews)]);
    assert.deepEqual(r.serverSaw, [spiffeIdOf(product)]);
  });

  it('the control plane server certificate verifies for its names', async () => {
    const ca = authority(pluggedIn({ at: new Date() }).dir, () => new Date());
    const { certChainPem, keyPem } = ca.issueServerCertificate(['localhost', '127.0.0.1']);
    const srv = createTlsServer({ cert: certChainPem, key: keyPem }, (s) => s.end());
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    try {
      const port = (srv.address() as AddressInfo).port;
      for (const servername of ['localhost', undefined]) {
        await new Promise<void>((resolve, reject) => {
          const s = tlsConnect({ host: '127.0.0.1', port, servername, ca: ca.rootCertPem }, () => {
            s.destroy();
            resolve();
          });
          s.on('error', reject);
        });
      }
    } finally {
      srv.close();
    }
  });
});

