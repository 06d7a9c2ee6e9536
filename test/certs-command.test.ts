// `meshgate certs`: a config folder with HTTPS Gateway servers and a certs folder in, the report and
// the exit code out. A server without a usable certificate fails the command, and so does an ACME
// certificate that cannot be obtained or renewed; warnings do not.

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCerts } from '../src/cli/certs.js';
import { ensureDemoCertificates } from '../src/core/tls/demo-ca.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { writeStored } from '../src/gateway/acme/certificate-files.js';
import { certificateYaml, gatewayYaml, issuerYaml } from './helpers/cert-manager-yaml.js';

const roots: string[] = [];
after(() => {
  for (const d of roots) rmSync(d, { recursive: true, force: true });
});

function gateway(servers: Array<{ port: number; name: string; hosts: string[]; tls: string }>): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
${servers.map((s) => `  - port: {number: ${s.port}, name: ${s.name}, protocol: HTTPS}\n    hosts: [${s.hosts.join(', ')}]\n    tls: ${s.tls}`).join('\n')}
`;
}

/** A temp folder with `config/gw.yaml` and `certs/` holding the demo credentials. */
function setup(yaml: string): { config: string; certs: string } {
  const root = mkdtempSync(join(tmpdir(), 'meshgate-certs-cmd-'));
  roots.push(root);
  const config = join(root, 'config');
  mkdirSync(config);
  writeFileSync(join(config, 'gw.yaml'), yaml);
  const certs = join(root, 'certs');
  ensureDemoCertificates(certs, ['shop.example.com'], { keyType: 'ec' });
  return { config, certs };
}

async function run(config: string, certs: string): Promise<{ code: number; out: string; lines: string[] }> {
  let out = '';
  const code = await runCerts(['--config', config, '--certs', certs], (t) => void (out += t));
  return { code, out, lines: out.split('\n') };
}

describe('meshgate certs', () => {
  it('lists the server, its credential, names, issuer and expiry; an uncovered host is a warning', async () => {
    const { config, certs } = setup(gateway([{ port: 443, name: 'https', hosts: ['shop.example.com', 'other.test'], tls: '{mode: SIMPLE, credentialName: demo-tls}' }]));
    const { code, out, lines } = await run(config, certs);
    assert.equal(code, 0, out);
    assert.equal(lines[0], 'gateway default/gw server[0] port 443 hosts shop.example.com, other.test');
    const line = (label: string): string => lines.find((l) => l.trimStart().startsWith(`${label} `)) ?? assert.fail(`no ${label} line in:\n${out}`);
    assert.match(line('mode'), /SIMPLE$/);
    assert.match(line('uses'), /credential demo-tls \(.*demo-tls\)$/);
    assert.match(line('names'), /\*\.example\.com, example\.com, .*shop\.example\.com/);
    assert.match(line('issuer'), /CN=meshgate demo CA/);
    assert.match(line('not after'), /^\s*not after\s+\d{4}-\d\d-\d\dT.*Z \(\d+ days left\)$/);
    assert.match(line('source'), /file$/);
    assert.match(line('warning'), /host other\.test is not covered by the certificate's names/);
    assert.ok(!lines.some((l) => /host shop\.example\.com is not covered/.test(l)), 'a SAN wildcard or exact name covers shop.example.com');
    assert.match(line('status'), /serving, with warnings/);
    assert.match(out, /1 TLS server, 0 without a usable certificate, 1 warning\n$/);
  });

  it('a missing credential fails the command', async () => {
    const { config, certs } = setup(
      gateway([
        { port: 443, name: 'https', hosts: ['shop.example.com'], tls: '{mode: SIMPLE, credentialName: demo-tls}' },
        { port: 443, name: 'https-admin', hosts: ['admin.example.org'], tls: '{mode: SIMPLE, credentialName: admin-tls}' },
      ]),
    );
    const { code, out } = await run(config, certs);
    assert.equal(code, 1, out);
    assert.match(out, /gateway default\/gw server\[1\] port 443 hosts admin\.example\.org\n/);
    assert.match(out, /error\s+admin-tls: .*admin-tls does not exist/);
    assert.match(out, /status\s+NO USABLE CERTIFICATE/);
    assert.match(out, /2 TLS servers, 1 without a usable certificate/);
  });

  it('a key that does not match fails the command; an expired certificate only warns', async () => {
    const { config, certs } = setup(
      gateway([
        { port: 443, name: 'https-a', hosts: ['a.example.com'], tls: '{mode: SIMPLE, credentialName: mismatched}' },
        { port: 443, name: 'https-b', hosts: ['b.example.com'], tls: '{mode: SIMPLE, credentialName: expired}' },
      ]),
    );
    const issue = (cn: string, notBefore?: Date) => issueCertificate({ subjectCN: cn, dnsNames: [cn], days: 1, keyType: 'ec', ...(notBefore ? { notBefore } : {}) });
    mkdirSync(join(certs, 'mismatched'));
    writeFileSync(join(certs, 'mismatched', 'tls.crt'), issue('a.example.com').certPem);
    writeFileSync(join(certs, 'mismatched', 'tls.key'), issue('a.example.com').keyPem, { mode: 0o600 });
    const old = issue('b.example.com', new Date(Date.now() - 30 * 86400_000));
    mkdirSync(join(certs, 'expired'));
    writeFileSync(join(certs, 'expired', 'tls.crt'), old.certPem);
    writeFileSync(join(certs, 'expired', 'tls.key'), old.keyPem, { mode: 0o600 });

    const { code, out } = await run(config, certs);
    assert.equal(code, 1, out);
    assert.match(out, /error\s+mismatched: tls\.key does not match tls\.crt/);
    assert.match(out, /warning\s+expired: certificate expired on /);
    assert.match(out, /not after\s+\S+ \(expired \d+ days ago\)/);
    assert.match(out, /issuer\s+CN=b\.example\.com \(self-signed\)/);
    assert.match(out, /2 TLS servers, 1 without a usable certificate, 1 warning/);
  });

  it('MUTUAL with a credential that carries no client CA fails the command', async () => {
    const { config, certs } = setup(gateway([{ port: 443, name: 'https', hosts: ['shop.example.com'], tls: '{mode: MUTUAL, credentialName: plain}' }]));
    const c = issueCertificate({ subjectCN: 'shop.example.com', dnsNames: ['shop.example.com'], days: 1, keyType: 'ec' });
    mkdirSync(join(certs, 'plain'));
    writeFileSync(join(certs, 'plain', 'tls.crt'), c.certPem);
    writeFileSync(join(certs, 'plain', 'tls.key'), c.keyPem, { mode: 0o600 });
    const { code, out } = await run(config, certs);
    assert.equal(code, 1, out);
    assert.match(out, /error\s+plain: MUTUAL needs a CA to verify client certificates/);
  });

  describe('ACME credentials', () => {
    const DIR_URL = 'https://acme.example.test/dir';
    const acmeConfig = (dnsNames: string[], plainHttp = true): string =>
      [issuerYaml(DIR_URL, 'Issuer', 'le'), certificateYaml('shop-tls', dnsNames, 'le'), gatewayYaml('shop-tls', 'shop.example.com', { plainHttp })].join('---\n');
    const DAY = 86_400_000;
    /** A 90-day certificate issued 30 days ago, written the way the gateway writes one. */
    const issued = async (certs: string, names: string[], failure: Record<string, string> = {}) => {
      const notBefore = new Date(Date.now() - 30 * DAY);
      const c = issueCertificate({ subjectCN: names[0]!, dnsNames: names, days: 90, notBefore, keyType: 'rsa' });
      await writeStored(certs, 'shop-tls', {
        certPem: c.certPem,
        keyPem: c.keyPem,
        meta: { source: 'acme', issuer: 'Issuer istio-system/le', server: DIR_URL, notAfter: new Date(notBefore.getTime() + 90 * DAY).toISOString(), ...failure },
      });
      return notBefore;
    };
    const line = (lines: string[], label: string): string => lines.find((l) => l.trimStart().startsWith(`${label} `)) ?? assert.fail(`no ${label} line in:\n${lines.join('\n')}`);

    it('shows owner, renewal due, last error and next attempt; a failing renewal fails the command', async () => {
      const { config, certs } = setup(acmeConfig(['shop.example.com']));
      const next = new Date(Date.now() + 10 * 60_000).toISOString();
      const notBefore = await issued(certs, ['shop.example.com'], {
        lastError: 'cannot reach the ACME server acme.example.test: connect ECONNREFUSED', lastErrorAt: '2030-01-02T03:04:05.000Z', nextAttemptAt: next, orderer: 'istio-ingressgateway-7f9c-x2k4p',
      });
      const { code, out, lines } = await run(config, certs);
      assert.equal(code, 1, out);
      assert.match(line(lines, 'source'), /acme$/);
      assert.equal(line(lines, 'acme'), `  acme       Certificate istio-system/shop-tls, Issuer istio-system/le (${DIR_URL})`);
      assert.equal(line(lines, 'account'), `  account    ${join(certs, 'le-account', 'tls.key')} (privateKeySecretRef)`);
      assert.equal(line(lines, 'orderer'), '  orderer    istio-ingressgateway-7f9c-x2k4p (the gateway process that ordered it and wrote this record)');
      assert.equal(line(lines, 'issued'), `  issued     ${new Date(Math.floor(notBefore.getTime() / 1000) * 1000).toISOString()}`);
      const due = new Date(Math.floor(notBefore.getTime() / 1000) * 1000 + 60 * DAY).toISOString();
      assert.match(line(lines, 'renewal'), new RegExp(`^  renewal    due ${due.replace(/\./g, '\\.')} \\(in (29|30) days\\)$`), 'two-thirds of 90 days');
      assert.equal(line(lines, 'last error'), '  last error 2030-01-02T03:04:05.000Z: cannot reach the ACME server acme.example.test: connect ECONNREFUSED');
      assert.match(line(lines, 'next try'), new RegExp(`^  next try   ${next.replace(/\./g, '\\.')} \\(in (9|10) min\\)$`));
      assert.match(line(lines, 'error'), /shop-tls: ACME renewal is failing$/);
      assert.match(line(lines, 'status'), /ACME FAILING: serving the certificate it has until an order succeeds/);
      assert.match(out, /1 TLS server, 0 without a usable certificate, 1 failing ACME, 0 warnings\n$/);
    });

    it('a healthy ACME certificate is ok; names the Certificate no longer asks for are a pending re-issue', async () => {
      const { config, certs } = setup(acmeConfig(['shop.example.com']));
      await issued(certs, ['shop.example.com']);
      const ok = await run(config, certs);
      assert.equal(ok.code, 0, ok.out);
      assert.match(line(ok.lines, 'status'), /ok$/);
      assert.ok(!ok.lines.some((l) => /last error|next try/.test(l)), ok.out);

      const changed = setup(acmeConfig(['shop.example.com', 'www.shop.example.com']));
      await issued(changed.certs, ['shop.example.com']);
      const { code, out, lines } = await run(changed.config, changed.certs);
      assert.equal(code, 0, out);
      assert.equal(line(lines, 'warning'), '  warning    shop-tls: pending re-issue: it names shop.example.com; the Certificate asks for shop.example.com, www.shop.example.com');
      assert.match(line(lines, 'status'), /serving, with warnings/);
    });

    it('not issued yet is no failure; a missing issuer is; no port 80 for HTTP-01 is a warning on the server', async () => {
      const fresh = setup(acmeConfig(['shop.example.com']));
      const first = await run(fresh.config, fresh.certs);
      assert.equal(first.code, 0, first.out);
      assert.match(line(first.lines, 'status'), /not issued yet: the gateway serves a self-signed stand-in/);
      assert.ok(!first.out.includes('does not exist'), first.out);

      const noIssuer = setup(acmeConfig(['shop.example.com']).replace('issuerRef: {name: le,', 'issuerRef: {name: gone,'));
      const r = await run(noIssuer.config, noIssuer.certs);
      assert.equal(r.code, 1, r.out);
      assert.match(line(r.lines, 'acme'), /Certificate istio-system\/shop-tls, no usable issuer$/);
      assert.match(line(r.lines, 'error'), /shop-tls: cannot be issued: Issuer istio-system\/gone not found/);

      const httpsOnly = setup(acmeConfig(['shop.example.com'], false));
      const w = await run(httpsOnly.config, httpsOnly.certs);
      assert.match(line(w.lines, 'warning'), /credential shop-tls is issued by ACME \(Certificate istio-system\/shop-tls\), but this gateway has no plain HTTP server on port 80/);
    });
  });
});
