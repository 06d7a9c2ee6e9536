// `meshgate inject --mesh-config FILE` (istioctl kube-inject's --meshConfigFile): the injected
// sidecar takes the trust domain of the mesh config it is given, as the control plane's webhook
// takes the one of the mesh config it serves; `--trust-domain` still wins. The real command, run as
// a process.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));

const POD = `apiVersion: v1
kind: Pod
metadata: {name: app, namespace: default}
spec: {containers: [{name: app, image: app:1}]}
`;

describe('meshgate inject --mesh-config', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-inject-mesh-'));
    await writeFile(join(dir, 'pod.yaml'), POD);
    await writeFile(join(dir, 'mesh.yaml'), 'trustDomain: new-td\ntrustDomainAliases: [old-td]\n');
    await writeFile(join(dir, 'istio-cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    trustDomain: cm-td\n');
    await writeFile(join(dir, 'bad.yaml'), 'trustDomain: Not_A_Domain\n');
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The trust domain the injected sidecar is given (its TRUST_DOMAIN env), or the failure. */
  const inject = (...args: string[]): { status: number | null; trustDomain?: string; stderr: string } => {
    const r = spawnSync(process.execPath, [BIN, 'inject', '-f', join(dir, 'pod.yaml'), ...args], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) return { status: r.status, stderr: r.stderr };
    const pod = parseAllDocuments(r.stdout)[0]!.toJS() as { spec: { containers: Array<{ name: string; env?: Array<{ name: string; value?: string }> }> } };
    const proxy = pod.spec.containers.find((c) => c.name === 'istio-proxy')!;
    return { status: 0, trustDomain: proxy.env?.find((e) => e.name === 'TRUST_DOMAIN')?.value, stderr: r.stderr };
  };

  it("takes the mesh config's trustDomain, from its YAML or from the istio ConfigMap holding it", () => {
    assert.equal(inject().trustDomain, 'cluster.local');
    assert.equal(inject('--mesh-config', join(dir, 'mesh.yaml')).trustDomain, 'new-td');
    assert.equal(inject('--mesh-config', join(dir, 'istio-cm.yaml')).trustDomain, 'cm-td');
  });

  it('--trust-domain wins over the mesh config', () => {
    assert.equal(inject('--mesh-config', join(dir, 'mesh.yaml'), '--trust-domain', 'flag-td').trustDomain, 'flag-td');
  });

  it('a mesh config naming an invalid trust domain, or a file that cannot be read, is refused', () => {
    const bad = inject('--mesh-config', join(dir, 'bad.yaml'));
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--mesh-config: .*bad\.yaml: trust domain "Not_A_Domain"/);
    const missing = inject('--mesh-config', join(dir, 'nope.yaml'));
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /--mesh-config: cannot read/);
  });
});
