// The Kubernetes manifests in deploy/ against the code they run: every file parses, kustomize lists
// what it should, RBAC and CRDs cover what KubeSource reads, and the command lines of the control
// plane, the gateway joining the mesh and the example sidecar are ones the real CLI parser accepts,
// with every file they name mounted from the Secret or ConfigMap that holds it.

import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { KUBE_KINDS } from '../src/core/sources/kube-objects.js';
import { main } from '../src/cli/main.js';
import { sourceChoice } from '../src/cli/config-source.js';
import { parseLabels } from '../src/cli/options.js';
import { CONTROL_PLANE_NAMES } from '../src/control/main.js';
import { bearerToken, parseTokenFile } from '../src/control/token-authenticator.js';

type Doc = Record<string, any>;

const repo = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));

/** Every YAML document of a file, failing on any parse error. */
async function docs(p: string): Promise<Doc[]> {
  const parsed = parseAllDocuments(await readFile(repo(p), 'utf8'));
  for (const d of parsed) assert.deepEqual(d.errors.map((e) => e.message), [], `${p} parses`);
  return parsed.map((d) => d.toJS() as Doc).filter((d) => d !== null);
}

function find(all: Doc[], kind: string, name?: string): Doc {
  const d = all.find((x) => x.kind === kind && (name === undefined || x.metadata?.name === name));
  assert.ok(d, `${kind} ${name ?? ''} present`);
  return d;
}

/** `--flag value` pairs after the command; every option these manifests use takes a value. */
function flagValues(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 1; i < args.length; i += 2) {
    const flag = args[i]!;
    assert.match(flag, /^--[a-z-]+$/, `'${flag}' is a flag`);
    assert.ok(i + 1 < args.length, `${flag} has a value`);
    out[flag.slice(2)] = args[i + 1]!;
  }
  return out;
}

/** The real entry point parses every option strictly before it looks at --help: 0 means all were accepted. */
async function assertCliAccepts(t: TestContext, args: readonly string[]): Promise<void> {
  const errors: string[] = [];
  t.mock.method(console, 'log', () => undefined);
  t.mock.method(console, 'error', (...a: unknown[]) => void errors.push(a.join(' ')));
  const code = await main([...args, '--help']);
  t.mock.restoreAll();
  assert.equal(code, 0, `meshgate ${args.join(' ')}: ${errors.join('\n')}`);
}

/** Which Secret or ConfigMap key a file in a container comes from, through its mount and volume. */
function fileSource(pod: Doc, container: Doc, file: string): { kind: string; name: string; key: string } | undefined {
  const mount = (container.volumeMounts ?? []).find((m: Doc) => file.startsWith(`${m.mountPath}/`));
  if (!mount) return undefined;
  const rest = file.slice(mount.mountPath.length + 1);
  const volume = (pod.volumes ?? []).find((v: Doc) => v.name === mount.name);
  assert.ok(volume, `volume ${mount.name} of mount ${mount.mountPath}`);
  for (const source of volume.projected ? volume.projected.sources : [volume]) {
    for (const kind of ['secret', 'configMap']) {
      const s = source[kind];
      if (!s) continue;
      const item = (s.items ?? [{ key: rest, path: rest }]).find((i: Doc) => i.path === rest);
      if (item) return { kind, name: s.secretName ?? s.name, key: item.key };
    }
  }
  return undefined;
}

/** `$(VAR)` in args, resolved as the kubelet does from the container's env (fieldRefs from the pod). */
function expandArgs(args: readonly string[], container: Doc, pod: { name: string; namespace: string; labels: Doc; spec: Doc }): string[] {
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    const path: string | undefined = e.valueFrom?.fieldRef?.fieldPath;
    if (path === undefined) continue;
    const label = /^metadata\.labels\['(.+)'\]$/.exec(path);
    const value = path === 'metadata.name' ? pod.name : path === 'metadata.namespace' ? pod.namespace : path === 'spec.serviceAccountName' ? pod.spec.serviceAccountName : label ? pod.labels[label[1]!] : undefined;
    assert.ok(typeof value === 'string', `env ${e.name}: ${path} resolves`);
    env[e.name] = value;
  }
  // The kubelet leaves an undefined $(VAR) as it is: a silent bug, so every one must be defined.
  return args.map((a) =>
    a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_m, name: string) => {
      assert.ok(name in env, `$(${name}) is defined in the container's env`);
      return env[name]!;
    }),
  );
}

function assertGrantsWhatKubeSourceReads(role: Doc): void {
  const rules = role.rules as Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>;
  for (const k of KUBE_KINDS) {
    const group = k.apiVersion.includes('/') ? k.apiVersion.split('/')[0]! : '';
    const rule = rules.find((r) => r.apiGroups.includes(group) && r.resources.includes(k.plural));
    assert.ok(rule && rule.verbs.includes('list') && rule.verbs.includes('watch'), `${group}/${k.plural} granted`);
  }
}

/** The bootstrap token list, and which identity a proxy's token Secret stands for in it. */
async function bootstrapTokens() {
  const all = await docs('deploy/bootstrap-tokens.yaml');
  const listSecret = find(all, 'Secret', 'meshgate-bootstrap-tokens');
  const list = parseYaml(listSecret.stringData['tokens.yaml']) as Array<{ token: string; namespace: string; serviceAccount: string }>;
  return {
    all,
    listSecret,
    list,
    identityOf(namespace: string, secretName: string) {
      const s = all.find((d) => d.kind === 'Secret' && d.metadata.name === secretName && d.metadata.namespace === namespace);
      assert.ok(s, `token Secret ${namespace}/${secretName} in bootstrap-tokens.yaml`);
      const entry = list.find((e) => e.token === s.stringData.token);
      assert.ok(entry, `the token of ${namespace}/${secretName} is in the control plane's list`);
      return { namespace: entry.namespace, serviceAccount: entry.serviceAccount };
    },
  };
}

describe('deploy/ manifests', () => {
  it('every file parses into Kubernetes objects, and kustomize lists the manifests it applies', async () => {
    const files = (await readdir(repo('deploy'), { recursive: true })).filter((f) => f.endsWith('.yaml')).map((f) => join('deploy', f));
    assert.ok(files.length >= 10, files.join(' '));
    for (const f of files) {
      for (const d of await docs(f)) assert.ok(typeof d.apiVersion === 'string' && typeof d.kind === 'string', `${f}: apiVersion and kind`);
    }

    const base = (await docs('deploy/kustomization.yaml'))[0]!;
    for (const r of base.resources as string[]) assert.ok(existsSync(repo(`deploy/${r}`)), `deploy/${r} exists`);
    assert.ok(base.resources.includes('control-plane.yaml'));
    // Applied once by hand: in the kustomization, every `kubectl apply -k` would reset real tokens to placeholders.
    assert.ok(!base.resources.includes('bootstrap-tokens.yaml'));
    // What the README tells people to uncomment.
    assert.match(await readFile(repo('deploy/kustomization.yaml'), 'utf8'), /^# components:\n# - components\/gateway-joins-mesh$/m);

    const crds = (await docs('deploy/crds/kustomization.yaml'))[0]!;
    assert.deepEqual(crds.resources, ['networking-istio-io.yaml', 'meshgate-io.yaml', 'security-istio-io.yaml']);

    const component = (await docs('deploy/components/gateway-joins-mesh/kustomization.yaml'))[0]!;
    assert.equal(component.kind, 'Component');
    for (const p of component.patches as Array<{ path: string }>) assert.ok(existsSync(repo(`deploy/components/gateway-joins-mesh/${p.path}`)));
  });

  it('RBAC grants list and watch on every collection KubeSource reads, and the CRDs define the Istio kinds', async () => {
    const rbac = await docs('deploy/rbac.yaml');
    assertGrantsWhatKubeSourceReads(find(rbac, 'ClusterRole'));
    assert.deepEqual(find(rbac, 'ClusterRoleBinding').subjects, [{ kind: 'ServiceAccount', name: 'meshgate-ingressgateway', namespace: 'istio-system' }]);

    const crdFiles: Record<string, Array<[string, boolean, boolean]>> = {
      'networking.istio.io': [['v1', true, true], ['v1beta1', true, false], ['v1alpha3', true, false]],
      'security.istio.io': [['v1', true, true], ['v1beta1', true, false]],
    };
    for (const [group, versions] of Object.entries(crdFiles)) {
      const crds = await docs(`deploy/crds/${group.replace(/\./g, '-')}.yaml`);
      const kinds = KUBE_KINDS.filter((x) => x.apiVersion === `${group}/v1`);
      assert.ok(kinds.length > 0);
      for (const k of kinds) {
        const crd = find(crds, 'CustomResourceDefinition', `${k.plural}.${group}`);
        assert.equal(crd.spec.names.kind, k.kind);
        assert.equal(crd.spec.scope, 'Namespaced');
        assert.deepEqual(crd.spec.versions.map((v: Doc) => [v.name, v.served, v.storage]), versions);
      }
    }

    const deployment = find(await docs('deploy/gateway.yaml'), 'Deployment');
    const pod = deployment.spec.template.spec;
    assert.equal(pod.automountServiceAccountToken, true);
    assert.deepEqual(pod.containers[0].args.slice(0, 3), ['gateway', '--config-source', 'kubernetes']);
  });

  it('the control plane runs flags `meshgate control` accepts, on mounted tokens and CA, with the rights KubeSource needs', async (t) => {
    const cp = await docs('deploy/control-plane.yaml');
    const deployment = find(cp, 'Deployment', 'meshgate-control');
    const pod = deployment.spec.template.spec;
    const c = pod.containers[0];
    assert.deepEqual(c.args.slice(0, 3), ['control', '--config-source', 'kubernetes']);
    await assertCliAccepts(t, c.args);
    const v = flagValues(c.args);
    assert.deepEqual(sourceChoice(v), { kubeconfig: undefined, namespaces: [] });

    assert.deepEqual(fileSource(pod, c, v.tokens!), { kind: 'secret', name: 'meshgate-bootstrap-tokens', key: 'tokens.yaml' });
    const caMount = c.volumeMounts.find((m: Doc) => m.mountPath === v['ca-dir']);
    assert.ok(caMount && !caMount.readOnly, '--ca-dir is a writable mount (an empty one gets a new root)');
    assert.ok(pod.volumes.find((vol: Doc) => vol.name === caMount.name).emptyDir);

    const port = Number(v.port);
    assert.ok(c.ports.some((p: Doc) => p.containerPort === port));
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/healthz/ready', port: Number(v['status-port']), scheme: 'HTTP' });
    const service = find(cp, 'Service', 'meshgate-control');
    for (const [k, value] of Object.entries(service.spec.selector)) assert.equal(deployment.spec.template.metadata.labels[k], value, `selector ${k}`);
    assert.deepEqual(service.spec.ports.map((p: Doc) => [p.name, p.port, p.targetPort]), [['https-control', 15012, port]]);
    // Proxies verify the control plane's certificate for the Service's name.
    assert.ok((CONTROL_PLANE_NAMES as readonly string[]).includes(`${service.metadata.name}.istio-system.svc`));

    // RBAC: its ServiceAccount is bound to a ClusterRole granting everything KubeSource reads.
    assert.equal(pod.serviceAccountName, find(cp, 'ServiceAccount').metadata.name);
    assert.equal(pod.automountServiceAccountToken, true);
    const binding = find(cp, 'ClusterRoleBinding');
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: pod.serviceAccountName, namespace: 'istio-system' }]);
    const role = find(await docs('deploy/rbac.yaml'), 'ClusterRole', binding.roleRef.name);
    assertGrantsWhatKubeSourceReads(role);
    for (const k of KUBE_KINDS.filter((x) => x.apiVersion.startsWith('security.istio.io/'))) {
      assert.ok(role.rules.some((r: Doc) => r.apiGroups.includes('security.istio.io') && r.resources.includes(k.plural)), k.plural);
    }
  });

  it('the bootstrap tokens are a list the control plane reads, and the placeholders can never authenticate', async () => {
    const { all, listSecret, list, identityOf } = await bootstrapTokens();
    assert.equal(listSecret.metadata.namespace, 'istio-system');
    const parsed = parseTokenFile(listSecret.stringData['tokens.yaml'], 'tokens.yaml');
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.problems, []);
    assert.equal(parsed.entries.length, list.length);
    for (const e of list) {
      assert.match(e.token, /REPLACE ME/);
      // A bearer token has no spaces: an unedited file lets nobody in.
      assert.equal(bearerToken(`Bearer ${e.token}`), undefined, e.token);
    }
    // Every proxy token Secret pairs with the list's entry for its own namespace.
    for (const s of all.filter((d) => d !== listSecret)) {
      assert.equal(identityOf(s.metadata.namespace, s.metadata.name).namespace, s.metadata.namespace);
    }
  });

  it('the gateway component joins the mesh with flags `meshgate gateway` accepts, its token and the mesh root mounted', async (t) => {
    const base = find(await docs('deploy/gateway.yaml'), 'Deployment');
    const patch = find(await docs('deploy/components/gateway-joins-mesh/gateway.yaml'), 'Deployment');
    assert.equal(patch.metadata.name, base.metadata.name);
    const basePod = base.spec.template.spec;
    const baseC = basePod.containers[0];
    const pc = patch.spec.template.spec.containers[0];
    // A strategic merge patch finds the container by name: a different name would add a second one.
    assert.equal(pc.name, baseC.name);
    await assertCliAccepts(t, pc.args);
    const v = flagValues(pc.args);
    const choice = sourceChoice(v);
    if (!('control' in choice)) return assert.fail('--control is the source');
    const url = new URL(choice.control.url);
    assert.ok((CONTROL_PLANE_NAMES as readonly string[]).includes(url.hostname), url.hostname);
    assert.equal(url.port, '15012');
    // Everything but the source stays as the base has it.
    const baseV = flagValues(baseC.args);
    for (const [flag, value] of Object.entries(baseV)) if (!['config-source', 'kubeconfig', 'watch-namespaces'].includes(flag)) assert.equal(v[flag], value, `--${flag}`);

    const pod = { ...basePod, volumes: [...basePod.volumes, ...patch.spec.template.spec.volumes] };
    const c = { ...baseC, volumeMounts: [...baseC.volumeMounts, ...pc.volumeMounts] };
    const token = fileSource(pod, c, choice.control.tokenFile);
    assert.ok(token);
    assert.deepEqual([token.kind, token.key], ['secret', 'token']);
    const { identityOf } = await bootstrapTokens();
    assert.deepEqual(identityOf('istio-system', token.name), { namespace: 'istio-system', serviceAccount: basePod.serviceAccountName });
    assert.deepEqual(fileSource(pod, c, choice.control.rootCertFile), { kind: 'configMap', name: 'meshgate-ca-root-cert', key: 'root-cert.pem' });
  });

  it('the example workload: sidecar flags `meshgate sidecar` accepts, its identity, the Service on the inbound port, the app behind it', async (t) => {
    const ex = await docs('deploy/examples/product-service.yaml');
    const deployment = find(ex, 'Deployment');
    const namespace: string = deployment.metadata.namespace;
    const template = deployment.spec.template;
    const pod = template.spec;
    const labels = template.metadata.labels;
    assert.equal(labels['security.istio.io/tlsMode'], 'istio');

    const sidecar = pod.containers.find((c: Doc) => c.args?.[0] === 'sidecar');
    const app = pod.containers.find((c: Doc) => c !== sidecar);
    assert.ok(sidecar && app);
    assert.equal(sidecar.securityContext.runAsUser, 1337);
    const args = expandArgs(sidecar.args, sidecar, { name: `${deployment.metadata.name}-7d4b9c-x2x9q`, namespace, labels, spec: pod });
    await assertCliAccepts(t, args);
    const v = flagValues(args);
    for (const flag of ['control', 'token', 'namespace', 'service-account', 'workload', 'app-port']) assert.ok(v[flag], `--${flag}`);

    assert.equal(v.namespace, namespace);
    assert.equal(v['service-account'], pod.serviceAccountName);
    assert.equal(find(ex, 'ServiceAccount', pod.serviceAccountName).metadata.namespace, namespace);
    for (const [k, value] of Object.entries(parseLabels(v.labels!))) assert.equal(value, labels[k], `label ${k}`);
    const url = new URL(v.control!);
    assert.ok((CONTROL_PLANE_NAMES as readonly string[]).includes(url.hostname), url.hostname);

    const token = fileSource(pod, sidecar, v.token!);
    assert.ok(token);
    assert.deepEqual([token.kind, token.key], ['secret', 'token']);
    const { identityOf } = await bootstrapTokens();
    assert.deepEqual(identityOf(namespace, token.name), { namespace, serviceAccount: pod.serviceAccountName });
    assert.deepEqual(fileSource(pod, sidecar, v['root-cert']!), { kind: 'configMap', name: 'meshgate-ca-root-cert', key: 'root-cert.pem' });

    // Without traffic capture the Service must send callers to the sidecar's inbound port.
    const inbound = Number(v['inbound-port']);
    const service = find(ex, 'Service');
    assert.equal(service.metadata.namespace, namespace);
    for (const [k, value] of Object.entries(service.spec.selector)) assert.equal(labels[k], value);
    for (const p of service.spec.ports) assert.equal(p.targetPort, inbound);
    assert.ok(sidecar.ports.some((p: Doc) => p.containerPort === inbound));
    assert.deepEqual(sidecar.readinessProbe.httpGet, { path: '/healthz/ready', port: 15021, scheme: 'HTTP' });

    // The app calls out through the sidecar, and is reachable only through it.
    const env = Object.fromEntries(app.env.map((e: Doc) => [e.name, e.value]));
    assert.equal(env.HTTP_PROXY, `http://127.0.0.1:${v['outbound-port']}`);
    assert.ok(['localhost', '127.0.0.1'].every((h) => env.NO_PROXY.split(',').includes(h)));
    assert.ok(app.args.some((a: string) => a.includes(`127.0.0.1:${v['app-port']}`)), 'the app listens on loopback at --app-port');
  });
});
