// What a sidecar holds in memory: the sidecar command loads none of the libraries that only other
// roles or optional features use (docs/benchmarks.md has the breakdown), and the two places where a
// sidecar meets certificate structure at run time — writing its CSR, and the empty subject of a mesh
// peer in x-forwarded-client-cert — work without node-forge and agree with openssl.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { X509Certificate } from 'node:crypto';
import { createWorkloadCsr } from '../src/core/pki/workload-csr.js';
import { readCsr } from '../src/core/pki/csr.js';
import { subjectRfc2253 } from '../src/core/tls/distinguished-name.js';
import { SIDECAR_ENV, SIDECAR_V8_FLAGS } from '../src/core/inject/sidecar-node-options.js';

const dir = mkdtempSync(join(tmpdir(), 'meshgate-footprint-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `code` (an ES module) in a fresh Node and returns the CommonJS modules it ended up holding. */
function modulesAfter(code: string): { out: string; modules: string[] } {
  const script = `${code}\nconst { createRequire } = await import('node:module');\nconsole.log(JSON.stringify({ out: globalThis.out ?? '', modules: Object.keys(createRequire(import.meta.url).cache) }));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as { out: string; modules: string[] };
}

const packageOf = (file: string): string | undefined => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)?.[1];
const dist = (path: string) => JSON.stringify(fileURLToPath(new URL(`../src/${path}`, import.meta.url)));

describe('sidecar footprint', () => {
  it('the sidecar command loads no ACME client, CA, Kubernetes client, YAML parser, fastify, tracing SDK, metrics library, regex engine, rate limiter, Redis client or JWT library', () => {
    const { modules } = modulesAfter(`await import(${dist('cli/sidecar.js')});`);
    const packages = new Set(modules.map(packageOf).filter((p) => p !== undefined));
    for (const p of ['acme-client', 'node-forge', '@kubernetes/client-node', 'yaml', 'fastify', '@opentelemetry/sdk-trace-base', '@opentelemetry/exporter-trace-otlp-http', 'rate-limiter-flexible', 'ioredis', 'prom-client', 're2js', 'jose']) {
      assert.ok(!packages.has(p), `${p} is loaded by the sidecar command`);
    }
    // undici's Pool, not its index (fetch, WebSocket, caches, mocks).
    assert.ok(packages.has('undici'));
    assert.ok(!modules.some((m) => /node_modules\/undici\/index\.js$/.test(m)), "undici's index is loaded");
  });

  it("the sidecar's V8 flags and environment are ones this Node accepts", () => {
    // v8.setFlagsFromString ignores a flag V8 does not know; the command line refuses it.
    execFileSync(process.execPath, [...SIDECAR_V8_FLAGS.split(' '), '-e', '0'], { stdio: 'pipe' });
    // NODE_OPTIONS takes only the V8 flags Node lists; a process with another does not start.
    const out = execFileSync(process.execPath, ['-p', 'process.env.MALLOC_ARENA_MAX'], { env: { ...process.env, ...SIDECAR_ENV }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(out.trim(), SIDECAR_ENV.MALLOC_ARENA_MAX);
  });

  for (const keyType of ['rsa', 'ec'] as const) {
    it(`a workload CSR (${keyType}) is one openssl verifies and the CA accepts, with an empty subject`, () => {
      const { csrPem } = createWorkloadCsr({ keyType });
      const file = join(dir, `${keyType}.csr`);
      writeFileSync(file, csrPem);
      const text = execFileSync('openssl', ['req', '-in', file, '-noout', '-verify', '-subject'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      assert.match(text, /^subject=\s*$/m);
      const read = readCsr(csrPem);
      assert.ok(read.ok, read.ok ? '' : read.message);
      assert.equal(read.csr.publicKey.asymmetricKeyType, keyType);
      assert.equal(read.csr.hasCommonName, false);
    });
  }

  it('an empty subject reads as "" without loading node-forge; a subject with names still reads as openssl writes it', () => {
    const cert = (subj: string, name: string): string => {
      const file = join(dir, name);
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${file}.key`, '-out', file, '-subj', subj, '-days', '1'], { stdio: 'pipe' });
      return readFileSync(file, 'utf8');
    };
    const empty = cert('/', 'empty.pem');
    const named = cert('/O=shop/CN=product', 'named.pem');
    const { out, modules } = modulesAfter(
      `const { subjectRfc2253 } = await import(${dist('core/tls/distinguished-name.js')});\n` +
        `globalThis.out = subjectRfc2253(Buffer.from(${JSON.stringify(new X509Certificate(empty).raw.toString('base64'))}, 'base64'));`,
    );
    assert.equal(out, '');
    assert.ok(!modules.some((m) => packageOf(m) === 'node-forge'), 'node-forge was loaded for an empty subject');
    assert.equal(subjectRfc2253(new X509Certificate(named).raw), 'CN=product,O=shop');
  });
});
