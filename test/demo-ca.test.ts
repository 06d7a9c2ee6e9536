// The demo CA (src/core/tls/demo-ca.ts): made once under a certs folder, with keys 0600 in 0700
// folders, then reused as it is; the server certificate is re-issued under the same CA only when it
// could not serve (expiring, a key that does not match, a host it does not name).

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDemoCertificates } from '../src/core/tls/demo-ca.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';

const roots: string[] = [];
after(() => {
  for (const d of roots) rmSync(d, { recursive: true, force: true });
});

function certsDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'meshgate-demo-ca-'));
  roots.push(root);
  return join(root, 'certs');
}

const read = (dir: string, f: string): string => readFileSync(join(dir, f), 'utf8');
const mode = (dir: string, f: string): number => statSync(join(dir, f)).mode & 0o777;
const FILES = ['demo-ca/ca.crt', 'demo-ca/ca.key', 'demo-tls/tls.crt', 'demo-tls/tls.key', 'demo-tls/ca.crt'];

describe('demo CA', () => {
  it('creates the CA and the demo-tls credential once: keys 0600 in 0700 folders, the server certificate signed by the CA', () => {
    const dir = certsDir();
    const first = ensureDemoCertificates(dir, ['shop.example.com'], { keyType: 'ec' });
    assert.deepEqual([...first.created].sort(), FILES.map((f) => join(dir, f)).sort());
    assert.equal(first.caCertFile, join(dir, 'demo-ca', 'ca.crt'));
    assert.equal(first.tlsDir, join(dir, 'demo-tls'));
    for (const f of ['demo-ca/ca.key', 'demo-tls/tls.key']) assert.equal(mode(dir, f), 0o600, f);
    for (const f of ['demo-ca', 'demo-tls', '.']) assert.equal(mode(dir, f), 0o700, f);
    const ca = new X509Certificate(read(dir, 'demo-ca/ca.crt'));
    const server = new X509Certificate(read(dir, 'demo-tls/tls.crt'));
    assert.ok(ca.ca, 'a CA certificate');
    assert.ok(server.checkIssued(ca) && server.verify(ca.publicKey));
    assert.equal(read(dir, 'demo-tls/ca.crt'), read(dir, 'demo-ca/ca.crt'));
    for (const n of ['DNS:*.example.com', 'DNS:example.com', 'DNS:localhost', 'IP Address:127.0.0.1', 'DNS:shop.example.com']) assert.ok(server.subjectAltName?.includes(n), n);
  });

  it('reuses everything on the next start, byte for byte', () => {
    const dir = certsDir();
    ensureDemoCertificates(dir, ['shop.example.com'], { keyType: 'ec' });
    const before = FILES.map((f) => read(dir, f));
    const again = ensureDemoCertificates(dir, ['shop.example.com'], { keyType: 'ec' });
    assert.deepEqual(again.created, []);
    assert.deepEqual(FILES.map((f) => read(dir, f)), before);
  });

  it('re-issues only the server certificate, under the same CA, when it is expiring, its key does not match, or a host is missing', () => {
    const dir = certsDir();
    ensureDemoCertificates(dir, ['shop.example.com'], { keyType: 'ec' });
    const caPem = read(dir, 'demo-ca/ca.crt');
    const serial = () => new X509Certificate(read(dir, 'demo-tls/tls.crt')).serialNumber;
    const reissued = (r: ReturnType<typeof ensureDemoCertificates>) => {
      assert.deepEqual([...r.created].sort(), ['demo-tls/ca.crt', 'demo-tls/tls.crt', 'demo-tls/tls.key'].map((f) => join(dir, f)).sort());
      assert.equal(read(dir, 'demo-ca/ca.crt'), caPem, 'the CA stays');
      assert.ok(new X509Certificate(read(dir, 'demo-tls/tls.crt')).checkIssued(new X509Certificate(caPem)));
    };

    let s = serial();
    // 340 days on, the 365-day server certificate has less than 30 left.
    const later = new Date(Date.now() + 340 * 86_400_000);
    reissued(ensureDemoCertificates(dir, ['shop.example.com'], { keyType: 'ec', now: () => later }));
    assert.notEqual(serial(), s);

    s = serial();
    writeFileSync(join(dir, 'demo-tls', 'tls.key'), issueCertificate({ subjectCN: 'x', days: 1, keyType: 'ec' }).keyPem, { mode: 0o600 });
    chmodSync(join(dir, 'demo-tls'), 0o755);
    reissued(ensureDemoCertificates(dir, ['shop.example.com'], { keyType: 'ec' }));
    assert.notEqual(serial(), s);
    assert.equal(mode(dir, 'demo-tls'), 0o700, 'a loosened key folder is made private again');
    assert.equal(mode(dir, 'demo-tls/tls.key'), 0o600);

    reissued(ensureDemoCertificates(dir, ['api.other.test'], { keyType: 'ec' }));
    assert.ok(new X509Certificate(read(dir, 'demo-tls/tls.crt')).subjectAltName?.includes('DNS:api.other.test'));
  });

  it('makes a new CA, and a server certificate under it, when the CA key is unreadable', () => {
    const dir = certsDir();
    ensureDemoCertificates(dir, ['shop.example.com'], { keyType: 'ec' });
    const oldCa = read(dir, 'demo-ca/ca.crt');
    writeFileSync(join(dir, 'demo-ca', 'ca.key'), 'not a key\n', { mode: 0o600 });
    const r = ensureDemoCertificates(dir, ['shop.example.com'], { keyType: 'ec' });
    assert.equal(r.created.length, 5);
    assert.notEqual(read(dir, 'demo-ca/ca.crt'), oldCa);
    assert.ok(new X509Certificate(read(dir, 'demo-tls/tls.crt')).checkIssued(new X509Certificate(read(dir, 'demo-ca/ca.crt'))));
  });
});
