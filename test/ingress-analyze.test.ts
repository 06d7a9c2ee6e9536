// `meshgate analyze` on Kubernetes Ingresses: Istio's task analyzes clean; a backend Service that
// does not exist, a port it lacks (by number or name) and a tls secretName with no Secret (with
// --certs) are IST0101 at the Ingress's file:line; an Ingress that looks meant for the mesh but is
// not served (no class under STRICT, a missing IngressClass) is MG0007.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));
const TASK = 'test/fixtures/analyze/ingress-task';
const MISTAKES = 'test/fixtures/analyze/ingress-mistakes';

const analyze = (...args: string[]) => spawnSync(process.execPath, [BIN, 'analyze', ...args], { encoding: 'utf8', timeout: 60_000 });

describe('meshgate analyze on Ingresses', () => {
  it("Istio's task YAML analyzes clean", () => {
    const r = analyze(TASK);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /No validation issues/);
  });

  it('reports each broken reference with its code, file:line and field', async () => {
    const certs = await mkdtemp(join(tmpdir(), 'meshgate-ingress-certs-'));
    try {
      const r = analyze(MISTAKES, '--certs', certs, '-o', 'json');
      assert.equal(r.status, 1, r.stderr);
      const rows = (JSON.parse(r.stdout) as Array<{ code: string; origin: string; field: string; message: string }>).map((x) => [x.code, x.origin.replace(`${MISTAKES}/`, ''), x.field, x.message]);
      assert.deepEqual(
        rows.map((x) => x.slice(0, 3)),
        [
          ['IST0101', 'ingress.yaml:9', 'spec.tls[0].secretName'],
          ['IST0101', 'ingress.yaml:19', 'spec.rules[0].http.paths[0].backend.service.port.number'],
          ['IST0101', 'ingress.yaml:24', 'spec.rules[0].http.paths[1].backend.service.name'],
          ['IST0101', 'ingress.yaml:31', 'spec.rules[0].http.paths[2].backend.service.port.name'],
          ['MG0007', 'ingress.yaml:36', 'metadata.name'],
          ['MG0007', 'ingress.yaml:49', 'spec.ingressClassName'],
        ],
      );
      assert.match(rows[0]![3]!, /Secret not found: "istio-system\/shop-credential"/);
      assert.match(rows[1]![3]!, /has no port 8080/);
      assert.match(rows[2]![3]!, /Service not found: "default\/api"/);
      assert.match(rows[3]![3]!, /no port named "admin"/);
      assert.match(rows[4]![3]!, /STRICT/);
      assert.match(rows[5]![3]!, /IngressClass istio does not exist/);
    } finally {
      await rm(certs, { recursive: true, force: true });
    }
  });
});
