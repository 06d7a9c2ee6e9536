// `meshgate analyze` and the analyzers of src/core/analyze/: one config with each class of mistake,
// checked for code, file:line and resource; the demo's config analyzes clean; output formats,
// suppressions and the exit status by --failure-threshold; and the same findings reach a snapshot
// (what hot reload logs once and the admin /problems lists).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfigDir } from '../src/core/config/load.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import { FIXED_DEPS, INGRESS_ROLE } from './helpers/route-table.js';

const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));
const MISTAKES = 'test/fixtures/analyze/mistakes';

function run(...args: string[]) {
  return spawnSync(process.execPath, [BIN, 'analyze', ...args], { encoding: 'utf8', timeout: 60_000 });
}

interface Row {
  code: string;
  level: string;
  resource: string;
  origin: string;
  field: string;
  message: string;
}

const EXPECTED: ReadonlyArray<[code: string, origin: string, resource: string, field: string, text: string]> = [
  ['IST0145', 'gateway.yaml:27', 'Gateway default/demo-gateway', 'spec.servers[1]', 'other-gateway'],
  ['IST0145', 'more.yaml:12', 'Gateway default/other-gateway', 'spec.servers[0]', 'demo-gateway'],
  ['IST0127', 'more.yaml:27', 'AuthorizationPolicy default/nobody', 'spec.selector.matchLabels', 'app=user-servise'],
  ['IST0128', 'more.yaml:41', 'DestinationRule default/external', 'spec.trafficPolicy.tls.insecureSkipVerify', 'does not verify'],
  ['MG0001', 'more.yaml:43', 'DestinationRule default/user-service', 'metadata.name', 'destination-rules.yaml:18'],
  ['IST0101', 'virtual-services.yaml:15', 'VirtualService default/product-service', 'spec.http[0].route[0].destination.host', 'produkt-service'],
  ['IST0101', 'virtual-services.yaml:19', 'VirtualService default/product-service', 'spec.http[0].route[1].destination.subset', '"v3"'],
  ['IST0101', 'virtual-services.yaml:31', 'VirtualService default/api', 'spec.gateways[0]', 'demo-gatewy'],
  ['IST0132', 'virtual-services.yaml:44', 'VirtualService default/shop', 'spec.hosts[0]', 'shop.example.com'],
  ['IST0130', 'virtual-services.yaml:51', 'VirtualService default/shop', 'spec.http[1]', 'no match'],
  ['IST0131', 'virtual-services.yaml:76', 'VirtualService default/rules', 'spec.http[1].match[0]', 'rule 0'],
  ['IST0130', 'virtual-services.yaml:83', 'VirtualService default/rules', 'spec.http[2]', 'already in an earlier rule'],
  ['IST0109', 'virtual-services.yaml:97', 'VirtualService default/mesh-a', 'spec.hosts[0]', 'user-service.default.svc.cluster.local'],
  ['IST0109', 'virtual-services.yaml:110', 'VirtualService default/mesh-b', 'spec.hosts[0]', 'mesh-a'],
];

describe('meshgate analyze', () => {
  it('finds each class of mistake with its code, file:line, resource and field, and exits 1', () => {
    const r = run(MISTAKES, '-o', 'json');
    assert.equal(r.status, 1, r.stderr);
    const rows = JSON.parse(r.stdout) as Row[];
    const got = rows.map((x) => [x.code, x.origin.replace(`${MISTAKES}/`, ''), x.resource, x.field]);
    assert.deepEqual(got, EXPECTED.map(([code, origin, resource, field]) => [code, origin, resource, field]));
    rows.forEach((row, i) => assert.ok(row.message.includes(EXPECTED[i]![4]), `${row.code}: ${row.message}`));
    // Each finding says what to do.
    for (const row of rows) assert.match(row.message, /; \S/);
  });

  it('analyzes the demo config clean (text output, exit 0)', () => {
    const r = run();
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /No validation issues found/);
  });

  it('prints YAML, suppresses by CODE=KIND/NAME (with *), and sets the exit status by --failure-threshold', () => {
    const suppress = ['--suppress', 'IST0101=VirtualService/*', '--suppress', 'IST0145=Gateway/*', '--suppress', 'IST0109=VirtualService default/mesh-*', '--suppress', 'MG0001=DestinationRule/user-service'];
    const y = run(MISTAKES, '-o', 'yaml', ...suppress);
    const rows = parseYaml(y.stdout) as Row[];
    assert.deepEqual([...new Set(rows.map((x) => x.level))].sort(), ['info', 'warning']);
    assert.equal(y.status, 0, 'only warnings and info left: below the default threshold (error)');
    assert.equal(run(MISTAKES, ...suppress, '--failure-threshold', 'warning').status, 1);
    const onlyInfo = run(MISTAKES, ...suppress, '--suppress', 'IST0130=*', '--suppress', 'IST0132=*', '--suppress', 'IST0127=*', '--suppress', 'IST0128=*', '--failure-threshold', 'warning');
    assert.equal(onlyInfo.status, 0, onlyInfo.stdout);
    assert.match(onlyInfo.stdout, /\[IST0131\]/);
  });

  it('refuses a bad option with exit 2', () => {
    assert.equal(run(MISTAKES, '--failure-threshold', 'fatal').status, 2);
    assert.equal(run(MISTAKES, '--suppress', 'nonsense').status, 2);
    assert.equal(run(MISTAKES, '-o', 'xml').status, 2);
  });

  it('reports an unknown field with the close name as IST0106', () => {
    const r = run('test/fixtures/analyze/typo', '-o', 'json');
    const rows = JSON.parse(r.stdout) as Row[];
    assert.equal(r.status, 1);
    assert.deepEqual(rows.map((x) => [x.code, x.field]), [['IST0106', 'spec.gatways']]);
    assert.match(rows[0]!.message, /did you mean `gateways`\?/);
  });
});

// A Gateway whose selector no gateway carries: the finding names the labels the gateway does carry
// (the command's default was once said wrong), and the flag that would give it the selector's.
describe('a Gateway selecting no gateway', () => {
  it('names the gateway\'s labels, as --labels sets them or by default', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-analyze-selector-'));
    try {
      await writeFile(join(dir, 'gw.yaml'), 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: egress, namespace: default}\nspec:\n  selector: {istio: egressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]\n');
      for (const [args, labels] of [[[], 'app=istio-ingressgateway,istio=ingressgateway'], [['--labels', 'app=edge'], 'app=edge']] as const) {
        const rows = JSON.parse(run(dir, '-o', 'json', ...args).stdout) as Row[];
        const row = rows.find((x) => x.code === 'IST0101' && x.field === 'spec.selector');
        assert.equal(row?.message, `referenced selector not found: "istio=egressgateway"; no gateway workload carries these labels (the gateway's labels are ${labels}); select those, or start the gateway with --labels istio=egressgateway`);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('analyzers for the Gateway API, Telemetry, RequestAuthentication, Sidecar, gateway Services and port names', () => {
  const MORE = 'test/fixtures/analyze/more-kinds';
  const MORE_EXPECTED: ReadonlyArray<[code: string, origin: string, field: string, text: string]> = [
    ['IST0101', 'gateway-api.yaml:14', 'spec.parentRefs[0].name', '"default/edg"'],
    ['IST0101', 'gateway-api.yaml:16', 'spec.parentRefs[1].sectionName', '"https"'],
    ['IST0101', 'gateway-api.yaml:20', 'spec.rules[0].backendRefs[1]', 'default/web-v2 does not exist'],
    ['MG0002', 'gateway-api.yaml:21', 'spec.rules[0].backendRefs[2]', 'no ReferenceGrant'],
    ['MG0008', 'ingress-tls.yaml:41', 'spec.ingress[0].tls', 'PeerAuthentication test/default leaves port 9080 STRICT'],
    ['IST0162', 'istio.yaml:7', 'spec.servers[0].port.number', 'port 8443'],
    ['IST0127', 'istio.yaml:14', 'spec.selector.matchLabels', 'app=wbe'],
    ['IST0133', 'istio.yaml:17', 'spec.jwtRules[0].jwksUri', 'plain http'],
    ['IST0160', 'istio.yaml:21', 'metadata.name', 'tracing, logs'],
    ['IST0157', 'istio.yaml:24', 'spec.tracing[0].providers[0].name', '"jaegr"'],
    ['IST0160', 'istio.yaml:28', 'metadata.name', 'tracing, logs'],
    ['IST0101', 'istio.yaml:37', 'spec.selector.matchLabels', 'referenced selector not found: no workload in namespace default carries the labels app=nobody'],
    ['IST0118', 'services.yaml:9', 'spec.ports[1].name', '"metrics"'],
    ['IST0111', 'sidecars.yaml:4', 'metadata.name', 'default, default-too'],
    ['IST0111', 'sidecars.yaml:10', 'metadata.name', 'default, default-too'],
    ['IST0110', 'sidecars.yaml:18', 'spec.workloadSelector', 'web-a, web-b'],
    ['IST0110', 'sidecars.yaml:25', 'spec.workloadSelector', 'web-a, web-b'],
    ['IST0101', 'sidecars.yaml:32', 'spec.workloadSelector.labels', 'app=ghost'],
    ['IST0119', 'sidecars.yaml:39', 'spec.selector.matchLabels', 'port 5432 (tcp-postgres'],
  ];

  it('reports each with its code, file:line and field', () => {
    const r = run(MORE, '-o', 'json');
    assert.equal(r.status, 1, r.stderr);
    const rows = JSON.parse(r.stdout) as Row[];
    assert.deepEqual(rows.map((x) => [x.code, x.origin.replace(`${MORE}/`, ''), x.field]), MORE_EXPECTED.map(([code, origin, field]) => [code, origin, field]));
    rows.forEach((row, i) => assert.ok(row.message.includes(MORE_EXPECTED[i]![3]), `${row.code}: ${row.message}`));
  });

  it('reports what a Gateway API status would show as wrong (MG0006), and a certificateRef to no Secret (IST0101, with --certs)', async () => {
    const STATUS = 'test/fixtures/analyze/gateway-api-status';
    const certs = await mkdtemp(join(tmpdir(), 'meshgate-analyze-certs-'));
    try {
      const r = run(STATUS, '--certs', certs, '-o', 'json');
      assert.equal(r.status, 1, r.stderr);
      const rows = (JSON.parse(r.stdout) as Row[]).map((x) => [x.code, x.origin.replace(`${STATUS}/`, ''), x.field, x.message]);
      assert.deepEqual(rows.map((x) => x.slice(0, 3)), [
        ['IST0101', 'gateway-api.yaml:19', 'spec.listeners[1].tls.certificateRefs[0].name'],
        ['MG0006', 'gateway-api.yaml:25', 'spec.parentRefs[0]'],
      ]);
      assert.match(rows[0]![3]!, /referenced Secret not found: "default\/missing-cert"/);
      assert.match(rows[1]![3]!, /Accepted False \(NoMatchingListenerHostname\)/);
      // Without --certs in file mode whether a Secret exists cannot be known: only the status finding.
      assert.deepEqual((JSON.parse(run(STATUS, '-o', 'json').stdout) as Row[]).map((x) => x.code), ['MG0006']);
    } finally {
      await rm(certs, { recursive: true, force: true });
    }
  });

  it('warns about an empty folder, an emptied file and a config with no routes (exit 0 by default)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-analyze-empty-'));
    try {
      const empty = run(dir, '-o', 'json');
      assert.equal(empty.status, 0);
      assert.deepEqual((JSON.parse(empty.stdout) as Row[]).map((x) => [x.code, x.level, x.origin]), [['MG0004', 'warning', dir]]);
      assert.equal(run(dir, '--failure-threshold', 'warning').status, 1);
      await writeFile(join(dir, 'routes.yaml'), '');
      await copyFile('gateway-config/gateway.yaml', join(dir, 'gateway.yaml'));
      const rows = JSON.parse(run(dir, '-o', 'json').stdout) as Row[];
      assert.deepEqual(rows.map((x) => [x.code, x.origin]).sort(), [['MG0003', `${join(dir, 'routes.yaml')}:1`], ['MG0004', dir]]);
      assert.match(rows.find((x) => x.code === 'MG0004')!.message, /no routes/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the same analyzers in a snapshot', () => {
  it('are listed in snapshot.problems (admin /problems) but never counted as build errors', async () => {
    const loaded = await loadConfigDir(MISTAKES);
    const { snapshot, problems, findings } = buildSnapshot(loaded, INGRESS_ROLE, FIXED_DEPS);
    assert.ok(findings.some((f) => f.code === 'IST0101'));
    assert.ok(!problems.some((p) => p.code?.startsWith('IST')));
    for (const f of findings) assert.ok(snapshot.problems.includes(f));
  });
});

describe('meshgate explain tells the whole story', () => {
  function explain(...args: string[]) {
    return spawnSync(process.execPath, [BIN, 'explain', ...args], { encoding: 'utf8', timeout: 60_000 });
  }

  it("says 403 for the demo's /user/admin, with the DENY policy, its rule and where it is", () => {
    const r = explain('http://api.example.com/user/admin');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /endpoint 127\.0\.0\.1:\d+ ready, sidecar \(mTLS\)/);
    assert.match(r.stdout, /mTLS STRICT \(PeerAuthentication istio-system\/default\)/);
    assert.match(r.stdout, /denied: DENY rules\[0\] of AuthorizationPolicy default\/user-service-no-admin matched \(.*security\.yaml:\d+\)/);
    assert.match(r.stdout, /^result: 403 RBAC: access denied \(AuthorizationPolicy default\/user-service-no-admin\)$/m);
  });

  it('says forward when the sidecar allows the gateway, and 403 for a caller the ALLOW policy does not name', () => {
    assert.match(explain('http://api.example.com/user/42').stdout, /^result: forward$/m);
    const other = explain('--principal', 'spiffe://cluster.local/ns/default/sa/stranger', 'http://api.example.com/user/42').stdout;
    assert.match(other, /^result: 403 RBAC: access denied/m);
  });

  it('says 503 NC for a subset no DestinationRule defines, and why', () => {
    const r = explain('--config', MISTAKES, 'http://product.example.com/');
    assert.match(r.stdout, /no DestinationRule for product-service\.default\.svc\.cluster\.local defines subset v3\) → 503 NC/);
    assert.match(r.stdout, /^result: 503 NC for 90% .*; 503 NC for 10% /m);
  });
});
