// The Kubernetes manifests in deploy/ against the code they run: every file parses, kustomize lists
// what it should (and `kubectl kustomize` builds it when kubectl is installed), RBAC and CRDs cover
// what KubeSource reads and grant Secrets only in the own namespace, and the command lines of the
// control plane, the gateway joining the mesh and the example sidecar are ones the real CLI parser
// accepts, with every file they name mounted from the projected token or ConfigMap that holds it;
// every container runs as uid 1337 on a read-only root with its writable folders as emptyDir.

import { DEFAULT_METRICS_PORT } from '../src/core/telemetry/metrics-server.js';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { KUBE_KINDS } from '../src/core/sources/kube-objects.js';
import { main } from '../src/cli/main.js';
import { sourceChoice } from '../src/cli/config-source.js';
import { parseLabels } from '../src/cli/options.js';
import { CONTROL_PLANE_NAMES } from '../src/control/main.js';
import { DEFAULT_TOKEN_FILE } from '../src/cli/config-source.js';
import { GATEWAYS_BINDING } from '../src/control/gateway-deployer.js';
import { GATEWAY_SECRETS_ROLE } from '../src/core/gateway-api/deployment-objects.js';
import { ROOT_CONFIGMAP } from '../src/control/root-cert-publisher.js';
import { TOKEN_REVIEW_PATH } from '../src/control/token-review.js';
import { GATEWAY_NODE_OPTIONS } from '../src/gateway/node-options.js';
import { DEFAULT_GATEWAY_NAME, DEFAULT_GATEWAY_SERVICE_ACCOUNT } from '../src/core/model/gateway-names.js';

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

/**
 * Which Secret or ConfigMap key (or projected service-account token, named by its audience) a file
 * in a container comes from, through its mount and volume.
 */
function fileSource(pod: Doc, container: Doc, file: string): { kind: string; name: string; key: string } | undefined {
  const mount = (container.volumeMounts ?? []).find((m: Doc) => file.startsWith(`${m.mountPath}/`));
  if (!mount) return undefined;
  const rest = file.slice(mount.mountPath.length + 1);
  const volume = (pod.volumes ?? []).find((v: Doc) => v.name === mount.name);
  assert.ok(volume, `volume ${mount.name} of mount ${mount.mountPath}`);
  for (const source of volume.projected ? volume.projected.sources : [volume]) {
    const sat = source.serviceAccountToken;
    if (sat && sat.path === rest) return { kind: 'serviceAccountToken', name: sat.audience, key: sat.path };
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

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

/** Whether `rules` allow `verb` on `group/resource` (named `name`, when the call names one). */
function allows(rules: Rule[], group: string, resource: string, verb: string, name?: string): boolean {
  return rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb) && (r.resourceNames === undefined || (name !== undefined && r.resourceNames.includes(name))));
}

/** Every container: uid 1337, read-only root, no privilege; every writable mount an emptyDir. */
function assertLockedDown(pod: Doc, what: string): void {
  for (const c of pod.containers as Doc[]) {
    const sc = { ...pod.securityContext, ...c.securityContext };
    assert.equal(sc.runAsUser, 1337, `${what}/${c.name}: uid 1337`);
    assert.equal(sc.runAsNonRoot, true);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true, `${what}/${c.name}: read-only root`);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    for (const m of (c.volumeMounts ?? []) as Doc[]) {
      if (m.readOnly) continue;
      const v = (pod.volumes as Doc[]).find((x) => x.name === m.name);
      assert.ok(v?.emptyDir || v?.secret || v?.configMap || v?.projected, `${what}/${c.name}: ${m.mountPath} has a volume`);
      if (!v.secret && !v.configMap && !v.projected) assert.ok(v.emptyDir, `${what}/${c.name}: writable ${m.mountPath} is an emptyDir`);
    }
  }
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
    // Cluster mode has no bootstrap tokens: service-account tokens and TokenReview replace them.
    assert.ok(!existsSync(repo('deploy/bootstrap-tokens.yaml')));
    for (const f of files) assert.ok(!(await readFile(repo(f), 'utf8')).includes('meshgate-bootstrap-tokens'), `${f} names no bootstrap token Secret`);
    // What the README tells people to uncomment.
    assert.match(await readFile(repo('deploy/kustomization.yaml'), 'utf8'), /^# components:\n# - components\/gateway-joins-mesh$/m);

    const crds = (await docs('deploy/crds/kustomization.yaml'))[0]!;
    assert.deepEqual(crds.resources, ['networking-istio-io.yaml', 'meshgate-io.yaml', 'security-istio-io.yaml']);

    const component = (await docs('deploy/components/gateway-joins-mesh/kustomization.yaml'))[0]!;
    assert.equal(component.kind, 'Component');
    for (const p of component.patches as Array<{ path: string }>) assert.ok(existsSync(repo(`deploy/components/gateway-joins-mesh/${p.path}`)));
  });

  it('kubectl kustomize builds deploy/ into istio-system, RBAC included', async (t) => {
    let out: string;
    try {
      out = execFileSync('kubectl', ['kustomize', repo('deploy')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return t.skip('kubectl not installed');
      throw err;
    }
    const built = parseAllDocuments(out).map((d) => d.toJS() as Doc);
    for (const kind of ['Role', 'RoleBinding', 'Deployment', 'ServiceAccount', 'Service']) {
      for (const d of built.filter((x) => x.kind === kind)) assert.equal(d.metadata.namespace, 'istio-system', `${kind} ${d.metadata.name}`);
    }
    for (const d of built.filter((x) => x.kind === 'RoleBinding' || x.kind === 'ClusterRoleBinding')) {
      // meshgate-gateways leaves its subjects to the control plane.
      for (const s of d.subjects ?? []) assert.equal(s.namespace, 'istio-system');
    }
    assert.ok(built.some((d) => d.kind === 'Role' && d.metadata.name === 'meshgate-ingressgateway'));
  });

  it('RBAC grants list and watch on every collection KubeSource reads, and the CRDs define the Istio kinds', async () => {
    const rbac = await docs('deploy/rbac.yaml');
    const gatewayRole = find(rbac, 'ClusterRole', 'meshgate-ingressgateway');
    assertGrantsWhatKubeSourceReads(gatewayRole);
    // The status writer reads and watches the Nodes of its pods by name (Ingress status with `ingressService: ""`).
    assert.ok(allows(gatewayRole.rules, '', 'nodes', 'get', 'node-1') && allows(gatewayRole.rules, '', 'nodes', 'list') && allows(gatewayRole.rules, '', 'nodes', 'watch'));
    assert.deepEqual(find(rbac, 'ClusterRoleBinding', 'meshgate-ingressgateway').subjects, [{ kind: 'ServiceAccount', name: DEFAULT_GATEWAY_SERVICE_ACCOUNT, namespace: 'istio-system' }]);

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

    const gatewayDocs = await docs('deploy/gateway.yaml');
    const deployment = find(gatewayDocs, 'Deployment', DEFAULT_GATEWAY_NAME);
    const pod = deployment.spec.template.spec;
    // Istio's names: the principal Istio's docs allow in AuthorizationPolicy is this service account's.
    assert.equal(pod.serviceAccountName, DEFAULT_GATEWAY_SERVICE_ACCOUNT);
    assert.equal(find(gatewayDocs, 'ServiceAccount').metadata.name, DEFAULT_GATEWAY_SERVICE_ACCOUNT);
    // Istio's tasks: `kubectl -n istio-system get service istio-ingressgateway`, ports named http2 and https.
    const service = find(await docs('deploy/service.yaml'), 'Service', DEFAULT_GATEWAY_NAME);
    assert.deepEqual(service.spec.ports.map((p: Doc) => [p.name, p.port]), [['status-port', 15021], ['http2', 80], ['https', 443]]);
    assert.equal(pod.automountServiceAccountToken, true);
    assert.deepEqual(pod.containers[0].args.slice(0, 3), ['gateway', '--config-source', 'kubernetes']);
    // The Node options the benchmark measures the gateway with.
    assert.equal(pod.containers[0].env.find((e: Doc) => e.name === 'NODE_OPTIONS')?.value, GATEWAY_NODE_OPTIONS);
    assertLockedDown(pod, 'gateway');
    // Prometheus' pod discovery finds Istio's metrics where the gateway serves them (its default --metrics-port).
    const scrape = deployment.spec.template.metadata.annotations;
    const prom = pod.containers[0].ports.find((p: Doc) => p.name === 'http-envoy-prom');
    assert.deepEqual([scrape['prometheus.io/scrape'], scrape['prometheus.io/port'], scrape['prometheus.io/path']], ['true', String(prom.containerPort), '/stats/prometheus']);
    assert.equal(prom.containerPort, DEFAULT_METRICS_PORT);
    assert.ok(!pod.containers[0].args.includes('--metrics-port'));
  });

  it('the gateway reads Secrets in its own namespace only: a Role, or a ClusterRole never bound cluster-wide', async () => {
    const rbac = await docs('deploy/rbac.yaml');
    const cp = await docs('deploy/control-plane.yaml');
    const boundClusterWide = new Set([...rbac, ...cp].filter((d) => d.kind === 'ClusterRoleBinding').map((b) => b.roleRef.name));
    for (const cr of rbac.filter((d) => d.kind === 'ClusterRole' && d.rules.some((r: Rule) => r.apiGroups.includes('') && r.resources.includes('secrets')))) {
      assert.ok(!boundClusterWide.has(cr.metadata.name), `ClusterRole ${cr.metadata.name} grants Secrets: only RoleBindings may bind it`);
    }
    const binding = find(rbac, 'RoleBinding', 'meshgate-ingressgateway');
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: DEFAULT_GATEWAY_SERVICE_ACCOUNT, namespace: 'istio-system' }]);
    assert.equal(binding.roleRef.kind, 'Role');
    const role = find(rbac, 'Role', binding.roleRef.name);
    // What KubeSecrets (list + watch of credentialName Secrets) and ACME's Secret storage (get, create, update) do.
    for (const verb of ['list', 'watch', 'get', 'create', 'update']) assert.ok(allows(role.rules, '', 'secrets', verb, 'shop-tls'), `secrets ${verb}`);
    assert.ok(!allows(role.rules, '', 'secrets', 'delete', 'shop-tls'));

    const deployment = find(await docs('deploy/gateway.yaml'), 'Deployment');
    const c = deployment.spec.template.spec.containers[0];
    const args = expandArgs(c.args, c, { name: 'gw-1', namespace: 'istio-system', labels: {}, spec: deployment.spec.template.spec });
    assert.equal(flagValues(args).namespace, 'istio-system', 'credentialName Secrets come from the pod namespace');
  });

  it('the control plane runs flags `meshgate control` accepts, with no token file and no CA folder, and the rights it needs', async (t) => {
    const cp = await docs('deploy/control-plane.yaml');
    const deployment = find(cp, 'Deployment', 'meshgate-control');
    const pod = deployment.spec.template.spec;
    const c = pod.containers[0];
    assert.deepEqual(c.args.slice(0, 3), ['control', '--config-source', 'kubernetes']);
    await assertCliAccepts(t, c.args);
    const v = flagValues(c.args);
    assert.deepEqual(sourceChoice(v), { kubeconfig: undefined, namespaces: [] });
    // TokenReview instead of a token list; the CA in Secrets of its namespace instead of a folder.
    assert.equal(v.tokens, undefined);
    assert.equal(v['ca-dir'], undefined);
    assert.deepEqual(c.env.find((e: Doc) => e.name === 'POD_NAMESPACE').valueFrom, { fieldRef: { fieldPath: 'metadata.namespace' } });
    assertLockedDown(pod, 'control plane');

    const port = Number(v.port);
    assert.ok(c.ports.some((p: Doc) => p.containerPort === port));
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/healthz/ready', port: Number(v['status-port']), scheme: 'HTTP' });
    const service = find(cp, 'Service', 'meshgate-control');
    for (const [k, value] of Object.entries(service.spec.selector)) assert.equal(deployment.spec.template.metadata.labels[k], value, `selector ${k}`);
    assert.deepEqual(service.spec.ports.map((p: Doc) => [p.name, p.port, p.targetPort]), [['https-control', 15012, port]]);
    // Proxies verify the control plane's certificate for the Service's name.
    assert.ok((CONTROL_PLANE_NAMES as readonly string[]).includes(`${service.metadata.name}.istio-system.svc`));

    // RBAC: bound to the ClusterRole granting everything KubeSource reads, and to its own.
    assert.equal(pod.serviceAccountName, find(cp, 'ServiceAccount').metadata.name);
    assert.equal(pod.automountServiceAccountToken, true);
    const rbac = await docs('deploy/rbac.yaml');
    const bindings = [...cp, ...rbac].filter((d) => ['ClusterRoleBinding', 'RoleBinding'].includes(d.kind) && (d.subjects ?? []).some((s: Doc) => s.name === pod.serviceAccountName));
    for (const b of bindings) assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: pod.serviceAccountName, namespace: 'istio-system' }]);
    const clusterRules: Rule[] = bindings.filter((b) => b.kind === 'ClusterRoleBinding').flatMap((b) => find(rbac, 'ClusterRole', b.roleRef.name).rules);
    const ownRules: Rule[] = bindings.filter((b) => b.kind === 'RoleBinding').flatMap((b) => find(rbac, b.roleRef.kind, b.roleRef.name).rules);
    assertGrantsWhatKubeSourceReads({ rules: clusterRules });
    assert.ok(TOKEN_REVIEW_PATH.startsWith('/apis/authentication.k8s.io/'));
    assert.ok(allows(clusterRules, 'authentication.k8s.io', 'tokenreviews', 'create'));
    for (const verb of ['list', 'watch', 'get', 'create', 'update']) assert.ok(allows(clusterRules, '', 'configmaps', verb, ROOT_CONFIGMAP), `configmaps ${verb} in every namespace`);
    for (const verb of ['list', 'watch']) assert.ok(allows(clusterRules, '', 'namespaces', verb));
    // kube-mesh's injector keeps its MutatingWebhookConfiguration's caBundle current.
    for (const verb of ['get', 'patch']) assert.ok(allows(clusterRules, 'admissionregistration.k8s.io', 'mutatingwebhookconfigurations', verb, 'meshgate-sidecar-injector'));
    assert.ok(!allows(clusterRules, 'admissionregistration.k8s.io', 'mutatingwebhookconfigurations', 'patch', 'someone-elses-webhook'));
    // Secrets: none cluster-wide; in its namespace the CA Secrets only (and create, which RBAC cannot narrow by name).
    assert.ok(!clusterRules.some((r) => r.resources.includes('secrets')));
    for (const name of ['cacerts', 'istio-ca-secret']) assert.ok(allows(ownRules, '', 'secrets', 'get', name), name);
    assert.ok(allows(ownRules, '', 'secrets', 'create', 'istio-ca-secret'));
    assert.ok(!allows(ownRules, '', 'secrets', 'get', 'shop-tls'), "the gateway's certificates are not the control plane's to read");
    assert.ok(!allows(ownRules, '', 'secrets', 'list'));
    for (const k of KUBE_KINDS.filter((x) => x.apiVersion.startsWith('security.istio.io/'))) {
      assert.ok(clusterRules.some((r) => r.apiGroups.includes('security.istio.io') && r.resources.includes(k.plural)), k.plural);
    }
  });

  it('the control plane may make and keep the objects of Gateway API automated deployment, and grant their gateways no more than the shared gateway has', async () => {
    const rbac = await docs('deploy/rbac.yaml');
    const rules: Rule[] = find(rbac, 'ClusterRole', 'meshgate-control').rules;
    for (const [group, resource] of [['', 'services'], ['', 'serviceaccounts'], ['apps', 'deployments'], ['rbac.authorization.k8s.io', 'rolebindings']] as const) {
      for (const verb of ['get', 'list', 'watch', 'create', 'update']) assert.ok(allows(rules, group, resource, verb), `${resource} ${verb}`);
    }
    for (const verb of ['get', 'list', 'watch', 'update']) assert.ok(allows(rules, 'rbac.authorization.k8s.io', 'clusterrolebindings', verb, GATEWAYS_BINDING), `clusterrolebindings ${verb}`);
    assert.ok(!allows(rules, 'rbac.authorization.k8s.io', 'clusterrolebindings', 'update', 'cluster-admin'));
    for (const role of [GATEWAY_SECRETS_ROLE, 'meshgate-ingressgateway']) assert.ok(allows(rules, 'rbac.authorization.k8s.io', 'clusterroles', 'bind', role), role);
    assert.ok(!allows(rules, 'rbac.authorization.k8s.io', 'clusterroles', 'bind', 'cluster-admin'));
    const binding = find(rbac, 'ClusterRoleBinding', GATEWAYS_BINDING);
    assert.equal(binding.roleRef.name, 'meshgate-ingressgateway');
    assert.equal(binding.subjects, undefined, 'applying deploy/ again leaves the control plane’s subjects alone');
    const secrets = find(rbac, 'ClusterRole', GATEWAY_SECRETS_ROLE).rules;
    for (const verb of ['list', 'watch', 'get', 'create', 'update']) assert.ok(allows(secrets, '', 'secrets', verb, 'shop-tls'), `secrets ${verb}`);
    assert.ok(!allows(secrets, '', 'secrets', 'delete', 'shop-tls'));
  });

  it('the gateway component joins the mesh with flags `meshgate gateway` accepts, its projected token and the published root mounted', async (t) => {
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
    assert.equal(choice.control.tokenFile, DEFAULT_TOKEN_FILE);
    assert.deepEqual(fileSource(pod, c, choice.control.tokenFile), { kind: 'serviceAccountToken', name: 'istio-ca', key: 'istio-token' });
    assert.deepEqual(fileSource(pod, c, choice.control.rootCertFile), { kind: 'configMap', name: ROOT_CONFIGMAP, key: 'root-cert.pem' });
    // In the mesh, credentialName still comes from the Secrets of the gateway's namespace.
    assert.equal(v.credentials, 'kubernetes');
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

    // Its identity is its service account's, vouched for by TokenReview of the projected token.
    const token = fileSource(pod, sidecar, v.token!);
    assert.deepEqual(token && [token.kind, token.name], ['serviceAccountToken', 'istio-ca']);
    assert.deepEqual(fileSource(pod, sidecar, v['root-cert']!), { kind: 'configMap', name: ROOT_CONFIGMAP, key: 'root-cert.pem' });

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
