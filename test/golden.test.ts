// Golden files: a configuration folder in, the printed route table (`meshgate routes`) out, compared
// byte for byte with test/golden/*.txt. Run with UPDATE_GOLDEN=1 to rewrite them after an intended
// change, and review the diff. Also checks what `explain` says about a request that gets 404.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { formatProblem } from '../src/core/config/problem.js';
import { explainRequest } from '../src/core/routing/explain.js';
import { offlineSnapshot } from '../src/cli/offline-snapshot.js';
import { printRoutes } from '../src/core/routing/print.js';
import { compileDir, repoPath } from './helpers/route-table.js';

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
