// Golden files: a configuration folder in, the printed route table (`meshgate routes`) out, compared
// byte for byte with test/golden/*.txt. Run with UPDATE_GOLDEN=1 to rewrite them after an intended
// change, and review the diff. Also checks what `explain` says about a request that gets 404.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { spawnSync } from 'node:child_process';
import { formatProblem } from '../src/core/config/problem.js';
import { loadConfigDir, parseConfigText } from '../src/core/config/load.js';
import { explainRequest, gatewayPortFor } from '../src/core/routing/explain.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import { offlineSnapshot } from '../src/cli/offline-snapshot.js';
import { printRoutes } from '../src/core/routing/print.js';
import { compileDir, FIXED_DEPS, INGRESS_ROLE, repoPath } from './helpers/route-table.js';

const UPDATE = process.env.UPDATE_GOLDEN === '1';

async function checkGolden(actual: string, goldenFile: string): Promise<void> {
  const path = repoPath(`test/golden/${goldenFile}`);
  if (UPDATE) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, actual);
    return;
  }
  if (!existsSync(path)) assert.fail(`golden file test/golden/${goldenFile} is missing: run the tests with UPDATE_GOLDEN=1 to create it`);
  const expected = await readFile(path, 'utf8');
  assert.equal(actual, expected, `printed routes differ from test/golden/${goldenFile} (UPDATE_GOLDEN=1 rewrites it)`);
}

const FOLDERS = [
  { name: 'bookinfo fixture', dir: 'test/fixtures/bookinfo', display: 'bookinfo', golden: 'bookinfo-routes.txt' },
  { name: 'demo gateway-config', dir: 'gateway-config', display: 'gateway-config', golden: 'gateway-config-routes.txt' },
  { name: 'namespace-scoped server hosts', dir: 'test/fixtures/scopes', display: 'scopes', golden: 'scopes-routes.txt' },
];

describe('golden route tables', () => {
  for (const f of FOLDERS) {
    it(`printRoutes for the ${f.name} folder matches test/golden/${f.golden}`, async (t) => {
      const dir = repoPath(f.dir);
      if (!existsSync(dir)) {
        t.skip(`${f.dir}/ does not exist yet`);
        return;
      }
      const c = await compileDir(dir, { displayDir: f.display });
      assert.deepEqual(c.errors.map(formatProblem), [], `${f.dir} has no configuration errors`);
      const printed = printRoutes(c.snapshot);
      // Printing is a pure function of the snapshot.
      assert.equal(printRoutes(c.snapshot), printed);
      await checkGolden(printed, f.golden);
    });
  }
});

describe('explain', () => {
  it('a wrong path on the bookinfo host names every route tried, the condition that failed, and ends in 404 NR', async () => {
    const c = await compileDir(repoPath('test/fixtures/bookinfo'), { displayDir: 'bookinfo' });
    const res = explainRequest(c.snapshot, {
      port: 8080,
      url: new URL('http://bookinfo.example.com/reviews/0'),
      method: 'GET',
      headers: { host: 'bookinfo.example.com' },
    });
    assert.match(res.verdict, /^404 NR/);
    const text = res.lines.join('\n');
    assert.match(text, /virtual host \*/);

    const wanted = ['uri exact "/productpage"', 'uri prefix "/static"', 'uri exact "/login"', 'uri exact "/logout"', 'uri prefix "/api/v1/products"'];
    const tried = res.lines.filter((l) => /✗ route \d+/.test(l));
    assert.equal(tried.length, wanted.length, text);
    tried.forEach((line, i) => {
      assert.match(line, new RegExp(`✗ route ${i + 1} `), line);
      assert.match(line, /default\/bookinfo http\[0\]/, line);
      assert.match(line, /bookinfo\/bookinfo-gateway\.yaml:\d+/, line);
    });
    for (const w of wanted) {
      const hit = res.lines.find((l) => l.includes(`wanted ${w}, got "/reviews/0"`));
      assert.ok(hit, `explain names the failed condition ${w}:\n${text}`);
    }
    // Conditions are listed in route order, each right after its route.
    const order = res.lines.filter((l) => l.includes('wanted ')).map((l) => l.trim());
    assert.deepEqual(
      order,
      wanted.map((w) => `wanted ${w}, got "/reviews/0"`),
    );
    assert.match(res.lines.at(-1)!, /no route matched \(5 tried\)/);
  });

  it('a matching request names the route and the destination cluster', async () => {
    const c = await compileDir(repoPath('test/fixtures/bookinfo'), { displayDir: 'bookinfo' });
    const res = explainRequest(c.snapshot, { port: 8080, url: new URL('http://bookinfo.example.com/login'), method: 'GET', headers: {} });
    assert.equal(res.verdict, 'forward');
    const text = res.lines.join('\n');
    assert.match(text, /✓ route 3 /);
    assert.match(text, /outbound\|9080\|\|productpage\.default\.svc\.cluster\.local/);
  });

  it('a port with no Gateway server is explained as 404 NR (no listener)', async () => {
    const c = await compileDir(repoPath('test/fixtures/bookinfo'), { displayDir: 'bookinfo' });
    const res = explainRequest(c.snapshot, { port: 80, url: new URL('http://bookinfo.example.com/productpage'), method: 'GET', headers: {} });
    assert.match(res.verdict, /^404 NR/);
    assert.match(res.lines.join('\n'), /ports served: 8080/);
  });
});

describe('explain over HTTPS', () => {
  it('follows the SNI to the TLS server and its routes, and names a closed connection', async () => {
    const { snapshot } = await offlineSnapshot('gateway-config', { istio: 'ingressgateway' }, 'istio-system');
    const ok = explainRequest(snapshot, { port: 443, url: new URL('https://api.example.com/user/1'), method: 'GET', headers: {} });
    assert.equal(ok.verdict, 'forward');
    assert.ok(ok.lines.some((l) => l.includes('SNI "api.example.com" picks server default/demo-gateway[2]')), ok.lines.join('\n'));
    const closed = explainRequest(snapshot, { port: 443, url: new URL('https://nope.example.org/'), method: 'GET', headers: {} });
    assert.equal(closed.verdict, 'connection closed (no server for SNI)');
  });
});

describe('explain: server host scopes and VirtualServices that did not bind', () => {
  // The scopes fixture plus one invalid VirtualService for a host the Gateway serves.
  async function scopes() {
    const loaded = await loadConfigDir(repoPath('test/fixtures/scopes'), 'scopes');
    const broken = parseConfigText(
      'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: broken}\nspec:\n  hosts: [broken.example.com]\n  gateways: [istio-system/edge]\n  http:\n  - route: [{destination: {host: a}, weight: -1}, {destination: {host: b}}]\n',
      'scopes/broken.yaml',
      loaded.resources.length,
    );
    const all = { resources: [...loaded.resources, ...broken.resources], problems: [...loaded.problems, ...broken.problems] };
    return { snapshot: buildSnapshot(all, INGRESS_ROLE, FIXED_DEPS).snapshot, resources: all.resources };
  }
  const ask = async (url: string) => {
    const { snapshot, resources } = await scopes();
    const res = explainRequest(snapshot, { port: 80, url: new URL(url), method: 'GET', headers: {} }, resources);
    return { ...res, text: res.lines.join('\n') };
  };

  it('prints server hosts with their namespace scope', async () => {
    const { text } = await ask('http://app.team.test/');
    assert.match(text, /server istio-system\/edge\[0\] HTTP hosts team\/\*, istio-system\/own\.test, \*\.example\.com, a\.narrow\.test/);
  });

  const cases: Array<[string, string, RegExp]> = [
    ['the server host scope excludes its namespace', 'http://other.team.test/', /VirtualService default\/wrong-ns \[scopes\/virtual-services\.yaml:13\] has host other\.team\.test but does not bind: server host team\/\* admits only VirtualServices from namespace team; this one is in default$/],
    ['it lists no gateways', 'http://nogw.example.com/', /VirtualService default\/nogw .* does not bind: it lists no gateways, so it applies to sidecars only \(mesh\); add gateways: \[istio-system\/edge\]$/],
    ['its gateways do not name this Gateway', 'http://othergw.example.com/', /VirtualService default\/othergw .* does not bind: its gateways \[default\/elsewhere\] do not name Gateway istio-system\/edge$/],
    ['exportTo hides it', 'http://private.example.com/', /VirtualService default\/private .* does not bind: its exportTo \[\.\] hides it from the gateway's namespace istio-system$/],
    ['it is invalid, with the validation problem', 'http://broken.example.com/', /VirtualService default\/broken \[scopes\/broken\.yaml:1\] has host broken\.example\.com but does not bind: it is invalid and left out: spec\.http\[0\]\.route\[0\]\.weight: must not be negative \(scopes\/broken\.yaml:8\)$/],
    ['match.port leaves out this server', 'http://port.example.com/', /VirtualService default\/port-only .* does not bind: none of its http routes applies to this server: their match\.port or match\.gateways leave out istio-system\/edge port 80$/],
    ['the server hosts narrow its wildcard', 'http://b.narrow.test/', /VirtualService default\/narrow .* has host \*\.narrow\.test but does not bind: it binds here only as a\.narrow\.test .* which does not cover b\.narrow\.test$/],
  ];
  for (const [why, url, line] of cases) {
    it(`a virtual-host miss names the VirtualService and why: ${why}`, async () => {
      const res = await ask(url);
      assert.equal(res.verdict, '404 NR (no virtual host)');
      assert.ok(res.lines.some((l) => line.test(l)), res.text);
      // Only the VirtualServices with a matching host are named.
      assert.equal(res.lines.filter((l) => l.includes('does not bind')).length, 1, res.text);
    });
  }

  it('a route miss also names a VirtualService for the host that a scope kept out', async () => {
    const res = await ask('http://own.test/x');
    assert.equal(res.verdict, '404 NR (no route matched)');
    assert.match(res.text, /VirtualService default\/own .* does not bind: server hosts team\/\*, istio-system\/own\.test admit only VirtualServices from namespaces team, istio-system; this one is in default/);
    assert.doesNotMatch(res.text, /istio-system\/own .*does not bind/);
  });

  it('a host no VirtualService names says so', async () => {
    const res = await ask('http://nobody.example.com/');
    assert.match(res.text, /no VirtualService has a host matching "nobody\.example\.com"/);
  });
});

describe('explain: which Gateway port a URL means', () => {
  const PORTS = new Map([[80, 8080], [443, 8443]]);
  const cases: Array<[string, number, RegExp | undefined]> = [
    ['http://a.example.com/', 80, undefined],
    ['https://a.example.com/', 443, undefined],
    ['http://a.example.com:8080/', 80, /port 8080 is where Gateway port 80 listens \(--ports 80=8080,443=8443\)/],
    ['https://a.example.com:8443/', 443, /port 8443 is where Gateway port 443 listens/],
    ['http://a.example.com:443/', 443, undefined],
    ['http://a.example.com:9000/', 9000, /not a listen port of --ports 80=8080,443=8443; taken as Gateway port 9000/],
  ];
  for (const [url, port, note] of cases) {
    it(`${url} → Gateway port ${port}`, () => {
      const got = gatewayPortFor(new URL(url), PORTS);
      assert.equal(got.port, port);
      if (note) assert.match(got.note ?? '', note);
      else assert.equal(got.note, undefined);
    });
  }

  it('meshgate explain on the URL you curled explains Gateway port 80; --ports and --port change that', () => {
    const BIN = repoPath('bin/meshgate.js');
    const run = (...args: string[]) => spawnSync(process.execPath, [BIN, 'explain', '--config', repoPath('gateway-config'), ...args], { encoding: 'utf8', timeout: 30_000 });
    const curled = run('http://product.example.com:8080/');
    assert.equal(curled.status, 0, curled.stderr);
    assert.match(curled.stdout, /on Gateway port 80\n/);
    assert.match(curled.stdout, /result: forward\n/);
    const custom = run('--ports', '80=9090', 'http://product.example.com:9090/');
    assert.match(custom.stdout, /on Gateway port 80\n[^]*result: forward\n/);
    const forced = run('--port', '8080', 'http://product.example.com/');
    assert.match(forced.stdout, /on Gateway port 8080\n[^]*result: 404 NR \(no listener\)/);
  });
});
