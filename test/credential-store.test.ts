// The credential store and the certificate issuer: certificates are issued into a
// temporary certs folder, loaded the ways a Gateway server refers to them, and replaced on disk the
// ways operators and Kubernetes replace them (overwrite, `..data` symlink swap, folder appearing).

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { connect, createServer } from 'node:tls';
import { pino } from 'pino';
import { createCredentialStore, type FileCredentialStore } from '../src/core/tls/credential-store.js';
import { issueCertificate, selfSignedStandIn, type IssuedCertificate } from '../src/core/tls/issue-certificate.js';
import type { ServerTlsSettings } from '../src/core/model/istio.js';

const roots: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'meshgate-certs-'));
  roots.push(d);
  return d;
}
after(() => {
  for (const d of roots) rmSync(d, { recursive: true, force: true });
});

const CA = issueCertificate({ subjectCN: 'Test CA', days: 30, isCA: true, keyType: 'ec' });
const leaf = (cn = 'shop.example.com', extra: Partial<Parameters<typeof issueCertificate>[0]> = {}): IssuedCertificate =>
  issueCertificate({ subjectCN: cn, dnsNames: [cn, '*.example.com'], issuer: CA, days: 10, keyType: 'ec', ...extra });

function writeFiles(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: name.includes('key') ? 0o600 : 0o644 });
}

/** Polls until `check` holds; the cap is generous because it is only reached when something is broken. */
async function waitFor(what: string, check: () => boolean, capMs = 20_000): Promise<void> {
  const until = Date.now() + capMs;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function capturingLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) }), lines };
}

const simple = (credentialName: string): ServerTlsSettings => ({ mode: 'SIMPLE', credentialName });

describe('issueCertificate', () => {
  it('issues RSA and ECDSA leaves under RSA and ECDSA CAs, with DNS, IP and URI names', () => {
    for (const caType of ['rsa', 'ec'] as const) {
      const ca = issueCertificate({ subjectCN: `CA ${caType}`, days: 10, isCA: true, keyType: caType });
      const caCert = new X509Certificate(ca.certPem);
      assert.ok(caCert.ca, 'the CA certificate says CA:TRUE');
      assert.ok(caCert.verify(caCert.publicKey), 'the CA is self-signed');
      for (const keyType of ['rsa', 'ec'] as const) {
        const c = issueCertificate({ subjectCN: 'a', dnsNames: ['a.example.com'], ipAddresses: ['127.0.0.1'], uris: ['spiffe://cluster.local/ns/x/sa/y'], issuer: ca, days: 1, keyType });
        const x = new X509Certificate(c.certPem);
        assert.ok(x.checkIssued(caCert) && x.verify(caCert.publicKey), `${keyType} leaf verifies under the ${caType} CA`);
        assert.equal(x.ca, false);
        assert.match(x.subjectAltName ?? '', /DNS:a\.example\.com, IP Address:127\.0\.0\.1, URI:spiffe:\/\/cluster\.local\/ns\/x\/sa\/y/);
      }
    }
  });

  it('serves a TLS handshake that a client trusting only the CA accepts', async () => {
    const c = leaf('shop.example.com');
    const server = createServer({ cert: c.certPem, key: c.keyPem }, (s) => s.end('hi'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const authorized = await new Promise<boolean>((res, rej) => {
        const s = connect({ port, host: '127.0.0.1', servername: 'shop.example.com', ca: CA.certPem }, () => {
          res(s.authorized);
          s.end();
        });
        s.on('error', rej);
      });
      assert.equal(authorized, true);
    } finally {
      server.close();
    }
  });

  it('selfSignedStandIn covers the hosts for the given hours', () => {
    const c = selfSignedStandIn(['a.example.com', '10.0.0.1'], 2);
    const x = new X509Certificate(c.certPem);
    assert.ok(x.verify(x.publicKey), 'self-signed');
    assert.match(x.subjectAltName ?? '', /DNS:a\.example\.com, IP Address:10\.0\.0\.1/);
    const hours = (new Date(x.validTo).getTime() - new Date(x.validFrom).getTime()) / 3600_000;
    assert.ok(Math.abs(hours - 2) < 0.01, `valid for ${hours} hours`);
  });
});

describe('credential store: resolving', () => {
  const stores: FileCredentialStore[] = [];
  const open = (certsDir: string, extra: { logger?: pino.Logger } = {}): FileCredentialStore => {
    const s = createCredentialStore({ certsDir, debounceMs: 50, ...extra });
    stores.push(s);
    return s;
  };
  after(async () => {
    for (const s of stores) await s.close();
  });

  it('loads credentialName from <certs>/<name>/tls.crt + tls.key, with facts filled in', () => {
    const dir = tempDir();
    const c = leaf();
    writeFiles(join(dir, 'shop'), { 'tls.crt': c.certPem + CA.certPem, 'tls.key': c.keyPem, 'ca.crt': CA.certPem });
    const store = open(dir);
    const cred = store.forServer(simple('shop'));
    assert.ok(cred);
    assert.equal(cred.source, 'file');
    assert.equal(cred.subject, 'CN=shop.example.com');
    assert.equal(cred.issuer, 'CN=Test CA');
    assert.deepEqual(cred.sans, ['shop.example.com', '*.example.com']);
    assert.ok(cred.notAfter.getTime() > Date.now() && cred.notBefore.getTime() < Date.now());
    assert.equal(cred.caPem, CA.certPem);
    assert.match(cred.version, /^[0-9a-f]{16}$/);
    assert.match(cred.description, /credential shop/);
    assert.equal(store.forServer(simple('shop')), cred, 'cached: the same object while nothing changed');
    assert.deepEqual(store.list().map((e) => [e.name, e.problems.length]), [['shop', 0]]);
  });

  it("accepts Istio's Opaque form (cert, key, cacert) and the separate <name>-cacert credential", () => {
    const dir = tempDir();
    const c = leaf();
    writeFiles(join(dir, 'opaque'), { cert: c.certPem, key: c.keyPem, cacert: CA.certPem });
    writeFiles(join(dir, 'split'), { 'tls.crt': c.certPem, 'tls.key': c.keyPem });
    writeFiles(join(dir, 'split-cacert'), { 'ca.crt': CA.certPem });
    const store = open(dir);
    assert.equal(store.forServer({ mode: 'MUTUAL', credentialName: 'opaque' })?.caPem, CA.certPem);
    assert.equal(store.forServer({ mode: 'MUTUAL', credentialName: 'split' })?.caPem, CA.certPem);
  });

  it('MUTUAL without any client CA is not served (Node would fall back to public roots)', () => {
    const dir = tempDir();
    const c = leaf();
    writeFiles(join(dir, 'noca'), { 'tls.crt': c.certPem, 'tls.key': c.keyPem });
    const store = open(dir);
    assert.ok(store.forServer(simple('noca')), 'SIMPLE needs no CA');
    assert.equal(store.forServer({ mode: 'MUTUAL', credentialName: 'noca' }), undefined);
    const problems = store.problemsFor({ mode: 'MUTUAL', credentialName: 'noca' });
    assert.match(problems.map((p) => p.message).join('\n'), /MUTUAL needs a CA.*noca-cacert\/ca\.crt/);
  });

  it('loads serverCertificate / privateKey / caCertificates paths, absolute and relative to the cwd', () => {
    const dir = tempDir();
    const c = leaf();
    writeFiles(dir, { 'server.pem': c.certPem, 'server-key.pem': c.keyPem, 'ca.pem': CA.certPem });
    const store = open(join(dir, 'unused'));
    const abs = store.forServer({ mode: 'MUTUAL', serverCertificate: join(dir, 'server.pem'), privateKey: join(dir, 'server-key.pem'), caCertificates: join(dir, 'ca.pem') });
    assert.ok(abs);
    assert.equal(abs.caPem, CA.certPem);
    const rel = (f: string): string => relative(process.cwd(), join(dir, f));
    const viaRelative = store.forServer({ mode: 'SIMPLE', serverCertificate: rel('server.pem'), privateKey: rel('server-key.pem') });
    assert.equal(viaRelative?.version, createCredentialStore({ certsDir: dir, watch: false }).forServer({ mode: 'SIMPLE', serverCertificate: join(dir, 'server.pem'), privateKey: join(dir, 'server-key.pem') })?.version);
    assert.equal(store.forServer({ mode: 'SIMPLE', serverCertificate: join(dir, 'nope.pem'), privateKey: join(dir, 'server-key.pem') }), undefined);
    assert.match(store.problemsFor({ mode: 'SIMPLE', serverCertificate: join(dir, 'nope.pem'), privateKey: join(dir, 'server-key.pem') })[0]!.message, /nope\.pem does not exist/);
  });

  it('refuses a key that does not match the certificate, and says so', () => {
    const dir = tempDir();
    writeFiles(join(dir, 'bad'), { 'tls.crt': leaf().certPem, 'tls.key': leaf().keyPem });
    const { logger, lines } = capturingLogger();
    const store = open(dir, { logger });
    assert.equal(store.forServer(simple('bad')), undefined);
    const [entry] = store.list();
    assert.equal(entry?.credential, undefined);
    assert.deepEqual(entry?.problems.map((p) => [p.severity, p.message]), [['error', 'tls.key does not match tls.crt']]);
    assert.ok(lines.some((l) => l.includes('credential bad: tls.key does not match tls.crt')), lines.join(''));
  });

  it('refuses garbage and names that would leave the certs folder', () => {
    const dir = tempDir();
    writeFiles(join(dir, 'garbage'), { 'tls.crt': 'not a certificate', 'tls.key': leaf().keyPem });
    const store = open(dir);
    assert.equal(store.forServer(simple('garbage')), undefined);
    assert.match(store.problemsFor(simple('garbage'))[0]!.message, /tls\.crt holds no PEM certificate/);
    assert.equal(store.forServer(simple('../etc')), undefined);
    assert.match(store.problemsFor(simple('../etc'))[0]!.message, /not a valid credential name/);
  });

  it('serves an expired or not-yet-valid certificate with a warning', () => {
    const dir = tempDir();
    const expired = leaf('old.example.com', { notBefore: new Date(Date.now() - 10 * 86400_000), days: 1 });
    const future = leaf('new.example.com', { notBefore: new Date(Date.now() + 10 * 86400_000), days: 1 });
    writeFiles(join(dir, 'old'), { 'tls.crt': expired.certPem, 'tls.key': expired.keyPem });
    writeFiles(join(dir, 'new'), { 'tls.crt': future.certPem, 'tls.key': future.keyPem });
    const store = open(dir);
    assert.ok(store.forServer(simple('old')));
    assert.ok(store.forServer(simple('new')));
    assert.deepEqual(store.problemsFor(simple('old')).map((p) => p.severity), ['warning']);
    assert.match(store.problemsFor(simple('old'))[0]!.message, /expired on/);
    assert.match(store.problemsFor(simple('new'))[0]!.message, /not valid before/);
  });

  it('credentialNames: the first is primary, the second an alternate; one version covers both', () => {
    const dir = tempDir();
    const rsa = leaf('shop.example.com', { keyType: 'rsa' });
    const ec = leaf('shop.example.com', { keyType: 'ec' });
    writeFiles(join(dir, 'rsa'), { 'tls.crt': rsa.certPem, 'tls.key': rsa.keyPem });
    writeFiles(join(dir, 'ec'), { 'tls.crt': ec.certPem, 'tls.key': ec.keyPem });
    const store = open(dir);
    const both = store.forServer({ mode: 'SIMPLE', credentialNames: ['rsa', 'ec'] });
    assert.ok(both);
    assert.equal(both.certPem, rsa.certPem);
    assert.deepEqual(both.alternates?.map((a) => a.certPem), [ec.certPem]);
    const rsaOnly = store.forServer(simple('rsa'));
    assert.notEqual(both.version, rsaOnly?.version);
    assert.equal(store.forServer({ mode: 'SIMPLE', credentialNames: ['rsa', 'ec'] }), both, 'cached');
    // One of the two missing: the other still serves, alone.
    const one = store.forServer({ mode: 'SIMPLE', credentialNames: ['missing', 'ec'] });
    assert.equal(one?.certPem, ec.certPem);
    assert.equal(one?.alternates, undefined);
  });
});

describe('credential store: watching', () => {
  const stores: FileCredentialStore[] = [];
  const open = (certsDir: string, logger?: pino.Logger): FileCredentialStore => {
    const s = createCredentialStore({ certsDir, debounceMs: 50, ...(logger ? { logger } : {}) });
    stores.push(s);
    return s;
  };
  after(async () => {
    for (const s of stores) await s.close();
  });

  it('swaps in a valid replacement and fires onChange', async () => {
    const dir = tempDir();
    const first = leaf();
    writeFiles(join(dir, 'shop'), { 'tls.crt': first.certPem, 'tls.key': first.keyPem });
    const store = open(dir);
    const before = store.forServer(simple('shop'));
    assert.ok(before);
    let changes = 0;
    store.onChange(() => changes++);
    const second = leaf();
    writeFiles(join(dir, 'shop'), { 'tls.crt': second.certPem, 'tls.key': second.keyPem });
    await waitFor('onChange after the replacement', () => changes > 0 && store.forServer(simple('shop'))?.certPem === second.certPem);
    assert.notEqual(store.forServer(simple('shop'))?.version, before.version);
  });

  it('keeps the last good certificate when the replacement is mismatched or broken', async () => {
    const dir = tempDir();
    const good = leaf();
    writeFiles(join(dir, 'shop'), { 'tls.crt': good.certPem, 'tls.key': good.keyPem });
    const { logger, lines } = capturingLogger();
    const store = open(dir, logger);
    const kept = store.forServer(simple('shop'));
    assert.ok(kept);
    writeFiles(join(dir, 'shop'), { 'tls.crt': leaf().certPem, 'tls.key': leaf().keyPem });
    await waitFor('the mismatch to be recorded', () => store.problemsFor(simple('shop')).length > 0);
    assert.equal(store.forServer(simple('shop')), kept, 'the old material keeps serving');
    const until = kept.notAfter.toISOString();
    assert.equal(store.problemsFor(simple('shop'))[0]!.message, `tls.key does not match tls.crt; keeping the certificate valid until ${until}`);
    assert.ok(lines.some((l) => l.includes(`credential shop: tls.key does not match tls.crt; keeping the certificate valid until ${until}`)), lines.join(''));

    writeFiles(join(dir, 'shop'), { 'tls.crt': '-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n' });
    await waitFor('the broken certificate to be recorded', () => /does not parse/.test(store.problemsFor(simple('shop'))[0]?.message ?? ''));
    assert.equal(store.forServer(simple('shop')), kept);

    // Putting the good pair back clears the problem; the version is the same, so no swap is needed.
    writeFiles(join(dir, 'shop'), { 'tls.crt': good.certPem, 'tls.key': good.keyPem });
    await waitFor('the problem to clear', () => store.problemsFor(simple('shop')).length === 0);
    assert.equal(store.forServer(simple('shop'))?.version, kept.version);
  });

  it("follows a Kubernetes Secret mount's ..data symlink swap", async () => {
    const dir = tempDir();
    const cred = join(dir, 'mounted');
    const v1 = leaf();
    writeFiles(join(cred, '..2024_01_01'), { 'tls.crt': v1.certPem, 'tls.key': v1.keyPem });
    symlinkSync('..2024_01_01', join(cred, '..data'));
    symlinkSync('..data/tls.crt', join(cred, 'tls.crt'));
    symlinkSync('..data/tls.key', join(cred, 'tls.key'));
    const store = open(dir);
    assert.equal(store.forServer(simple('mounted'))?.certPem, v1.certPem);
    let changes = 0;
    store.onChange(() => changes++);

    // What the kubelet does: new timestamped folder, new symlink, rename over ..data, old folder gone.
    const v2 = leaf();
    writeFiles(join(cred, '..2024_01_02'), { 'tls.crt': v2.certPem, 'tls.key': v2.keyPem });
    symlinkSync('..2024_01_02', join(cred, '..data_tmp'));
    renameSync(join(cred, '..data_tmp'), join(cred, '..data'));
    rmSync(join(cred, '..2024_01_01'), { recursive: true });
    await waitFor('the swapped material', () => changes > 0 && store.forServer(simple('mounted'))?.certPem === v2.certPem);
  });

  it('a credential that was missing becomes available when its folder appears', async () => {
    const dir = tempDir();
    const store = open(dir);
    assert.equal(store.forServer(simple('later')), undefined);
    assert.match(store.problemsFor(simple('later'))[0]!.message, /later does not exist/);
    let changes = 0;
    store.onChange(() => changes++);
    const c = leaf();
    // Written aside and renamed into place, as deploy tools do.
    writeFiles(join(dir, 'later.tmp'), { 'tls.crt': c.certPem, 'tls.key': c.keyPem });
    renameSync(join(dir, 'later.tmp'), join(dir, 'later'));
    await waitFor('the credential to appear', () => changes > 0 && store.forServer(simple('later')) !== undefined);
    assert.deepEqual(store.problemsFor(simple('later')), []);

    // Replaced again inside the folder that appeared: the new folder is watched too.
    const c2 = leaf();
    writeFiles(join(dir, 'later'), { 'tls.crt': c2.certPem, 'tls.key': c2.keyPem });
    await waitFor('the second replacement', () => store.forServer(simple('later'))?.certPem === c2.certPem);
  });

  it('close() stops watching and is safe twice', async () => {
    const dir = tempDir();
    const c = leaf();
    writeFiles(join(dir, 'shop'), { 'tls.crt': c.certPem, 'tls.key': c.keyPem });
    const store = createCredentialStore({ certsDir: dir, debounceMs: 10 });
    assert.ok(store.forServer(simple('shop')));
    let changes = 0;
    store.onChange(() => changes++);
    await store.close();
    await store.close();
    const c2 = leaf();
    writeFiles(join(dir, 'shop'), { 'tls.crt': c2.certPem, 'tls.key': c2.keyPem });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(changes, 0);
  });
});
