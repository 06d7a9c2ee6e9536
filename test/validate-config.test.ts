// Validation of whole configurations: the bookinfo configuration from Istio's traffic-management tasks
// validates cleanly, validateAll keeps what has only warnings, a YAML syntax error on reload keeps the
// last good version, and a config folder that is not there is one line and exit 1.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseConfigText, type LoadResult } from '../src/core/config/load.js';
import { formatProblem } from '../src/core/config/problem.js';
import { validateAll, validateResource } from '../src/core/config/validate.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import { cluster, FIXED_DEPS, INGRESS_ROLE, outcome } from './helpers/route-table.js';
import { check, docOf, err, load, SERVER } from './helpers/validate-table.js';
import { BOOKINFO } from './helpers/bookinfo-yaml.js';

describe('bookinfo from the traffic-management tasks', () => {
  it('validates with no problems at all', () => {
    const resources = load(BOOKINFO);
    assert.equal(resources.length, 9);
    const { valid, problems } = validateAll(resources);
    assert.deepEqual(problems.map(formatProblem), []);
    assert.equal(valid.length, 9);
  });
});

describe('validateAll', () => {
  it('leaves out resources with errors and keeps those with warnings only', () => {
    const text = [
      docOf('VirtualService', 'hosts: [a.com]\nhttp:\n- route: [{destination: {host: a}, weight: -5}, {destination: {host: b}}]', 'bad'),
      docOf('Gateway', SERVER('  tls: {credentialName: c}'), 'warned'),
      docOf('DestinationRule', 'host: a', 'good'),
    ].join('---\n');
    const { valid, problems } = validateAll(load(text));
    assert.deepEqual(valid.map((r) => r.metadata.name), ['warned', 'good']);
    assert.deepEqual(problems.map((p) => [p.severity, p.resource, p.field, p.line]), [
      ['error', 'VirtualService default/bad', 'spec.http[0].route[0].weight', 7],
      ['warning', 'Gateway default/warned', 'spec.servers[0].tls', 16], // the second document starts at line 9
    ]);
    assert.equal(formatProblem(problems[0]!), 'test.yaml:7 VirtualService default/bad spec.http[0].route[0].weight: must not be negative');
  });
  it('checks metadata names', () => {
    const found = validateResource(load(docOf('Gateway', SERVER('', 'HTTP', 80), 'my.gateway'))[0]!);
    check(found, [err('metadata.name', 'may use only')]);
  });
  it('reports a spec that is not a mapping', () => {
    for (const spec of ['[1, 2]', '"text"', '42']) {
      const found = validateResource(load(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: t}\nspec: ${spec}\n`)[0]!);
      check(found, [err('spec', 'spec must be a mapping')]);
    }
  });
  it('ignores kinds it does not validate yet', () => {
    const text = 'apiVersion: v1\nkind: Secret\nmetadata: {name: a}\ndata: {tls.crt: 42}\n';
    assert.deepEqual(validateResource(load(text)[0]!), []);
  });
});

describe('a YAML syntax error on reload', () => {
  const GW = 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: istio-system}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]\n';
  const vs = (name: string, host: string, to: string): string =>
    `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${name}}\nspec:\n  hosts: [${host}]\n  gateways: [istio-system/gw]\n  http:\n  - route: [{destination: {host: ${to}}}]\n`;
  const files = (vs: string): LoadResult => {
    const parts = [parseConfigText(GW, 'gw.yaml'), parseConfigText(vs, 'vs.yaml', 1)];
    return { resources: parts.flatMap((p) => p.resources), problems: parts.flatMap((p) => p.problems) };
  };

  it('is reported once, with its real line and column, and the last good resources of the file keep serving', () => {
    const first = buildSnapshot(files(`${vs('a', 'a.example.com', 'svc-a')}---\n${vs('b', 'b.example.com', 'svc-b')}`), INGRESS_ROLE, FIXED_DEPS);
    assert.deepEqual(first.problems, []);
    // The edit changes the first document and breaks the second: the flow sequence opened on line 14
    // is still open when line 15 starts, which is where the parser stops.
    const broken = `${vs('a', 'a.example.com', 'svc-a2')}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b}\nspec:\n  hosts: [b.example.com\n  gateways: [istio-system/gw]\n`;
    const second = buildSnapshot(files(broken), INGRESS_ROLE, FIXED_DEPS, first.snapshot);
    const shown = second.problems.map(formatProblem);
    assert.equal(shown.length, 1, shown.join('\n'));
    const p = second.problems[0]!;
    assert.equal(p.file, 'vs.yaml');
    assert.equal(p.severity, 'error');
    assert.equal(p.line, 15, shown[0]);
    assert.ok(p.column !== undefined && p.column > 0, shown[0]);
    assert.match(shown[0]!, /^vs\.yaml:15:\d+ cannot parse: .*; the last good version keeps serving for VirtualService default\/b$/);
    // The broken document's last good version serves; the good document's edit applies.
    assert.equal(outcome(second.snapshot, { host: 'b.example.com' }), cluster('svc-b'));
    assert.equal(outcome(second.snapshot, { host: 'a.example.com' }), cluster('svc-a2'));
  });

  it('on the first load there is nothing to keep: only the parse error', () => {
    const { problems } = buildSnapshot(files('kind: [\n'), INGRESS_ROLE, FIXED_DEPS);
    assert.equal(problems.length, 1, problems.map(formatProblem).join('\n'));
    assert.match(formatProblem(problems[0]!), /^vs\.yaml:\d+:\d+ cannot parse: [^;]+$/);
  });
});

describe('a config folder that is not there', () => {
  const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));
  const commands: string[][] = [['validate', 'no-such-folder'], ['routes', '--config', 'no-such-folder'], ['explain', '--config', 'no-such-folder', 'http://a.example.com/'], ['gateway', '--config', 'no-such-folder', '--ports', '80=0', '--workers', '2']];
  for (const args of commands) {
    it(`meshgate ${args[0]} says so in one line and exits 1`, () => {
      const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr, `meshgate ${args[0]}: config folder no-such-folder does not exist\n`);
      assert.equal(r.stdout, '');
    });
  }
});
