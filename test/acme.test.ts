// Automatic certificates: cert-manager's Issuer/Certificate validation, the renewal schedule, the
// stand-in and failure rules without a server, and the whole cycle against a real ACME server
// (pebble): stand-in, issuance, renewal, an outage during renewal, and recovery.

import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import acme from 'acme-client';
import { pino, type Logger } from 'pino';
import { runCerts } from '../src/cli/certs.js';
import { parseConfigText } from '../src/core/config/load.js';
import { validateResource } from '../src/core/config/validate.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import { SnapshotHolder } from '../src/core/snapshot/holder.js';
import { selfSignedStandIn } from '../src/core/tls/issue-certificate.js';
import { AcmeManager, type CertificateWritten } from '../src/gateway/acme/acme-manager.js';
import { accountKey } from '../src/gateway/acme/acme-order.js';
import { renewalTime, retryDelay } from '../src/gateway/acme/renewal-policy.js';
import { wantedCertificates } from '../src/gateway/acme/wanted-certificates.js';
import { certificateYaml, gatewayYaml, issuerYaml } from './helpers/cert-manager-yaml.js';
import { startPebble } from './helpers/pebble.js';
import { seededRandom } from './helpers/random.js';

// ---------------------------------------------------------------- configuration

function holderFor(yaml: string): SnapshotHolder {
  const loaded = parseConfigText(yaml, 'acme.yaml');
  assert.deepEqual(loaded.problems, []);
  const { snapshot, problems } = buildSnapshot(loaded, { kind: 'gateway', labels: { istio: 'ingressgateway' }, namespace: 'istio-system' }, { random: () => 0.5, load: { active: () => 0 } });
  assert.deepEqual(problems.filter((p) => p.severity === 'error'), []);
  const holder = new SnapshotHolder();
  holder.swap(snapshot);
  return holder;
}

/** A pino logger whose lines the test can read. */
function capturedLogger(): { logger: Logger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { logger, lines };
}

async function serialOnDisk(certsDir: string, name: string): Promise<string> {
  return new X509Certificate(await readFile(join(certsDir, name, 'tls.crt'), 'utf8')).serialNumber;
}

async function metaOnDisk(certsDir: string, name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(certsDir, name, 'meta.json'), 'utf8')) as Record<string, unknown>;
}

function splitChain(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
}

/** Every link is signed by the next, and the last by `rootPem`. */
function assertChainVerifies(chainPem: string, rootPem: string): void {
  const chain = splitChain(chainPem);
  assert.ok(chain.length >= 2, 'leaf and intermediate');
  const root = new X509Certificate(rootPem);
  const all = [...chain, root];
  for (let i = 0; i + 1 < all.length; i++) {
    assert.ok(all[i]!.checkIssued(all[i + 1]!), `certificate ${i} names ${i + 1} as its issuer`);
    assert.ok(all[i]!.verify(all[i + 1]!.publicKey), `certificate ${i} is signed by ${i + 1}`);
  }
}

// ---------------------------------------------------------------- validation

describe('cert-manager resources: validation', () => {
  const problemsOf = (yaml: string): string[] =>
    parseConfigText(yaml, 't.yaml').resources.flatMap((r) => validateResource(r).map((p) => `${p.severity} ${p.field}: ${p.message}`));

  it('accepts an ACME issuer, a ClusterIssuer and a Certificate as cert-manager users write them', () => {
    assert.deepEqual(problemsOf(issuerYaml('https://acme-v02.api.letsencrypt.org/directory')), []);
    assert.deepEqual(problemsOf(issuerYaml('https://acme-v02.api.letsencrypt.org/directory', 'ClusterIssuer', 'le')), []);
    assert.deepEqual(problemsOf(certificateYaml('web', ['a.example.com', 'b.example.com'], 'pebble', '  renewBefore: 720h\n  duration: 2160h\n  privateKey: {algorithm: ECDSA, size: 384}\n')), []);
  });

  it('reports what would make issuance impossible', () => {
    assert.deepEqual(problemsOf(certificateYaml('web', ['*.example.com'])), [
      'error spec.dnsNames[0]: "*.example.com": HTTP-01 cannot prove control of a wildcard name, and meshgate answers HTTP-01 only; list the names you serve instead',
    ]);
    assert.deepEqual(problemsOf(certificateYaml('web', [])), ['error spec.dnsNames: a Certificate needs at least one DNS name']);
    assert.deepEqual(problemsOf(certificateYaml('web', ['Bad_Name.example.com'])), ['error spec.dnsNames[0]: host "Bad_Name.example.com" is invalid: label "Bad_Name" may use only letters, digits and \'-\'']);
    assert.deepEqual(problemsOf(certificateYaml('acme', ['a.example.com'])), [
      'error spec.secretName: "acme" is reserved: certs/acme/ held ACME account keys before privateKeySecretRef did',
    ]);
    assert.deepEqual(problemsOf(certificateYaml('web', ['a.example.com'], 'pebble', '  privateKey: {algorithm: ECDSA, size: 2048}\n')), [
      'error spec.privateKey.size: 2048 is not a ECDSA key size; use one of 256, 384, 521',
    ]);
    const noSecret = `apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec:\n  dnsNames: [a.example.com]\n  issuerRef: {name: x, group: awspca.cert-manager.io}\n`;
    assert.deepEqual(problemsOf(noSecret), [
      'error spec.secretName: is required: it is the credentialName Gateway servers use',
      'error spec.issuerRef.group: external issuers (awspca.cert-manager.io) are not supported; meshgate issues from cert-manager.io ACME issuers only',
    ]);
    const dnsOnly = issuerYaml('http://acme.example.com/dir').replace('- http01: {ingress: {ingressClassName: istio}}', '- dns01: {cloudflare: {}}');
    assert.deepEqual(problemsOf(dnsOnly), [
      'error spec.acme.server: the ACME directory must be an https:// URL, not http://',
      'warning spec.acme.solvers[0].dns01: meshgate answers HTTP-01 challenges only; this DNS-01 solver is ignored',
      'error spec.acme.solvers: meshgate answers HTTP-01 challenges only: add a solver with http01 (e.g. `- http01: {ingress: {}}`)',
    ]);
  });

  it('warns about cert-manager fields it does not use, and non-ACME issuers', () => {
    assert.deepEqual(problemsOf(certificateYaml('web', ['a.example.com'], 'pebble', '  usages: [server auth]\n')), [
      'warning spec.usages: a cert-manager field meshgate does not use for ACME certificates; ignored',
    ]);
    const selfSigned = `apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: self}\nspec:\n  selfSigned: {}\n`;
    assert.deepEqual(problemsOf(selfSigned), ['warning spec.selfSigned: meshgate obtains certificates only from ACME issuers; Certificates that use this selfSigned issuer are not issued']);
  });
});

describe('ACME problems that need the whole gateway', () => {
  const problemsOf = (yaml: string): string[] => {
    const { problems } = buildSnapshot(parseConfigText(yaml, 't.yaml'), { kind: 'gateway', labels: { istio: 'ingressgateway' }, namespace: 'istio-system' }, { random: () => 0.5, load: { active: () => 0 } });
    return problems.map((p) => `${p.severity} ${p.resource} ${p.field}: ${p.message}`);
  };
  const httpsOnly = gatewayYaml('site', 'site.example.test', { plainHttp: false });
  const base = issuerYaml('https://acme.example.test/dir') + '---\n' + certificateYaml('site', ['site.example.test']) + '---\n';

  it('warns when a server serves an ACME certificate but no plain HTTP server on port 80 can answer HTTP-01', () => {
    assert.deepEqual(problemsOf(base + httpsOnly), [
      'warning Gateway istio-system/gw spec.servers[0].tls.credentialName: credential site is issued by ACME (Certificate istio-system/site), ' +
        'but this gateway has no plain HTTP server on port 80 to answer the HTTP-01 challenge: every order fails and is retried; add a server with port {number: 80, protocol: HTTP}',
    ]);
    const on8080 = httpsOnly + '  - port: {number: 8080, name: http-alt, protocol: HTTP}\n    hosts: [site.example.test]\n';
    assert.match(problemsOf(base + on8080).join('\n'), /HTTP-01 challenge \(ACME servers do not try port 8080\)/);
    assert.deepEqual(problemsOf(base + gatewayYaml('site', 'site.example.test')), [], 'port 80 plain HTTP: nothing to say');
    assert.deepEqual(problemsOf(httpsOnly), [], 'a credential no Certificate writes is not ACME');
  });

  it('warns when privateKeySecretRef names the secret of a Certificate, and the manager does not order with it', () => {
    const clash = issuerYaml('https://acme.example.test/dir').replace('pebble-account', 'site') + '---\n' + certificateYaml('site', ['site.example.test']) + '---\n' + gatewayYaml('site', 'site.example.test');
    assert.deepEqual(problemsOf(clash), [
      'warning Issuer istio-system/pebble spec.acme.privateKeySecretRef.name: site is also the secretName of Certificate istio-system/site: ' +
        'the ACME account key and that certificate would overwrite each other; its Certificates are not issued until privateKeySecretRef names a Secret of its own',
    ]);
    const w = wantedCertificates(holderFor(clash).current()!).wanted.get('site');
    assert.equal(w?.issuer, undefined);
    assert.equal(w?.waiting, "Issuer istio-system/pebble's privateKeySecretRef site is also the secretName of Certificate istio-system/site");
  });

  it('privateKeySecretRef.key must be a file name', () => {
    const problems = parseConfigText(issuerYaml('https://acme.example.test/dir').replace('{name: pebble-account}', '{name: pebble-account, key: ../x}'), 't.yaml')
      .resources.flatMap((r) => validateResource(r).map((p) => `${p.severity} ${p.field}: ${p.message}`));
    assert.deepEqual(problems, [`error spec.acme.privateKeySecretRef.key: "../x" is not a valid Secret key (a-z, A-Z, 0-9, '-', '_' and '.')`]);
  });
});

describe('renewal schedule', () => {
  it('renews at two-thirds of the lifetime, or renewBefore the end', () => {
    assert.equal(renewalTime(0, 90_000), 60_000);
    assert.equal(renewalTime(0, 90_000, 10_000), 80_000);
    assert.equal(renewalTime(0, 90_000, 90_000), 60_000, 'a renewBefore longer than the lifetime falls back to two-thirds');
  });

  it('backs off exponentially, with jitter in the upper half, up to the ceiling', () => {
    const base = { baseMs: 60_000, maxMs: 3_600_000 };
    assert.deepEqual([1, 2, 3].map((n) => retryDelay(n, () => 1, base)), [60_000, 120_000, 240_000]);
    assert.deepEqual([1, 2, 3].map((n) => retryDelay(n, () => 0, base)), [30_000, 60_000, 120_000]);
    assert.equal(retryDelay(20, () => 1, base), 3_600_000);
  });
});

// ---------------------------------------------------------------- account key

describe('ACME account key (privateKeySecretRef)', () => {
  const at = { secretName: 'le-account', key: 'tls.key', legacyFolder: 'issuer-istio-system-le' };

  it('is made once at certs/<privateKeySecretRef.name>/tls.key, 0600, also when two orders race for it', async () => {
    const certsDir = await mkdtemp(join(tmpdir(), 'meshgate-acme-key-'));
    try {
      const [a, b] = await Promise.all([accountKey(certsDir, at), accountKey(certsDir, at)]);
      assert.equal(a.pem, b.pem);
      assert.equal(a.file, join(certsDir, 'le-account', 'tls.key'));
      assert.equal([a.note, b.note].filter(Boolean).length, 1, 'one of them created it');
      assert.equal(await readFile(a.file, 'utf8'), a.pem);
      assert.equal((await stat(a.file)).mode & 0o777, 0o600);
      assert.equal(createPrivateKey(a.pem).asymmetricKeyType, 'ec');
      const again = await accountKey(certsDir, at);
      assert.deepEqual(again, { pem: a.pem, file: a.file });
      const other = await accountKey(certsDir, { ...at, key: 'account.pem' });
      assert.notEqual(other.pem, a.pem, 'privateKeySecretRef.key names the file');
      assert.equal(other.file, join(certsDir, 'le-account', 'account.pem'));
    } finally {
      await rm(certsDir, { recursive: true, force: true });
    }
  });

  it('moves a key from the old place (certs/acme/<issuer>/account.key), so the ACME account is kept', async () => {
    const certsDir = await mkdtemp(join(tmpdir(), 'meshgate-acme-key-'));
    try {
      const old = join(certsDir, 'acme', 'issuer-istio-system-le', 'account.key');
      await mkdir(join(certsDir, 'acme', 'issuer-istio-system-le'), { recursive: true });
      const pem = (await acme.crypto.createPrivateEcdsaKey()).toString();
      await writeFile(old, pem, { mode: 0o600 });
      const moved = await accountKey(certsDir, at);
      assert.equal(moved.pem, pem);
      assert.equal(moved.note, `moved the ACME account key from ${old} to ${moved.file} (privateKeySecretRef)`);
      assert.equal(await readFile(join(certsDir, 'le-account', 'tls.key'), 'utf8'), pem);
      assert.equal((await stat(moved.file)).mode & 0o777, 0o600);
      await assert.rejects(stat(join(certsDir, 'acme')), 'the emptied old folders are gone');
      assert.deepEqual(await accountKey(certsDir, at), { pem, file: moved.file });
    } finally {
      await rm(certsDir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- without an ACME server

describe('AcmeManager without a reachable ACME server', () => {
  it('serves a stand-in while the issuer is missing, and says why once', async () => {
    const certsDir = await mkdtemp(join(tmpdir(), 'meshgate-acme-'));
    const { logger, lines } = capturedLogger();
    const holder = holderFor(certificateYaml('site', ['site.example.test'], 'nope') + '---\n' + gatewayYaml('site', 'site.example.test'));
    const manager = new AcmeManager({ certsDir, holder, logger, renewCheckMs: 3_600_000 });
    try {
      manager.start();
      await manager.checkNow();
      const serial = await serialOnDisk(certsDir, 'site');
      assert.equal((await metaOnDisk(certsDir, 'site')).source, 'self-signed');
      await manager.checkNow();
      assert.equal(await serialOnDisk(certsDir, 'site'), serial, 'a fresh stand-in is not rewritten at every check');
      assert.equal(lines.filter((l) => l.msg.includes('cannot be issued: Issuer istio-system/nope not found')).length, 1);
      assert.ok(lines.some((l) => l.msg === 'certificate istio-system/site: waiting for ACME (Issuer istio-system/nope not found); serving a self-signed stand-in'));
      assert.equal(manager.status()[0]?.state, 'waiting');
    } finally {
      await manager.close();
      await rm(certsDir, { recursive: true, force: true });
    }
  });

  it('never replaces a real certificate with the stand-in; a failed order keeps it and schedules a retry', async () => {
    const certsDir = await mkdtemp(join(tmpdir(), 'meshgate-acme-'));
    const own = selfSignedStandIn(['site.example.test'], 24 * 30); // stands for a certificate someone put there
    await mkdir(join(certsDir, 'site'));
    await writeFile(join(certsDir, 'site', 'tls.crt'), own.certPem);
    await writeFile(join(certsDir, 'site', 'tls.key'), own.keyPem);
    const { logger, lines } = capturedLogger();
    const holder = holderFor(issuerYaml('https://127.0.0.1:1/dir') + '---\n' + certificateYaml('site', ['site.example.test']) + '---\n' + gatewayYaml('site', 'site.example.test'));
    let now = 1_000_000_000_000;
    const manager = new AcmeManager({ certsDir, holder, logger, now: () => now, random: () => 1, renewCheckMs: 3_600_000, retry: { baseMs: 1000, maxMs: 8000 } });
    const written: CertificateWritten[] = [];
    manager.onWrite((e) => written.push(e));
    try {
      manager.start();
      await manager.checkNow();
      assert.deepEqual(written, [], 'nothing written over the existing certificate');
      assert.equal(await readFile(join(certsDir, 'site', 'tls.crt'), 'utf8'), own.certPem);
      const [s] = manager.status();
      assert.equal(s?.state, 'retrying');
      assert.equal(s?.failures, 1);
      assert.match(s?.lastError ?? '', /cannot reach the ACME server 127\.0\.0\.1:1: connect ECONNREFUSED/);
      assert.equal(s?.nextAttemptAt, new Date(now + 1000).toISOString());
      assert.equal(lines.filter((l) => l.msg.includes('ACME renewal failed')).length, 1);
      await manager.checkNow();
      assert.equal(manager.status()[0]?.failures, 1, 'no new attempt before the back-off has passed');
      now += 1000;
      await manager.checkNow();
      assert.equal(manager.status()[0]?.failures, 2);
      assert.equal(manager.status()[0]?.nextAttemptAt, new Date(now + 2000).toISOString(), 'the delay doubles');
      assert.equal(manager.challengeResponse('unknown'), undefined);
    } finally {
      await manager.close();
      await rm(certsDir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- against pebble

test('ACME against pebble: stand-in, issuance, renewal, outage and recovery', async (t) => {
  let manager: AcmeManager | undefined;
  // The HTTP-01 responder, as the gateway's plain HTTP listeners answer challenges.
  const responder: Server = createServer(async (req, res) => {
    const m = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '');
    const answer = m ? await manager?.challengeResponse(m[1]!) : undefined;
    res.writeHead(answer ? 200 : 404, { 'content-type': 'text/plain' }).end(answer ?? '');
  });
  await new Promise<void>((r) => responder.listen(0, '127.0.0.1', r));
  const httpPort = (responder.address() as { port: number }).port;
  t.after(() => new Promise<void>((r) => responder.close(() => r())));

  const pebble = await startPebble(t, { httpPort });
  if (!pebble) return;
  t.after(() => pebble.close());
  // A trust mistake would otherwise cost 75 s of acme-client retries.
  const settings = acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } };
  const savedRetries = settings.acmeSettings.retryMaxAttempts;
  settings.acmeSettings.retryMaxAttempts = 1;
  t.after(() => {
    settings.acmeSettings.retryMaxAttempts = savedRetries;
  });

  const certsDir = await mkdtemp(join(tmpdir(), 'meshgate-acme-'));
  t.after(() => rm(certsDir, { recursive: true, force: true }));
  const yaml = issuerYaml(pebble.directoryUrl) + '---\n' + certificateYaml('demo-acme', ['acme.example.test']) + '---\n' + gatewayYaml('demo-acme', 'acme.example.test');
  const holder = holderFor(yaml);
  // The same configuration as a folder, for `meshgate certs`.
  const configDir = join(certsDir, '..', `${basename(certsDir)}-config`);
  await mkdir(configDir);
  t.after(() => rm(configDir, { recursive: true, force: true }));
  await writeFile(join(configDir, 'all.yaml'), yaml);
  const certsReport = async (): Promise<{ code: number; out: string }> => {
    let out = '';
    const code = await runCerts(['--config', configDir, '--certs', certsDir], (text) => void (out += text));
    return { code, out };
  };
  const { logger, lines } = capturedLogger();
  let now = Date.now();
  manager = new AcmeManager({
    certsDir, holder, logger, acmeCa: pebble.caPem, now: () => now, random: seededRandom(7), renewCheckMs: 3_600_000, retry: { baseMs: 60_000, maxMs: 600_000 },
    orderPollMs: 50, // pebble validates within milliseconds; acme-client would first wait 5 s
  });
  t.after(() => manager?.close());
  const written: Array<CertificateWritten & { metaSource: unknown }> = [];
  manager.onWrite((e) => {
    // Read at the moment of writing: the stand-in must really have been on disk first.
    const meta = JSON.parse(readFileSync(join(certsDir, e.secretName, 'meta.json'), 'utf8')) as Record<string, unknown>;
    written.push({ ...e, metaSource: meta.source });
  });
  const dir = join(certsDir, 'demo-acme');

  let firstSerial = '';
  await t.test('writes a stand-in, then a certificate from the ACME server', async (st) => {
    const started = performance.now();
    manager!.start();
    await manager!.checkNow();
    st.diagnostic(`first issuance (stand-in + order + write) took ${Math.round(performance.now() - started)} ms`);
    assert.deepEqual(written.map((w) => [w.source, w.metaSource]), [['self-signed', 'self-signed'], ['acme', 'acme']], lines.map((l) => l.msg).join('\n'));
    assertChainVerifies(await readFile(join(dir, 'tls.crt'), 'utf8'), await pebble.rootPem());
    const leaf = new X509Certificate(await readFile(join(dir, 'tls.crt'), 'utf8'));
    assert.equal(leaf.subjectAltName, 'DNS:acme.example.test');
    assert.ok(leaf.checkPrivateKey(createPrivateKey(await readFile(join(dir, 'tls.key'), 'utf8'))));
    assert.equal((await stat(join(dir, 'tls.key'))).mode & 0o777, 0o600);
    // The account key is where privateKeySecretRef points, laid out like the Secret cert-manager would write.
    assert.equal((await stat(join(certsDir, 'pebble-account', 'tls.key'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(certsDir, 'pebble-account'))).mode & 0o777, 0o700);
    assert.ok(lines.some((l) => l.msg === `Issuer istio-system/pebble: created the ACME account key ${join(certsDir, 'pebble-account', 'tls.key')}`));
    const meta = await metaOnDisk(certsDir, 'demo-acme');
    assert.deepEqual(meta, { source: 'acme', issuer: 'Issuer istio-system/pebble', server: pebble.directoryUrl, notAfter: new Date(leaf.validTo).toISOString(), orderer: hostname() });
    assert.ok(lines.some((l) => l.msg === 'certificate istio-system/demo-acme: waiting for ACME (no certificate issued yet); serving a self-signed stand-in'));
    assert.equal(manager!.status()[0]?.state, 'ready');
    firstSerial = leaf.serialNumber;
  });

  const renewalPoint = async (): Promise<number> => {
    const leaf = new X509Certificate(await readFile(join(dir, 'tls.crt'), 'utf8'));
    const from = Date.parse(leaf.validFrom);
    return from + ((Date.parse(leaf.validTo) - from) * 2) / 3;
  };

  let secondSerial = '';
  await t.test('renews once two-thirds of the lifetime have passed', async () => {
    const due = await renewalPoint();
    now = due - 60_000;
    await manager!.checkNow();
    assert.equal(await serialOnDisk(certsDir, 'demo-acme'), firstSerial, 'not yet due');
    now = due + 1000;
    await manager!.checkNow();
    secondSerial = await serialOnDisk(certsDir, 'demo-acme');
    assert.notEqual(secondSerial, firstSerial);
    assert.equal((await metaOnDisk(certsDir, 'demo-acme')).source, 'acme');
    assertChainVerifies(await readFile(join(dir, 'tls.crt'), 'utf8'), await pebble.rootPem());
  });

  await t.test('keeps the certificate when the ACME server is down during renewal, and schedules a retry', async (st) => {
    await pebble.stop();
    now = (await renewalPoint()) + 1000;
    const before = written.length;
    await manager!.checkNow();
    assert.equal(await serialOnDisk(certsDir, 'demo-acme'), secondSerial, 'the old certificate stays');
    assert.equal(written.length, before);
    const [s] = manager!.status();
    assert.equal(s?.state, 'retrying');
    assert.equal(s?.failures, 1);
    assert.ok(Date.parse(s?.nextAttemptAt ?? '') > now, 'a retry is scheduled');
    const meta = await metaOnDisk(certsDir, 'demo-acme');
    assert.equal(meta.source, 'acme');
    assert.match(String(meta.lastError), /cannot reach the ACME server/);
    assert.equal(lines.filter((l) => l.msg.includes('ACME renewal failed')).length, 1, 'the failure is logged once');
    // `meshgate certs` reads the failure from meta.json: not ok, and the exit code says so.
    const report = await certsReport();
    st.diagnostic(report.out);
    assert.equal(report.code, 1, report.out);
    assert.match(report.out, /acme +Certificate istio-system\/demo-acme, Issuer istio-system\/pebble/);
    assert.match(report.out, new RegExp(`last error +${String(meta.lastErrorAt).replace(/\./g, '\\.')}: cannot reach the ACME server`));
    assert.match(report.out, new RegExp(`next try +${s!.nextAttemptAt!.replace(/\./g, '\\.')} `));
    assert.match(report.out, /status +ACME FAILING/);
  });

  await t.test('renews once the ACME server is back and the retry is due', async () => {
    await pebble.start();
    now = Date.parse(manager!.status()[0]!.nextAttemptAt!) + 1;
    await manager!.checkNow();
    const third = await serialOnDisk(certsDir, 'demo-acme');
    assert.notEqual(third, secondSerial);
    assertChainVerifies(await readFile(join(dir, 'tls.crt'), 'utf8'), await pebble.rootPem());
    const meta = await metaOnDisk(certsDir, 'demo-acme');
    assert.equal(meta.lastError, undefined);
    assert.deepEqual({ state: manager!.status()[0]?.state, failures: manager!.status()[0]?.failures }, { state: 'ready', failures: 0 });
    const report = await certsReport();
    assert.equal(report.code, 0, report.out);
    assert.match(report.out, /status +ok\n/);
  });

  await t.test('re-issues at once when the Certificate changes (another name, an ECDSA key)', async () => {
    const changed = issuerYaml(pebble.directoryUrl) + '---\n'
      + certificateYaml('demo-acme', ['acme.example.test', 'www.acme.example.test'], 'pebble', '  privateKey: {algorithm: ECDSA, size: 256}\n')
      + '---\n' + gatewayYaml('demo-acme', 'acme.example.test');
    now = Date.now(); // back to the real time: certificates issued from here on are not yet due
    const next = holderFor(changed).current()!;
    const before = written.length;
    holder.swap(next); // the manager follows the holder it was given
    await manager!.checkNow();
    assert.deepEqual(written.slice(before).map((w) => w.source), ['acme'], 'no stand-in over a real certificate');
    const leaf = new X509Certificate(await readFile(join(dir, 'tls.crt'), 'utf8'));
    assert.equal(leaf.subjectAltName, 'DNS:acme.example.test, DNS:www.acme.example.test');
    assert.equal(leaf.publicKey.asymmetricKeyType, 'ec');
    assert.equal(manager!.status()[0]?.state, 'ready');
  });
});
