// The mesh config's pathNormalization (NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES) as Istio
// sets Envoy's normalize_path, merge_slashes and path_with_escaped_slashes_action: unit tables with
// the outcomes Istio's own normalization test expects of each mode and Envoy's canonicalization
// cases, validation of the field, and the modes at work against an AuthorizationPolicy DENY at a
// gateway and at a sidecar's inbound side (both run the same normalize stage).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { normalizePath, pathNormalizationFor, type PathNormalization } from '../src/core/proxy/path-normalize.js';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';
import type { SnapshotHolder } from '../src/core/snapshot/holder.js';
import { FileSource } from '../src/core/sources/file-source.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { HOST, targetGatewayForSuite } from './helpers/target-config.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { h2Request, h2Session, rawExchange } from './helpers/raw-http.js';
import { meshConfigMap } from './helpers/ext-authz.js';
import { permissiveDenyPathsYaml } from './helpers/cluster-yaml.js';
import { fixedIdentity, testAuthority, untilSnapshot } from './helpers/mesh.js';

type Table = ReadonlyArray<readonly [string, string | undefined]>;

/** Outcomes of Istio's normalization test, mode by mode (what the backend receives). */
const ISTIO: Record<string, Table> = {
  NONE: [
    ['/', '/'], ['/app/', '/app/'], ['/app/../admin', '/app/../admin'], ['/app//', '/app//'], ['/app/%2f', '/app/%2f'],
    ['/xyz%30..//abc', '/xyz%30..//abc'], ['/app/%2E./admin', '/app/%2E./admin'], ['/app\\admin', '/app\\admin'],
    ['/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc'], ['/app//../../admin', '/app//../../admin'],
  ],
  BASE: [
    ['/', '/'], ['/app/', '/app/'], ['/app/../admin', '/admin'], ['/app//', '/app//'], ['/app/%2f', '/app/%2f'], ['/app%2f/', '/app%2f/'],
    ['/xyz%30..//abc', '/xyz0..//abc'], ['/app/%2E./admin', '/admin'], ['/app\\admin', '/app/admin'], ['/app/\\/\\/\\admin', '/app//////admin'],
    ['/%2Fapp%5cadmin%5Cabc', '/%2Fapp%5cadmin%5Cabc'], ['/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/%5Capp%2f%5c%2F..%2fadmin%5c/abc'],
    ['/app//../admin', '/app/admin'], ['/app//../../admin', '/admin'],
  ],
  MERGE_SLASHES: [
    ['/app//', '/app/'], ['/app/%2f', '/app/%2f'], ['/xyz%30..//abc', '/xyz0../abc'], ['/app/\\/\\/\\admin', '/app/admin'],
    ['/%2Fapp%5cadmin%5Cabc', '/%2Fapp%5cadmin%5Cabc'], ['/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/%5Capp%2f%5c%2F..%2fadmin%5c/abc'],
    ['/app//../admin', '/app/admin'], ['/app//../../admin', '/admin'],
  ],
  DECODE_AND_MERGE_SLASHES: [
    ['/app//', '/app/'], ['/app/%2f', '/app/'], ['/app%2f/', '/app/'], ['/xyz%30..//abc', '/xyz0../abc'], ['/app/%2E./admin', '/admin'],
    ['/app/\\/\\/\\admin', '/app/admin'], ['/%2Fapp%5cadmin%5Cabc', '/app/admin/abc'], ['/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/app/admin/abc'],
    ['/%c0%2e%c0%2e/admin', '/%c0.%c0./admin'], ['/%c0%2fadmin', '/%c0/admin'],
    // Not normalized: overlong UTF-8, double escapes, `...`, parameters, case.
    ['/0x2e0x2e/admin', '/0x2e0x2e/admin'], ['/%25c0%25ae%25c1%259cadmin', '/%25c0%25ae%25c1%259cadmin'], ['/%252e%252e%252fadmin', '/%252e%252e%252fadmin'],
    ['/%c0%ae%c0%ae/admin', '/%c0%ae%c0%ae/admin'], ['/.../admin', '/.../admin'], ['/;/admin', '/;/admin'], ['/admin;a=b/xyz', '/admin;a=b/xyz'],
    ['/admin,a=b/xyz', '/admin,a=b/xyz'], ['/ADMIN', '/ADMIN'], ['/admin%00', undefined],
  ],
};

/** Envoy's canonicalization (normalize_path), the cases of its own unit test and the escaping table. */
const ENVOY_BASE: Table = [
  ['/a/b/../c', '/a/c'], ['/a/b/./c', '/a/b/c'], ['/a/b/../../../../c', '/c'], ['/a/..\\c', '/c'], ['/%c0%af', '/%c0%af'], ['/%5c%25', '/%5c%25'],
  ['/a/b/%2E%2E/c', '/a/c'], ['/a/b/%2e%2e/c', '/a/c'], ['/A/B/C', '/A/B/C'], ['/a/%2F%2f/c', '/a/%2F%2f/c'], ['/a/b/..', '/a/'], ['/a/.', '/a/'],
  // Parameters on dot segments are dropped before the dots are resolved (Envoy's fix for `..;`).
  ['/xyz/..;foo=bar/abc', '/abc'], ['/..;foo=bar/abc', '/abc'], ['/xyz/..;foo=bar', '/'], ['/xyz/.;foo=bar/abc', '/xyz/abc'],
  ['/xyz/.;foo=bar', '/xyz/'], ['/xyz/..;foo=bar/.;v1=2,v2=3/abc', '/abc'], ['/.;aaa/..;foo=bar/abc/.;mmm', '/abc/'], ['/xyz/..foo', '/xyz/..foo'],
  ['/xyz/...;foo', '/xyz/...;foo'],
  // NUL is refused, raw or escaped; invalid escapes stay; unsafe raw characters are escaped.
  ['/xyz/.%00../abc', undefined], ['/xyz/AAAAA%%0000/abc', undefined], ['/a\u0000b', undefined], ['/%zz', '/%zz'], ['/a%', '/a%'], ['/a%2', '/a%2'],
  ['/a b', '/a%20b'], ['/a"<>`^{|}', '/a%22%3C%3E%60%5E%7B%7C%7D'], ['/\u00c3\u00a9', '/%C3%A9'], ['/\u00e9t\u00e9', '/%E9t%E9'], ['/admin%7e', '/admin~'],
  ['/admin%2E', '/admin.'], ['/admin%20', '/admin%20'], ['/admin%2f', '/admin%2f'], ['relative', undefined], ['*', undefined],
];

describe('pathNormalization: the four modes as Istio sets Envoy', () => {
  for (const [mode, table] of Object.entries(ISTIO)) {
    it(`${mode}: as Istio's normalization test expects`, () => {
      for (const [input, want] of table) assert.equal(normalizePath(input, mode as PathNormalization), want, `${mode} ${input}`);
    });
  }
  it('BASE: Envoy canonicalization, dot segments with parameters, NUL and escaping', () => {
    for (const [input, want] of ENVOY_BASE) assert.equal(normalizePath(input), want, input);
  });
  it('DECODE_AND_MERGE_SLASHES: every %01..%ff as Istio expects (unreserved and slashes decoded, the rest kept)', () => {
    const decoded = (b: number): boolean => /[A-Za-z0-9\-._~/\\]/.test(String.fromCharCode(b));
    for (let b = 1; b <= 0xff; b++) {
      const input = `/admin%${b.toString(16).padStart(2, '0')}`;
      const want = decoded(b) ? `/admin${String.fromCharCode(b).replace('\\', '/')}` : input;
      assert.equal(normalizePath(input, 'DECODE_AND_MERGE_SLASHES'), want, input);
    }
  });
  it('validation: an unknown mode or field is an error at its own line in the mesh block, with the field', () => {
    const text = meshConfigMap('    pathNormalization: {normalization: DECODE_AND_MERGE, other: 1}');
    const { problems } = validateAll(parseConfigText(text, 'mesh.yaml').resources);
    const lines = problems.map((p) => `${p.file}:${p.line} ${p.severity} ${p.field}: ${p.message}`);
    assert.ok(lines.some((l) => /^mesh\.yaml:6 error data\.mesh\.pathNormalization\.normalization: "DECODE_AND_MERGE" is not allowed; use one of .*DECODE_AND_MERGE_SLASHES/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /^mesh\.yaml:6 error data\.mesh\.pathNormalization\.other: unknown field/.test(l)), lines.join('\n'));
    const good = validateAll(parseConfigText(meshConfigMap('    pathNormalization: {normalization: MERGE_SLASHES}'), 'mesh.yaml').resources);
    assert.deepEqual(good.problems, []);
  });
});

/** Writes the mesh config with `mode` and waits until `holder` serves it. */
async function useMode(dir: string, holder: SnapshotHolder, mode: PathNormalization): Promise<void> {
  await writeFile(join(dir, 'mesh.yaml'), meshConfigMap(`    pathNormalization: {normalization: ${mode}}`));
  await untilSnapshot(holder, (s) => pathNormalizationFor(s) === mode);
}

describe('pathNormalization at a gateway: a DENY on /private and /private/*', () => {
  const suite = targetGatewayForSuite();
  const get = async (path: string): Promise<{ status: number; url: string | undefined }> => {
    const n = suite.app.seen.length;
    const r = await rawExchange(suite.target.plain, `GET ${path} HTTP/1.1\r\nhost: ${HOST}\r\nconnection: close\r\n\r\n`);
    return { status: r.status, url: suite.app.seen.length > n ? suite.app.seen[n]!.url : undefined };
  };

  it('BASE (no mesh config): `..;` and `.;` segments are dot segments; slashes are neither merged nor decoded, as Istio', async () => {
    assert.equal(pathNormalizationFor(suite.target.gw.holder.current()), 'BASE');
    assert.deepEqual(await get('/x/..;/private'), { status: 403, url: undefined });
    assert.deepEqual(await get('/.;/private/a'), { status: 403, url: undefined });
    assert.deepEqual(await get('//private'), { status: 200, url: '//private' });
    assert.deepEqual(await get('/x%2F..%2Fprivate'), { status: 200, url: '/x%2F..%2Fprivate' });
  });

  it('DECODE_AND_MERGE_SLASHES: %2F, %5C and // runs cannot get past the DENY, HTTP/1 and HTTP/2; the decoded path goes upstream', async () => {
    await useMode(suite.target.configDir, suite.target.gw.holder, 'DECODE_AND_MERGE_SLASHES');
    for (const p of ['//private', '///private/a', '/%2Fprivate', '/%2fprivate%2Fa', '/x%2F..%2Fprivate', '/x%5C..%5Cprivate', '/x/%2e%2e%2fprivate', '/a/..%2F/private']) {
      assert.deepEqual(await get(p), { status: 403, url: undefined }, p);
    }
    assert.deepEqual(await get('/a%2Fb//c%5Cd?x=%2F'), { status: 200, url: '/a/b/c/d?x=%2F' });
    const h2 = await h2Session(suite.target.tlsPort, suite.target.tls);
    try {
      assert.equal((await h2Request(h2, { ':path': '//private', ':authority': HOST })).status, 403);
      assert.equal((await h2Request(h2, { ':path': '/%2Fprivate', ':authority': HOST })).status, 403);
    } finally {
      h2.destroy();
    }
  });

  it('MERGE_SLASHES: // runs merged, %2F kept', async () => {
    await useMode(suite.target.configDir, suite.target.gw.holder, 'MERGE_SLASHES');
    assert.deepEqual(await get('//private'), { status: 403, url: undefined });
    assert.deepEqual(await get('/a//b/'), { status: 200, url: '/a/b/' });
    assert.deepEqual(await get('/%2Fprivate'), { status: 200, url: '/%2Fprivate' });
  });

  it('NONE: the path as sent, for matching and upstream (a DENY on /private no longer covers /x/../private, as in Istio)', async () => {
    await useMode(suite.target.configDir, suite.target.gw.holder, 'NONE');
    assert.deepEqual(await get('/x/../private'), { status: 200, url: '/x/../private' });
    assert.deepEqual(await get('/%70rivate'), { status: 200, url: '/%70rivate' });
    assert.deepEqual(await get('/private#x'), { status: 403, url: undefined });
  });
});

describe('pathNormalization at a sidecar inbound side: a DENY on /admin/*', () => {
  let app: Upstream;
  let dir: string;
  let sidecar: RunningSidecar;
  before(async () => {
    app = await startUpstream('app');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-path-normalization-'));
    await writeFile(join(dir, 'security.yaml'), permissiveDenyPathsYaml('app', ['/admin/*']));
    sidecar = await startSidecar({
      statusPort: 0, adminPort: 0, outboundPort: 0, inboundPort: 0, listenHost: '127.0.0.1', accessLog: 'off', logger: pino({ level: 'silent' }),
      namespace: 'default', identity: fixedIdentity(await testAuthority(), 'default', 'app'), source: new FileSource({ dir }),
      serviceAccount: 'app', labels: { app: 'app' }, appPort: app.port,
    });
  });
  after(async () => {
    await sidecar?.destroy();
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('DECODE_AND_MERGE_SLASHES: //admin/x and /admin%2Fx are denied; the app gets the decoded path', async () => {
    await useMode(dir, sidecar.holder, 'DECODE_AND_MERGE_SLASHES');
    const get = (path: string) => rawExchange(sidecar.inboundPort, `GET ${path} HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n`);
    const n = app.seen.length;
    for (const p of ['//admin/x', '/admin%2Fx', '/x/..%5Cadmin/x']) assert.equal((await get(p)).status, 403, p);
    assert.equal((await get('/ok%2Fa')).status, 200);
    assert.deepEqual(app.seen.slice(n).map((e) => e.url), ['/ok/a']);
  });
});
