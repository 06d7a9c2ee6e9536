// The sleep-and-httpbin mesh most of Istio's security tasks start from, on loopback: httpbin (the
// stand-in of httpbin.ts) and sleep in each namespace asked for, each beside a sidecar unless its
// namespace is one without injection (the tasks' `legacy`). A call "from sleep.<ns>" goes through
// that sleep's sidecar as its app would, or, without a sidecar, straight to the endpoint the
// Service names (the httpbin sidecar's inbound port, or the bare app), as kube-proxy would send it.
// `apply` writes a task's YAML and returns once every sidecar serves it.

import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertificateAuthority } from '../../src/core/pki/authority.js';
import { parseConfigText } from '../../src/core/config/load.js';
import type { Snapshot } from '../../src/core/snapshot/snapshot.js';
import type { SnapshotHolder } from '../../src/core/snapshot/holder.js';
import { startSidecar, type RunningSidecar, type SidecarOptions } from '../../src/sidecar/main.js';
import { serviceYaml } from './cluster-yaml.js';
import { startHttpbin, type Httpbin } from './httpbin.js';
import { sidecarOptions, testAuthority, untilSnapshot } from './mesh.js';
import { NO_APP } from './ports.js';

export interface Reply {
  /** 0 when the connection failed or was closed without an answer (curl's 000). */
  readonly status: number;
  readonly text: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

export interface TaskMesh {
  readonly ca: CertificateAuthority;
  readonly dir: string;
  readonly httpbin: ReadonlyMap<string, Httpbin>;
  /** httpbin's sidecar in each injected namespace. */
  readonly httpbinSidecars: ReadonlyMap<string, RunningSidecar>;
  /** sleep's sidecar in each injected namespace (the client pod's, where its stats are read). */
  readonly sleepSidecars: ReadonlyMap<string, RunningSidecar>;
  /** `curl http://httpbin.<ns>:8000<path>` from sleep in namespace `from`. */
  curl(from: string, url: string, opts?: { method?: string; headers?: Record<string, string> }): Promise<Reply>;
  /** Writes `yaml` as `file` and waits until every sidecar serves each resource in it. */
  apply(file: string, yaml: string): Promise<void>;
  /** Removes `file` and waits until no sidecar serves its resources. */
  remove(file: string): Promise<void>;
  close(): Promise<void>;
}

interface Ref {
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly spec: string;
}

const refsOf = (yaml: string, file: string): Ref[] =>
  parseConfigText(yaml, file).resources.map((r) => ({ kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name, spec: JSON.stringify(r.spec) }));

const serves = (snap: Snapshot, ref: Ref): boolean =>
  snap.resources.some((r) => r.kind === ref.kind && r.metadata.name === ref.name && (ref.namespace === undefined || r.metadata.namespace === ref.namespace) && JSON.stringify(r.spec) === ref.spec);

/** Resolves once `holder` serves every resource of `yaml` as written (a gateway's or a sidecar's). */
export function untilServed(holder: SnapshotHolder, yaml: string): Promise<Snapshot> {
  const refs = refsOf(yaml, 'applied.yaml');
  return untilSnapshot(holder, (snap) => refs.every((r) => serves(snap, r)));
}

/** The documents of a multi-document YAML text, each with a kind. */
const documents = (yaml: string): string[] => yaml.split(/^---[ \t]*$/m).filter((d) => /^kind:/m.test(d));

/** One file per resource, as the API server keeps one object per kind, namespace and name. */
function fileOf(doc: string): string {
  const [r] = parseConfigText(doc, 'apply.yaml').resources;
  if (!r) throw new Error(`no resource in ${doc}`);
  return `${r.kind}-${r.metadata.namespace ?? 'default'}-${r.metadata.name}.yaml`;
}

/** `yaml` as `kubectl apply -n <namespace>` stores it: each resource in `namespace` unless it names its own. */
export const inNamespace = (yaml: string, namespace: string): string =>
  documents(yaml)
    .map((doc) => (/^metadata:\n(?:[ \t].*\n)*?[ \t]+namespace:/m.test(doc) ? doc : doc.replace(/^metadata:\n/m, `metadata:\n  namespace: ${namespace}\n`)))
    .join('---\n');

/** `kubectl apply -f` on a config folder: each resource of `yaml` replaces the one of its kind and name. */
export async function kubectlApply(dir: string, yaml: string): Promise<void> {
  for (const doc of documents(yaml)) await writeFile(join(dir, fileOf(doc)), doc);
}

/** `kubectl delete -f` on a config folder written by kubectlApply. */
export async function kubectlDelete(dir: string, yaml: string): Promise<void> {
  for (const doc of documents(yaml)) await unlink(join(dir, fileOf(doc)));
}

/** Resolves once `holder` serves none of the resources of `yaml` (a removed file's). */
export function untilWithdrawn(holder: SnapshotHolder, yaml: string): Promise<Snapshot> {
  const refs = refsOf(yaml, 'removed.yaml');
  return untilSnapshot(holder, (snap) => !refs.some((r) => serves(snap, r)));
}

/**
 * `namespaces`: where sleep and httpbin run; those in `uninjected` run without sidecars. `extra`:
 * further options of a workload's sidecar (metrics, a logger).
 */
export async function startTaskMesh(namespaces: readonly string[], uninjected: readonly string[] = [], extra: (workload: 'httpbin' | 'sleep', namespace: string) => Partial<SidecarOptions> = () => ({})): Promise<TaskMesh> {
  const ca = await testAuthority();
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-task-'));
  const httpbin = new Map<string, Httpbin>();
  const sleepSidecars = new Map<string, RunningSidecar>();
  const httpbinSidecars = new Map<string, RunningSidecar>();
  const sidecars: RunningSidecar[] = [];
  const services: string[] = [];
  const files = new Map<string, string>();
  const endpointPorts = new Map<string, number>();
  for (const ns of namespaces) {
    const app = await startHttpbin();
    httpbin.set(ns, app);
    const injected = !uninjected.includes(ns);
    let port = app.port;
    if (injected) {
      const hs = await startSidecar({ ...sidecarOptions(ca, dir, 'httpbin', app.port, ns), ...extra('httpbin', ns) });
      const ss = await startSidecar({ ...sidecarOptions(ca, dir, 'sleep', NO_APP, ns), ...extra('sleep', ns) });
      sidecars.push(hs, ss);
      sleepSidecars.set(ns, ss);
      httpbinSidecars.set(ns, hs);
      port = hs.inboundPort;
    }
    endpointPorts.set(ns, port);
    const labels: Record<string, string> = injected ? { version: 'v1', 'security.istio.io/tlsMode': 'istio' } : { version: 'v1' };
    services.push(serviceYaml('httpbin', [{ pod: `httpbin-${ns}`, port, serviceAccount: 'httpbin', labels }], { namespace: ns, port: 8000 }));
  }
  await writeFile(join(dir, 'services.yaml'), services.join('---\n'));
  const known = (snap: Snapshot): boolean => namespaces.every((ns) => snap.registry.lookup(`httpbin.${ns}.svc.cluster.local`) !== undefined);
  await Promise.all(sidecars.map((s) => untilSnapshot(s.holder, known)));

  /** Without a sidecar, the Service's endpoint: `httpbin.<ns>` names the namespace. */
  const direct = (url: URL): { port: number; path: string } => {
    const port = endpointPorts.get(url.hostname.split('.')[1] ?? '');
    if (port === undefined) throw new Error(`no httpbin behind ${url.hostname}`);
    return { port, path: url.pathname + url.search };
  };

  return {
    ca,
    dir,
    httpbin,
    httpbinSidecars,
    sleepSidecars,
    curl: (from, url, opts = {}) => {
      const u = new URL(url);
      const sidecar = sleepSidecars.get(from);
      const target = sidecar ? { port: sidecar.outboundPort, path: url } : direct(u);
      return new Promise((resolve) => {
        const req = httpRequest({ host: '127.0.0.1', port: target.port, path: target.path, method: opts.method ?? 'GET', agent: false, headers: { host: u.host, ...opts.headers } }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (s: string) => (text += s));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
          res.on('error', () => resolve({ status: 0, headers: {}, text: '' }));
        });
        req.on('error', () => resolve({ status: 0, headers: {}, text: '' }));
        req.end();
      });
    },
    apply: async (file, yaml) => {
      await writeFile(join(dir, file), yaml);
      files.set(file, yaml);
      await Promise.all(sidecars.map((s) => untilServed(s.holder, yaml)));
    },
    remove: async (file) => {
      const yaml = files.get(file) ?? '';
      files.delete(file);
      await unlink(join(dir, file));
      await Promise.all(sidecars.map((s) => untilWithdrawn(s.holder, yaml)));
    },
    close: async () => {
      await Promise.all(sidecars.map((s) => s.destroy()));
      await Promise.all([...httpbin.values()].map((h) => h.close()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
