// `meshgate certs`: a config folder with HTTPS Gateway servers and a certs folder in, the report and
// the exit code out. A server without a usable certificate fails the command; warnings do not.

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCerts } from '../src/cli/certs.js';
import { ensureDemoCertificates } from '../src/core/tls/demo-ca.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';

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
});
