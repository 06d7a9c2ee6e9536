// x-forwarded-client-cert's Subject: the client certificate's whole subject in RFC 2253 form, as
// Envoy writes it (OpenSSL's XN_FLAG_RFC2253). openssl's own `-nameopt RFC2253` is the reference.

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import forge from 'node-forge';
import { subjectRfc2253 } from '../src/core/tls/distinguished-name.js';
import { xfccFor } from '../src/core/tls/xfcc.js';

const dir = mkdtempSync(join(tmpdir(), 'meshgate-xfcc-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** A self-signed certificate with `subj` (openssl's `/type=value/…`, RDNs in certificate order). */
function opensslCert(subj: string, multiValued = false): string {
  const file = join(dir, `c${n++}.pem`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${file}.key`, '-out', file,
    '-subj', subj, '-utf8', '-days', '1', ...(multiValued ? ['-multivalue-rdn'] : []),
  ], { stdio: 'pipe' });
  return readFileSync(file, 'utf8');
}

function opensslSubject(pem: string): string {
  const out = execFileSync('openssl', ['x509', '-noout', '-subject', '-nameopt', 'RFC2253'], { input: pem, encoding: 'utf8' });
  return out.trim().replace(/^subject=/, '');
}

/** The fields xfccFor reads from a TLS socket's getPeerCertificate(). */
function peerOf(pem: string): PeerCertificate {
  const x = new X509Certificate(pem);
  return { raw: x.raw, subjectaltname: x.subjectAltName ?? '' } as unknown as PeerCertificate;
}

describe('XFCC Subject', () => {
  it('keeps emailAddress and DC, most specific first, with RFC 2253 escaping', () => {
    const pem = opensslCert('/DC=com/DC=example/O=Example, Inc./OU=eng/CN=bob/emailAddress=bob@example.com');
    const xfcc = xfccFor(peerOf(pem)) ?? '';
    assert.match(xfcc, /;Subject="emailAddress=bob@example\.com,CN=bob,OU=eng,O=Example\\, Inc\.,DC=example,DC=com"$/);
  });

  const cases: Array<[string, string, boolean?]> = [
    ['the classic order', '/C=US/ST=California/L=San Francisco/O=Lyft/OU=Lyft Engineering/CN=Test Server'],
    ['special characters, a leading # and spaces at both ends', '/CN=a\\+b;c<d>e"f\\\\g= h/O=#hash/OU= lead and trail '],
    ['non-ASCII as escaped UTF-8 bytes, control characters as hex', '/CN=caf\u00e9 \u00fcber/O=\u65e5\u672c/OU=tab\there'],
    ['attributes beyond the common six', '/serialNumber=1234/CN=x/UID=u1/street=Main St/postalCode=12345/title=T/GN=g/SN=s/initials=i/pseudonym=p/description=d/businessCategory=b/jurisdictionC=US/organizationIdentifier=VATDE-1'],
    ['a multi-valued RDN', '/CN=multi+OU=valued/O=o', true],
  ];
  for (const [name, subj, multi] of cases) {
    it(`matches openssl -nameopt RFC2253: ${name}`, () => {
      const pem = opensslCert(subj, multi);
      assert.equal(subjectRfc2253(new X509Certificate(pem).raw), opensslSubject(pem));
    });
  }

  it('prints an attribute type without a name as its OID and DER, and decodes a BMPString', () => {
    const keys = forge.pki.rsa.generateKeyPair(1024);
    const c = forge.pki.createCertificate();
    c.publicKey = keys.publicKey;
    c.serialNumber = '01';
    c.validity.notBefore = new Date();
    c.validity.notAfter = new Date(Date.now() + 86_400_000);
    const attrs = [
      { type: '1.2.3.4', value: 'abc' },
      { name: 'commonName', value: 'bmp\u00e9', valueTagClass: forge.asn1.Type.BMPSTRING },
    ] as unknown as forge.pki.CertificateField[];
    c.setSubject(attrs);
    c.setIssuer(attrs);
    c.sign(keys.privateKey, forge.md.sha256.create());
    const pem = forge.pki.certificateToPem(c);
    assert.equal(subjectRfc2253(new X509Certificate(pem).raw), 'CN=bmp\\C3\\A9,1.2.3.4=#1303616263');
    assert.equal(subjectRfc2253(new X509Certificate(pem).raw), opensslSubject(pem));
  });

  it('an unreadable certificate gives an empty subject, not a crash', () => {
    assert.equal(subjectRfc2253(Buffer.from('not a certificate')), '');
  });
});
