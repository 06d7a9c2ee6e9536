// EnvoyFilter as configuration: the kind is known to the loader and the cluster source; the task's
// global rate limit YAML is accepted with one warning per patch at its file, line and field (validate
// and analyze); what Envoy would refuse in a local rate limit is an error; and which proxies and
// routes a compiled EnvoyFilter binds (context, namespace and selector, virtual host and route).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../src/core/config/load.js';
import { knownKind } from '../src/core/config/kinds.js';
import { formatProblem } from '../src/core/config/problem.js';
import { validateResource } from '../src/core/config/validate.js';
import { KUBE_KINDS } from '../src/core/sources/kube-objects.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import type { SidecarRole } from '../src/core/snapshot/snapshot.js';
import { FIXED_DEPS, compileYaml, repoPath } from './helpers/route-table.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';

const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });

/** An EnvoyFilter with one local rate limit HTTP_FILTER patch; `bucket` and `context` vary. */
function localLimit(opts: { name?: string; namespace?: string; context?: string; labels?: string; bucket?: string; extra?: string; position?: string } = {}): string {
  const [operation, subFilter] = (opts.position ?? 'INSERT_BEFORE').split(' ');
  return `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ${opts.name ?? 'limit'}, namespace: ${opts.namespace ?? 'istio-system'}}
spec:
${opts.labels ? `  workloadSelector: {labels: ${opts.labels}}\n` : ''}  configPatches:
  - applyTo: HTTP_FILTER
    match: {context: ${opts.context ?? 'ANY'}, listener: {filterChain: {filter: {name: envoy.filters.network.http_connection_manager${subFilter ? `, subFilter: {name: ${subFilter}}` : ''}}}}}
    patch:
      operation: ${operation}
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          stat_prefix: limit
          token_bucket: ${opts.bucket ?? '{max_tokens: 5, tokens_per_fill: 5, fill_interval: 60s}'}
          filter_enabled: {default_value: {numerator: 100}}
          filter_enforced: {default_value: {numerator: 100}}
${opts.extra ?? ''}`;
}

describe('EnvoyFilter: the kind', () => {
  it('is read at networking.istio.io/v1alpha3 and watched in a cluster', () => {
    assert.equal(knownKind('networking.istio.io/v1alpha3', 'EnvoyFilter'), 'known');
    assert.ok(KUBE_KINDS.some((k) => k.kind === 'EnvoyFilter' && k.plural === 'envoyfilters' && k.apiVersion === 'networking.istio.io/v1alpha3'));
  });
});

describe("EnvoyFilter: Istio's global rate limit task YAML", () => {
  it('validate and analyze accept it, with one warning per patch naming file, line and field', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-envoyfilter-cfg-'));
    try {
      await copyFile(repoPath('test/fixtures/istio-tasks/rate-limit/global-rate-limit.yaml'), join(dir, 'global.yaml'));
      const validate = run('validate', dir);
      assert.equal(validate.status, 0, validate.stdout + validate.stderr);
      const lines = validate.stdout.split('\n').filter((l) => l.includes('warning:'));
      assert.deepEqual(lines.map((l) => l.replace(dir, 'DIR')), [
        'DIR/global.yaml:25 EnvoyFilter istio-system/filter-ratelimit spec.configPatches[0].patch.value.name: warning: envoy.filters.http.ratelimit (global rate limits through a rate limit service) is not supported; this patch is ignored',
        'DIR/global.yaml:60 EnvoyFilter istio-system/filter-ratelimit-svc spec.configPatches[0].patch.value.rate_limits: warning: rate_limits (actions for envoy.filters.http.ratelimit) is not supported; this patch is ignored',
        'DIR/global.yaml:87 EnvoyFilter istio-system/filter-ratelimit-svc-api spec.configPatches[0].patch.value.route: warning: route.rate_limits (actions for envoy.filters.http.ratelimit) is not supported; this patch is ignored',
      ]);
      const analyze = run('analyze', dir, '-o', 'json');
      assert.equal(analyze.status, 0, analyze.stderr);
      const fields = (JSON.parse(analyze.stdout) as Array<{ field?: string; message: string }>).map((f) => f.field);
      assert.deepEqual(fields, ['spec.configPatches[0].patch.value.name', 'spec.configPatches[0].patch.value.rate_limits', 'spec.configPatches[0].patch.value.route']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the local rate limit forms validate without a problem', async () => {
    for (const file of ['local-rate-limit.yaml', 'local-rate-limit-route.yaml']) {
      const dir = await mkdtemp(join(tmpdir(), 'meshgate-envoyfilter-cfg-'));
      try {
        await copyFile(repoPath(`test/fixtures/istio-tasks/rate-limit/${file}`), join(dir, file));
        const r = run('validate', dir);
        assert.match(r.stdout, / 0 errors, 0 warnings/, r.stdout);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  });
});

describe('EnvoyFilter: what Envoy would refuse, and what meshgate ignores', () => {
  const problems = (yaml: string) => {
    const { resources } = parseConfigText(yaml, 'ef.yaml');
    return validateResource(resources[0]!).map(formatProblem);
  };

  it('errors: fill_interval outside protobuf form or under 50ms, no max_tokens', () => {
    assert.match(problems(localLimit({ bucket: '{max_tokens: 5, fill_interval: 1m}' })).join('\n'), /token_bucket\.fill_interval: the string "1m" is not a protobuf duration/);
    assert.match(problems(localLimit({ bucket: '{max_tokens: 5, fill_interval: 0.01s}' })).join('\n'), /fill_interval: must be at least 50ms/);
    assert.match(problems(localLimit({ bucket: '{fill_interval: 1s}' })).join('\n'), /max_tokens: max_tokens is required/);
    assert.match(problems(localLimit({ extra: '          enable_x_ratelimit_headers: DRAFT_VERSION_04\n' })).join('\n'), /enable_x_ratelimit_headers: the string "DRAFT_VERSION_04" is not OFF or DRAFT_VERSION_03/);
    assert.deepEqual(problems(localLimit({ extra: '          enable_x_ratelimit_headers: DRAFT_VERSION_03\n' })), []);
  });

  it('warnings: other filters, other applyTo, ADD after the router, unread fields', () => {
    const lua = localLimit().replace('envoy.filters.http.local_ratelimit', 'envoy.filters.http.lua');
    assert.match(problems(lua).join('\n'), /spec\.configPatches\[0\]\.patch\.value\.name: warning: envoy\.filters\.http\.lua is not supported; this patch is ignored/);
    assert.match(problems(localLimit().replace('applyTo: HTTP_FILTER', 'applyTo: CLUSTER')).join('\n'), /configPatches\[0\]\.applyTo: warning: CLUSTER patches are not supported/);
    assert.match(problems(localLimit().replace('INSERT_BEFORE', 'ADD')).join('\n'), /patch\.operation: warning: ADD puts envoy\.filters\.http\.local_ratelimit after envoy\.filters\.http\.router/);
    assert.match(problems(localLimit({ extra: '          descriptors: []\n' })).join('\n'), /typed_config\.descriptors: warning: envoy\.filters\.http\.local_ratelimit descriptors is not supported; this field is ignored/);
  });

  // Route-level rate_limits next to a local rate limit feed its descriptors, not the global filter:
  // the warning says whose actions they are.
  it('route.rate_limits beside a local rate limit: a warning naming its descriptors', () => {
    const route = [
      'apiVersion: networking.istio.io/v1alpha3', 'kind: EnvoyFilter', 'metadata: {name: by-path, namespace: default}', 'spec:', '  configPatches:',
      '  - applyTo: HTTP_ROUTE', '    match: {context: SIDECAR_INBOUND, routeConfiguration: {vhost: {name: "inbound|http|8000", route: {action: ANY}}}}',
      '    patch:', '      operation: MERGE', '      value:', '        route: {rate_limits: [{actions: [{remote_address: {}}]}]}',
      '        typed_per_filter_config:', '          envoy.filters.http.local_ratelimit: {stat_prefix: p, token_bucket: {max_tokens: 10, tokens_per_fill: 10, fill_interval: 60s}}', '',
    ].join('\n');
    assert.deepEqual(problems(route).map((p) => p.replace(/^ef\.yaml:\d+ /, '')), [
      'EnvoyFilter default/by-path spec.configPatches[0].patch.value.route: warning: route.rate_limits (actions for descriptors of envoy.filters.http.local_ratelimit) is not supported; this patch is ignored',
    ]);
  });
});

describe('EnvoyFilter: which proxies and routes it binds', () => {
  const vs = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: default}\nspec: {hosts: ["*"], gateways: [istio-system/gw], http: [{route: [{destination: {host: svc}}]}]}\n';
  const ROUTES = [gatewayYaml(['*'], { namespace: 'istio-system' }), vs, serviceYaml('svc', [{ pod: 'svc-0', port: 9 }])].join('---\n');
  const gatewayRules = (yaml: string) => compileYaml(`${ROUTES}---\n${yaml}`).snapshot.rateLimits.rules.map((r) => r.id);
  const SIDECAR: SidecarRole = { kind: 'sidecar', namespace: 'default', labels: { app: 'svc' }, serviceAccount: 'svc', outboundTrafficPolicy: 'ALLOW_ANY' };
  const sidecar = (yaml: string) => {
    const { snapshot } = buildSnapshot(parseConfigText(`${ROUTES}---\n${yaml}`, 'ef.yaml'), SIDECAR, FIXED_DEPS);
    return { outbound: snapshot.rateLimits.rules.length - (snapshot.rateLimits.inbound([9])?.length ?? 0), inbound: snapshot.rateLimits.inbound([9])?.length ?? 0 };
  };

  it('a gateway: contexts GATEWAY and ANY; the root namespace, its own, or not another', () => {
    assert.deepEqual(gatewayRules(localLimit({ context: 'GATEWAY' })), ['EnvoyFilter istio-system/limit configPatches[0]']);
    assert.deepEqual(gatewayRules(localLimit({ context: 'SIDECAR_INBOUND' })), []);
    assert.deepEqual(gatewayRules(localLimit({ context: 'GATEWAY', namespace: 'default' })), [], "another namespace's EnvoyFilter");
    assert.deepEqual(gatewayRules(localLimit({ context: 'GATEWAY', labels: '{app: other}' })), [], 'a selector that picks another workload');
    assert.deepEqual(gatewayRules(localLimit({ context: 'GATEWAY', labels: '{istio: ingressgateway}' })).length, 1);
  });

  it('a sidecar: SIDECAR_OUTBOUND binds its outbound routes, SIDECAR_INBOUND its inbound side, ANY both', () => {
    assert.deepEqual(sidecar(localLimit({ context: 'SIDECAR_OUTBOUND' })), { outbound: 1, inbound: 0 });
    assert.deepEqual(sidecar(localLimit({ context: 'SIDECAR_INBOUND' })), { outbound: 0, inbound: 1 });
    assert.deepEqual(sidecar(localLimit({ context: 'ANY', namespace: 'default', labels: '{app: svc}' })).inbound, 1);
    assert.deepEqual(sidecar(localLimit({ context: 'ANY', namespace: 'other' })), { outbound: 0, inbound: 0 });
  });

  it("where the patch puts the filter in Istio's chain is where it counts", () => {
    const at = (position: string) => compileYaml(`${ROUTES}---\n${localLimit({ context: 'GATEWAY', position })}`).snapshot.rateLimits.rules.map((r) => r.position);
    // The task's form, INSERT_BEFORE with no subFilter: the front of the chain, as INSERT_FIRST.
    assert.deepEqual(at('INSERT_BEFORE'), ['before-authn']);
    assert.deepEqual(at('INSERT_FIRST'), ['before-authn']);
    assert.deepEqual(at('INSERT_BEFORE envoy.filters.http.jwt_authn'), ['before-authn']);
    assert.deepEqual(at('INSERT_AFTER envoy.filters.http.jwt_authn'), ['before-authz']);
    assert.deepEqual(at('INSERT_BEFORE envoy.filters.http.rbac'), ['before-authz']);
    assert.deepEqual(at('INSERT_AFTER envoy.filters.http.rbac'), ['after-authz']);
    assert.deepEqual(at('INSERT_BEFORE envoy.filters.http.fault'), ['after-authz']);
    assert.deepEqual(at('INSERT_AFTER envoy.filters.http.fault'), ['after-fault']);
    assert.deepEqual(at('INSERT_BEFORE envoy.filters.http.router'), ['after-fault']);
    const lua = compileYaml(`${ROUTES}---\n${localLimit({ context: 'GATEWAY', position: 'INSERT_BEFORE envoy.filters.http.lua' })}`);
    assert.deepEqual(lua.snapshot.rateLimits.rules.map((r) => r.position), ['after-fault']);
    assert.ok(lua.problems.some((p) => /subFilter\.name$/.test(p.field) && /envoy\.filters\.http\.lua is not a filter of Istio's HTTP filter chain/.test(p.message)), lua.problems.map(formatProblem).join('\n'));
  });

  it('a route configuration with no HTTP_FILTER patch for its context is a warning and limits nothing', () => {
    const routeOnly = `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: route-only, namespace: istio-system}
spec:
  configPatches:
  - applyTo: HTTP_ROUTE
    match: {context: GATEWAY, routeConfiguration: {vhost: {name: "*:80", route: {action: ANY}}}}
    patch:
      operation: MERGE
      value:
        typed_per_filter_config:
          envoy.filters.http.local_ratelimit:
            "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
            stat_prefix: limit
            token_bucket: {max_tokens: 1, fill_interval: 1s}
            filter_enabled: {default_value: {numerator: 100}}
`;
    const c = compileYaml(`${ROUTES}---\n${routeOnly}`);
    assert.deepEqual(c.snapshot.rateLimits.rules, []);
    assert.ok(c.problems.some((p) => p.field === 'spec.configPatches[0]' && /no HTTP_FILTER patch/.test(p.message)), c.problems.map(formatProblem).join('\n'));
  });
});
