// The bookinfo sample's networking YAML, as published with Istio's traffic-management tasks, compiled
// for the ingress gateway: it must validate cleanly, route the five productpage paths, leave the
// mesh-only VirtualServices off the gateway, and honour the reviews variants once bound to it.
// Then the YAML of other Istio tasks (test/fixtures/istio-tasks/), beside the sample manifests they
// are applied with: `validate` and `analyze` must find nothing in either.

import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parse } from 'yaml';
import { formatProblem } from '../src/core/config/problem.js';
import { loadConfigDir, parseConfigText, type LoadResult } from '../src/core/config/load.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import type { Snapshot } from '../src/core/snapshot/snapshot.js';
import type { ForwardAction } from '../src/core/routing/types.js';
import { FIXED_DEPS, INGRESS_ROLE, compileDir, domains, lookup, outcome, repoPath, routeConfigFor, toYaml } from './helpers/route-table.js';

const DIR = repoPath('test/fixtures/bookinfo');
const VARIANTS = join(DIR, 'variants');
const PORT = 8080;
const PRODUCTPAGE = 'outbound|9080||productpage.default.svc.cluster.local';
const reviews = (subset: string) => `outbound|9080|${subset}|reviews.default.svc.cluster.local`;

/**
 * The fixture folder with the mesh-only `reviews` VirtualService replaced by a variant file, bound
 * to the bookinfo gateway (`gateways: [bookinfo-gateway]`) and given an external host as well.
 */
async function withGatewayBoundReviews(variantFile: string): Promise<{ snapshot: Snapshot; loaded: LoadResult }> {
  const base = await loadConfigDir(DIR, 'bookinfo');
  const published = parse(await readFile(join(VARIANTS, variantFile), 'utf8')) as { spec: { hosts: string[]; gateways?: string[] } };
  const bound = { ...published, spec: { ...published.spec, hosts: [...published.spec.hosts, 'reviews.example.com'], gateways: ['bookinfo-gateway'] } };
  const variant = parseConfigText(toYaml(bound), `bookinfo/variants/${variantFile}`, base.resources.length);
  const loaded: LoadResult = {
    resources: [...base.resources.filter((r) => !(r.kind === 'VirtualService' && r.metadata.name === 'reviews')), ...variant.resources],
    problems: [...base.problems, ...variant.problems],
  };
  const { snapshot, problems } = buildSnapshot(loaded, INGRESS_ROLE, FIXED_DEPS);
  const errors = problems.filter((p) => p.severity === 'error');
  assert.deepEqual(errors.map(formatProblem), [], `${variantFile} bound to the gateway has no errors`);
  return { snapshot, loaded };
}

describe('bookinfo sample', () => {
  let snap: Snapshot;

  before(async () => {
    const c = await compileDir(DIR, { displayDir: 'bookinfo' });
    assert.deepEqual(c.errors.map(formatProblem), []);
    snap = c.snapshot;
  });

  it('the published files load and validate with zero errors', async () => {
    const c = await compileDir(DIR, { displayDir: 'bookinfo' });
    assert.deepEqual(c.errors.map(formatProblem), []);
    const kinds = c.snapshot.resources.map((r) => r.kind);
    assert.equal(kinds.filter((k) => k === 'Gateway').length, 1);
    assert.equal(kinds.filter((k) => k === 'VirtualService').length, 5);
    assert.equal(kinds.filter((k) => k === 'DestinationRule').length, 4);
    assert.equal(kinds.filter((k) => k === 'Service').length, 4);
  });

  for (const file of ['virtual-service-reviews-test-v2.yaml', 'virtual-service-reviews-80-20.yaml', 'virtual-service-reviews-50-v3.yaml']) {
    it(`the published variant ${file} validates with zero errors`, async () => {
      const text = await readFile(join(VARIANTS, file), 'utf8');
      const parsed = parseConfigText(text, file);
      const { problems } = buildSnapshot(parsed, INGRESS_ROLE, FIXED_DEPS);
      assert.deepEqual(problems.filter((p) => p.severity === 'error').map(formatProblem), []);
      assert.equal(parsed.resources.length, 1);
    });
  }

  it('the registry knows the four services on port 9080 with their pods', () => {
    for (const name of ['productpage', 'reviews', 'ratings', 'details']) {
      const svc = snap.registry.lookup(`${name}.default.svc.cluster.local`);
      assert.ok(svc, name);
      assert.deepEqual(
        svc.ports.map((p) => p.number),
        [9080],
        name,
      );
    }
    assert.equal(snap.registry.lookup('reviews.default.svc.cluster.local')!.endpoints.length, 3);
  });

  it('the Gateway listens on its server port 8080 only', () => {
    assert.deepEqual([...snap.listeners.keys()], [PORT]);
    assert.deepEqual(lookup(snap, { port: 80, host: 'bookinfo.example.com', path: '/productpage' }), { status: 404, reason: 'no listener' });
  });

  for (const path of ['/productpage', '/static/bootstrap/css/bootstrap.min.css', '/login', '/logout', '/api/v1/products', '/api/v1/products/0/reviews', '/productpage?u=normal']) {
    it(`routes ${path} to productpage:9080`, () => {
      assert.equal(outcome(snap, { port: PORT, host: '192.168.49.2', path }), PRODUCTPAGE);
      assert.equal(outcome(snap, { port: PORT, host: 'bookinfo.example.com:8080', path }), PRODUCTPAGE);
    });
  }

  it('the productpage cluster exists and has the productpage pod', () => {
    const res = lookup(snap, { port: PORT, host: 'bookinfo.example.com', path: '/productpage' });
    assert.equal(res.status, 'route');
    if (res.status !== 'route') return;
    const dest = (res.route.action as ForwardAction).destinations;
    assert.equal(dest.length, 1);
    assert.ok(dest[0]!.cluster);
    assert.deepEqual(
      dest[0]!.cluster.endpoints.map((e) => e.address),
      ['10.244.0.16'],
    );
  });

  for (const path of ['/', '/productpage/extra', '/Productpage', '/loginx', '/api/v1', '/api/v1/ratings', '/reviews/0', '/ratings/0', '/details/0']) {
    it(`answers 404 for ${path}`, () => {
      const res = lookup(snap, { port: PORT, host: 'bookinfo.example.com', path });
      assert.deepEqual(res.status === 404 && res.reason, 'no route matched');
    });
  }

  it('prefix /static is a plain string prefix, not a path segment', () => {
    assert.equal(outcome(snap, { port: PORT, host: 'bookinfo.example.com', path: '/staticfiles/x' }), PRODUCTPAGE);
  });

  it('mesh-only VirtualServices (no gateways) do not appear on the gateway', () => {
    assert.deepEqual(domains(snap, PORT), ['*']);
    const vh = routeConfigFor(snap, PORT)!.findVirtualHost('reviews.default.svc.cluster.local')!;
    assert.equal(vh.domain, '*');
    assert.deepEqual([...new Set(vh.routes.map((r) => r.source.virtualService))], ['default/bookinfo']);
    assert.equal(vh.routes.length, 5);
    // The host the mesh-only VirtualService would answer for falls to the gateway's `*` routes.
    assert.equal(outcome(snap, { port: PORT, host: 'reviews', path: '/' }), 404);
    assert.equal(outcome(snap, { port: PORT, host: 'reviews.default.svc.cluster.local', path: '/reviews/0' }), 404);
  });

  describe('reviews variants bound to the gateway', () => {
    it('virtual-service-reviews-test-v2: end-user jason goes to v2, everyone else to v1', async () => {
      const { snapshot } = await withGatewayBoundReviews('virtual-service-reviews-test-v2.yaml');
      assert.deepEqual(domains(snapshot, PORT), ['*', 'reviews.default.svc.cluster.local', 'reviews.example.com']);
      for (const host of ['reviews.example.com', 'reviews.default.svc.cluster.local', 'Reviews.Example.com:8080']) {
        assert.equal(outcome(snapshot, { port: PORT, host, path: '/reviews/0', headers: { 'end-user': 'jason' } }), reviews('v2'), host);
        assert.equal(outcome(snapshot, { port: PORT, host, path: '/reviews/0' }), reviews('v1'), host);
        assert.equal(outcome(snapshot, { port: PORT, host, path: '/reviews/0', headers: { 'end-user': 'Jason' } }), reviews('v1'), host);
        assert.equal(outcome(snapshot, { port: PORT, host, path: '/reviews/0', headers: { 'end-user': 'jason2' } }), reviews('v1'), host);
      }
      // Subsets resolve to the pods labelled with their version.
      const v2 = lookup(snapshot, { port: PORT, host: 'reviews.example.com', headers: { 'end-user': 'jason' } });
      assert.equal(v2.status, 'route');
      if (v2.status === 'route') {
        const d = (v2.route.action as ForwardAction).destinations[0]!;
        assert.deepEqual(
          d.cluster?.endpoints.map((e) => e.labels.version),
          ['v2'],
        );
      }
      // The bookinfo routes on `*` are unchanged.
      assert.equal(outcome(snapshot, { port: PORT, host: 'bookinfo.example.com', path: '/productpage' }), PRODUCTPAGE);
    });

    it('virtual-service-reviews-80-20 splits 80/20 between v1 and v2', async () => {
      const { snapshot } = await withGatewayBoundReviews('virtual-service-reviews-80-20.yaml');
      const res = lookup(snapshot, { port: PORT, host: 'reviews.example.com', path: '/reviews/0' });
      assert.equal(res.status, 'route');
      if (res.status !== 'route') return;
      const a = res.route.action as ForwardAction;
      assert.deepEqual(
        a.destinations.map((d) => [d.clusterName, d.weight]),
        [
          [reviews('v1'), 80],
          [reviews('v2'), 20],
        ],
      );
      assert.equal(a.totalWeight, 100);
      assert.ok(a.destinations.every((d) => d.cluster !== undefined));
    });

    it('virtual-service-reviews-50-v3 splits 50/50 between v1 and v3', async () => {
      const { snapshot } = await withGatewayBoundReviews('virtual-service-reviews-50-v3.yaml');
      assert.deepEqual(outcome(snapshot, { port: PORT, host: 'reviews.example.com', path: '/' }), [reviews('v1'), reviews('v3')]);
    });
  });
});

describe('Istio task YAML beside the sample manifests it is applied with', () => {
  const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));
  const meshgate = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  // authorization: httpbin and sleep (ServiceAccount, Service, Deployment) in foo with the dry-run,
  // JWT and TCP tasks' policies; egress: sleep with the external-service and TLS-origination
  // ServiceEntries and DestinationRules, which hold no route and no Gateway.
  for (const name of ['authorization', 'egress']) {
    const dir = repoPath(`test/fixtures/istio-tasks/${name}`);
    it(`${name}: validate reports no warning (ServiceAccounts, RBAC and Deployments are not config mistakes)`, () => {
      const r = meshgate('validate', dir);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, / 0 errors, 0 warnings/);
    });
    it(`${name}: analyze finds nothing (selectors match the Deployments' pods; no Gateway needs no route)`, () => {
      const r = meshgate('analyze', dir, '-o', 'json');
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), []);
    });
  }
});
