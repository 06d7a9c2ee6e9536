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

/**
 * Runs `code` (an ES module) in a fresh Node and returns the modules it ended up holding: CommonJS and
 * what was loaded with require() from `require.cache`, ES modules imported from a loader hook (the
 * sentinel import, the last message of the hook's port, says every earlier one has arrived).
 */
function modulesAfter(code: string): { out: string; modules: string[] } {
  const hook = `let port; export function initialize(d) { port = d.port; } export async function load(url, context, next) { port.postMessage(url); return next(url, context); }`;
  const script = [
    `const { createRequire, register } = await import('node:module');`,
    `const { MessageChannel } = await import('node:worker_threads');`,
    `const { port1, port2 } = new MessageChannel();`,
    `const imported = [];`,
    `const sentinel = 'data:text/javascript,export default 0';`,
    `const seen = new Promise((resolve) => port1.on('message', (u) => (u === sentinel ? resolve() : imported.push(u))));`,
    `register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}), { data: { port: port2 }, transferList: [port2] });`,
    code,
    `await import(sentinel);`,
    `await seen;`,
    `port1.close();`,
    `const { fileURLToPath } = await import('node:url');`,
    `const esm = imported.filter((u) => u.startsWith('file:')).map((u) => fileURLToPath(u));`,
    `console.log(JSON.stringify({ out: globalThis.out ?? '', modules: [...Object.keys(createRequire(import.meta.url).cache), ...esm] }));`,
  ].join('\n');
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
    // Istio's metrics and their server come with the first proxy that counts (not with --metrics-port 0).
    assert.ok(!modules.some((m) => /dist\/src\/core\/telemetry\/(istio-metrics|metrics-server)\.js$/.test(m)), "the metrics' code is loaded before a proxy counts");
    // The external authorizers' client comes with the first request a CUSTOM policy sends to one.
    assert.ok(!modules.some((m) => /dist\/src\/core\/proxy\/ext-authz(-check|-grpc|-wire)?\.js$/.test(m)), "the external authorizers' client is loaded before a CUSTOM policy asks one");
    // The DNS proxy and its wire format come only with DNS capture (ISTIO_META_DNS_CAPTURE).
    assert.ok(!packages.has('dns-packet'), 'dns-packet is loaded by the sidecar command');
    assert.ok(!modules.some((m) => /dist\/src\/(sidecar\/dns\/|core\/dns\/name-table)/.test(m)), 'the DNS proxy is loaded without DNS capture');
  });

  // Through require(), each: Node's ES module view of node:tls reads its bundled root certificates
  // (a getter), and an ES import of pino, which is CommonJS, brings Node's CommonJS export lexer.
  it('no module the sidecar command loads imports node:tls or pino as an ES module', () => {
    const { modules } = modulesAfter(`await import(${dist('cli/sidecar.js')});`);
    const ours = modules.filter((m) => /dist\/src\/.*\.js$/.test(m));
    for (const [specifier, instead] of [['node:tls', 'core/tls/node-tls'], ['pino', 'core/telemetry/pino']] as const) {
      assert.ok(ours.some((m) => m.endsWith(`${instead}.js`)), 'the loaded modules are not all listed');
      // Type imports leave nothing in the emitted JavaScript; a value import leaves this.
      const imported = new RegExp(`\\bfrom\\s*['"]${specifier}['"]|\\bimport\\s*\\(?\\s*['"]${specifier}['"]`);
      for (const m of ours) assert.doesNotMatch(readFileSync(m, 'utf8'), imported, `${m} imports ${specifier}: take it from ${instead}.ts`);
    }
  });

  // bin/meshgate.js runs `sidecar` from the bundled file (scripts/bundle-sidecar.mjs): what it loads
  // must be that file and its chunks, never a module of dist/src beside it (a second copy of state such
  // as the --allow-unknown-fields policy), and the same packages as above, undici's Pool and pino inside.
  it('the bundled sidecar loads none of dist/src, undici and pino from within, and no package the sidecar command does not', () => {
    const bundle = JSON.stringify(fileURLToPath(new URL('../sidecar/main.mjs', import.meta.url)));
    const { out, modules } = modulesAfter(
      `const { main } = await import(${bundle});\n` +
        `const log = console.log; console.log = (...a) => (globalThis.out = String(a[0]).split('\\n')[0]);\n` +
        `await main(['sidecar', '--help']);\n` +
        `console.log = log;`,
    );
    assert.match(out, /^usage: meshgate sidecar /);
    assert.ok(modules.some((m) => /dist\/sidecar\/main\.mjs$/.test(m)), 'the loaded modules are not all listed');
    assert.deepEqual(modules.filter((m) => /dist\/src\//.test(m)), []);
    const packages = new Set(modules.map(packageOf).filter((p) => p !== undefined));
    for (const p of ['undici', 'pino', 'sonic-boom', 'acme-client', 'node-forge', '@kubernetes/client-node', 'yaml', 'fastify', 'prom-client', 're2js', 'jose', 'dns-packet']) {
      assert.ok(!packages.has(p), `${p} is loaded from node_modules by the bundled sidecar`);
    }
  });

  it("a sidecar holds only the validators of the kinds it is sent, no Gateway API translation without routes, no gateway's ACME checks and no analyzers", () => {
    const set = `apiVersion: v1\nkind: Service\nmetadata: {name: app, namespace: default}\nspec: {selector: {app: app}, ports: [{name: http, port: 8080}]}\n---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: default}\nspec: {mtls: {mode: STRICT}}\n`;
    const { out, modules } = modulesAfter(
      `await import(${dist('cli/sidecar.js')});\n` +
        `const { parseConfigText } = await import(${dist('core/config/load.js')});\n` +
        `const { buildSnapshot } = await import(${dist('core/snapshot/build.js')});\n` +
        `const role = { kind: 'sidecar', namespace: 'default', labels: { app: 'app' }, serviceAccount: 'app', outboundTrafficPolicy: 'ALLOW_ANY' };\n` +
        `const built = buildSnapshot(parseConfigText(${JSON.stringify(set)}, 'set.json'), role, { random: () => 0.5, load: { active: () => 0 } });\n` +
        `globalThis.out = String(built.problems.filter((p) => p.severity === 'error').length) + ' ' + built.findings.length;`,
    );
    // Its control plane analyzes the mesh: a sidecar's build has no findings.
    assert.equal(out, '0 0');
    const ours = modules.map((m) => /dist\/src\/(.*)$/.exec(m)?.[1]).filter((m) => m !== undefined);
    assert.ok(ours.includes('core/snapshot/build.js') && ours.includes('core/config/validate-peer-authentication.js'), 'the loaded modules are not all listed');
    for (const m of ['core/config/validate-gateway.js', 'core/config/validate-virtual-service.js', 'core/config/validate-destination-rule.js', 'core/config/validate-gateway-api.js', 'core/config/validate-cert-manager.js', 'core/gateway-api/translate.js', 'core/ingress/translate.js', 'core/snapshot/acme-credentials.js']) {
      assert.ok(!ours.includes(m), `${m} is loaded by a sidecar that does not run it`);
    }
    // Of the analyzers and the Gateway API code, none (the routes' source names are part of routing).
    for (const m of ours.filter((m) => m.startsWith('core/analyze/') || (m.startsWith('core/gateway-api/') && m !== 'core/gateway-api/route-sources.js'))) {
      assert.fail(`${m} is loaded by a sidecar that does not run it`);
    }
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
