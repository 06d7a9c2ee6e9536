// The proxies' identity client against a real CA: the first certificate, retries until it arrives,
// answers it must refuse (foreign root, another key, several SPIFFE ids), and rotation — on a clock
// the test controls — at half the requested lifetime, during which failed requests leave the current
// certificate serving.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateAuthority, type CertificateAuthority } from '../src/core/pki/authority.js';
import { createWorkloadCsr } from '../src/core/pki/workload-csr.js';
import { acceptIssuedChain, IdentityClient, rotationDelayMs } from '../src/core/pki/identity-client.js';
import type { WorkloadCertificate, WorkloadIdentity } from '../src/core/pki/types.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { seededRandom } from './helpers/random.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function newCa(): CertificateAuthority {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-idc-'));
  dirs.push(dir);
  const r = loadOrCreateAuthority(dir);
  if (!r.ok) assert.fail(r.message);
  return r.ca;
}

const product: WorkloadIdentity = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'product' };
const fast = { initialMs: 5, maxMs: 20 };

function signWith(ca: CertificateAuthority, csrPem: string, ttlSeconds: number, now?: Date): string[] {
  const r = ca.signWorkloadCsr(csrPem, product, { ttlSeconds, ...(now ? { now } : {}) });
  if (!r.ok) throw new Error(r.message);
  return r.certChain;
}

const serial = (c: WorkloadCertificate) => new X509Certificate(c.certChainPem).serialNumber;

describe('rotationDelayMs', () => {
  const T = Date.parse('2030-01-01T00:00:00Z');
  const cert = { obtainedAt: new Date(T), notAfter: new Date(T + 100_000) };
  it('renews when half the lifetime since arrival remains, ±1% jitter', () => {
    assert.equal(rotationDelayMs(cert, new Date(T), () => 0.5), 50_000);
    assert.equal(rotationDelayMs(cert, new Date(T), () => 0), 51_000);
    assert.equal(rotationDelayMs(cert, new Date(T), () => 1), 49_000);
    assert.equal(rotationDelayMs(cert, new Date(T + 20_000), () => 0.5), 30_000);
    assert.equal(rotationDelayMs(cert, new Date(T + 70_000), () => 0.5), 0);
  });
  it('is about 12 h into a 24 h certificate', () => {
    const day = { obtainedAt: new Date(T), notAfter: new Date(T + 24 * 3600_000) };
    const d = rotationDelayMs(day, new Date(T), seededRandom(7));
    assert.ok(d > 11.7 * 3600_000 && d < 12.3 * 3600_000, String(d));
  });
});

/**
 * A clock that moves only through the client's own timers: each scheduled callback advances it by
 * its delay and then runs, so a test reads exactly when the client chose to act.
 */
function fakeTime(): { now: () => Date; schedule: (fn: () => void, ms: number) => () => void; delays: number[] } {
  let t = Math.floor(Date.now() / 1000) * 1000;
  const delays: number[] = [];
  return {
    now: () => new Date(t),
    delays,
    schedule: (fn, ms) => {
      delays.push(ms);
      let cancelled = false;
      setImmediate(() => {
        if (cancelled) return;
        t += ms;
        fn();
      });
      return () => (cancelled = true);
    },
  };
}

describe('acceptIssuedChain', () => {
  const ca = newCa();
  const roots = [new X509Certificate(ca.rootCertPem)];
  it('keeps the chain as the CA sent it, its root included, as Istio\'s workloads present it', () => {
    const csr = createWorkloadCsr({ keyType: 'ec' });
    const r = acceptIssuedChain(signWith(ca, csr.csrPem, 3600), csr.keyPem, roots, ca.rootCertPem, new Date());
    assert.ok(r.ok);
    assert.equal(r.cert.spiffeId, 'spiffe://cluster.local/ns/default/sa/product');
    assert.equal((r.cert.certChainPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
    assert.ok(r.cert.certChainPem.endsWith(ca.rootCertPem));
    // Anything the CA sent past the root is not part of the chain.
    const extra = acceptIssuedChain([...signWith(ca, csr.csrPem, 3600), newCa().rootCertPem], csr.keyPem, roots, ca.rootCertPem, new Date());
    assert.ok(extra.ok);
    assert.equal((extra.cert.certChainPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
    assert.equal(r.cert.rootCertPem, ca.rootCertPem);
  });
  it('refuses another root, another key and a leaf with two SPIFFE ids', () => {
    const csr = createWorkloadCsr({ keyType: 'ec' });
    const foreign = acceptIssuedChain(signWith(newCa(), csr.csrPem, 3600), csr.keyPem, roots, ca.rootCertPem, new Date());
    assert.match(!foreign.ok ? foreign.message : '', /trust bundle/);
    const other = acceptIssuedChain(signWith(ca, createWorkloadCsr({ keyType: 'ec' }).csrPem, 3600), csr.keyPem, roots, ca.rootCertPem, new Date());
    assert.match(!other.ok ? other.message : '', /not for our key/);
    const root = issueCertificate({ subjectCN: 'r', days: 1, isCA: true, keyType: 'ec' });
    const two = issueCertificate({ subjectCN: 'x', days: 1, issuer: root, keyType: 'ec', uris: ['spiffe://cluster.local/ns/a/sa/a', 'spiffe://cluster.local/ns/b/sa/b'] });
    const r = acceptIssuedChain([two.certPem, root.certPem], two.keyPem, [new X509Certificate(root.certPem)], root.certPem, new Date());
    assert.match(!r.ok ? r.message : '', /2 SPIFFE ids/);
  });
});

describe('IdentityClient', () => {
  // The client's timers are unref'd (they must not keep a proxy alive); here nothing else would.
  let keepAlive: NodeJS.Timeout;
  before(() => {
    keepAlive = setInterval(() => {}, 60_000);
  });
  after(() => clearInterval(keepAlive));

  it('retries until the first certificate arrives, then serves it', async () => {
    const ca = newCa();
    let calls = 0;
    const client = new IdentityClient({
      rootCertPem: ca.rootCertPem,
      keyType: 'ec',
      backoff: fast,
      requestCertificate: async (csrPem, ttl) => {
        calls++;
        if (calls < 3) throw new Error('CA not reachable yet');
        assert.equal(ttl, 86400);
        return signWith(ca, csrPem, ttl);
      },
    });
    await client.start();
    assert.equal(calls, 3);
    const cert = client.current();
    assert.equal(cert.spiffeId, 'spiffe://cluster.local/ns/default/sa/product');
    assert.ok(new X509Certificate(cert.certChainPem).checkPrivateKey(createPrivateKey(cert.keyPem)));
    client.close();
    client.close();
  });

  // Measured from the backdated NotBefore, 300 s would rotate after 90 s and 60 s at once, forever.
  for (const [ttl, half] of [[300, 150_000], [60, 30_000]] as const) {
    it(`rotates a ${ttl} s certificate ${half / 1000} s after it arrived, not from the backdated NotBefore`, async () => {
      const ca = newCa();
      const time = fakeTime();
      const askedAt: number[] = [];
      const client = new IdentityClient({
        rootCertPem: ca.rootCertPem,
        ttlSeconds: ttl,
        keyType: 'ec',
        random: () => 0.5,
        now: time.now,
        schedule: time.schedule,
        requestCertificate: async (csrPem, asked) => {
          askedAt.push(time.now().getTime());
          return signWith(ca, csrPem, asked, time.now());
        },
      });
      await client.start();
      const first = client.current();
      assert.equal(askedAt[0]! - first.notBefore.getTime(), 120_000, 'the CA backdates NotBefore by 2 minutes');
      assert.equal(first.notAfter.getTime() - askedAt[0]!, ttl * 1000);
      const rotated = await new Promise<WorkloadCertificate>((resolve) => client.onRotate(resolve));
      client.close();
      assert.equal(time.delays[0], half);
      assert.equal(askedAt[1]! - askedAt[0]!, half);
      assert.notEqual(serial(rotated), serial(first));
    });
  }

  it('keeps serving the old certificate while the CA fails or answers wrongly, retrying with back-off', async () => {
    const ca = newCa();
    const stranger = newCa();
    const time = fakeTime();
    let calls = 0;
    const servedDuringFailures: string[] = [];
    let client!: IdentityClient;
    client = new IdentityClient({
      rootCertPem: ca.rootCertPem,
      ttlSeconds: 60,
      keyType: 'ec',
      random: () => 0.5,
      now: time.now,
      schedule: time.schedule,
      backoff: fast,
      requestCertificate: async (csrPem, ttl) => {
        calls++;
        if (calls > 1) servedDuringFailures.push(serial(client.current()));
        if (calls === 2 || calls === 3) throw new Error('CA unavailable');
        if (calls === 4) return signWith(stranger, csrPem, ttl, time.now()); // a chain to another root
        if (calls === 5) return signWith(ca, createWorkloadCsr({ keyType: 'ec' }).csrPem, ttl, time.now()); // not our key
        return signWith(ca, csrPem, ttl, time.now());
      },
    });
    await client.start();
    const first = client.current();
    assert.equal(calls, 1);
    const rotated = await new Promise<WorkloadCertificate>((resolve) => client.onRotate(resolve));
    client.close();
    assert.equal(calls, 6);
    // Half of 60 s, then the back-off: 5 ms doubling up to its 20 ms ceiling.
    assert.deepEqual(time.delays.slice(0, 5), [30_000, 5, 10, 20, 20]);
    assert.deepEqual(servedDuringFailures, Array(5).fill(serial(first)));
    assert.notEqual(serial(rotated), serial(first));
    assert.equal(client.current(), rotated);
    assert.notEqual(rotated.keyPem, first.keyPem);
    assert.equal(rotated.spiffeId, first.spiffeId);
  });

  it('start() rejects when closed before any certificate arrived', async () => {
    const client = new IdentityClient({ rootCertPem: newCa().rootCertPem, keyType: 'ec', requestCertificate: () => new Promise<string[]>(() => {}) });
    const started = client.start();
    client.close();
    await assert.rejects(started, /closed/);
    assert.throws(() => client.current());
  });
});
