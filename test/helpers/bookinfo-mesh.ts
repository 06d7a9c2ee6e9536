// Bookinfo as Istio's tasks run it, on loopback: productpage (calls details and reviews), details,
// reviews v1 (no ratings), v2 and v3 (call ratings), ratings, each a demo backend beside its own
// sidecar with bookinfo's service account (`bookinfo-<app>`), and the ingress gateway in front with
// the sample's bookinfo-gateway.yaml. The sample's destination-rule-all.yaml is applied from the
// start, as the tasks' "Before you begin" asks. `page(user)` loads /productpage as the browser does,
// logged in as `user` (bookinfo passes it on as `end-user`); its reply says which reviews version
// answered and what every call along the way got. `apply` works as `kubectl apply`: a resource
// replaces the one of its kind and name.

import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { CertificateAuthority } from '../../src/core/pki/authority.js';
import { startBackend, type BackendReply, type RunningBackend } from '../../src/demo/backend.js';
import { startGateway, type RunningGateway } from '../../src/gateway/main.js';
import { startSidecar, type RunningSidecar, type SidecarOptions } from '../../src/sidecar/main.js';
import { serviceYaml, type TestEndpoint } from './cluster-yaml.js';
import { send, type Reply } from './gateway.js';
import { fixedIdentity, sidecarOptions, testAuthority, untilSnapshot } from './mesh.js';
import { repoPath } from './route-table.js';
import { kubectlApply, kubectlDelete, untilServed, untilWithdrawn } from './task-mesh.js';

export const DETAILS_URL = 'http://details:9080/details/0';
export const REVIEWS_URL = 'http://reviews:9080/reviews/0';
export const RATINGS_URL = 'http://ratings:9080/ratings/0';

/** What one load of /productpage showed. */
export interface Page {
  readonly status: number;
  readonly text: string;
  /** details' status as productpage got it (403: "Error fetching product details"). */
  readonly details: number | undefined;
  readonly reviews: { readonly status: number; readonly version: string | undefined; readonly body: unknown } | undefined;
  /** ratings as reviews got it; undefined where reviews (v1) does not call it. */
  readonly ratings: { readonly status: number; readonly body: unknown } | undefined;
}

export interface BookinfoMesh {
  readonly ca: CertificateAuthority;
  readonly dir: string;
  readonly gateway: RunningGateway;
  /** Each workload's sidecar: productpage, details, reviews-v1, reviews-v2, reviews-v3, ratings. */
  readonly sidecars: ReadonlyMap<string, RunningSidecar>;
  page(user?: string): Promise<Page>;
  /** `kubectl apply -f`: each resource of `yaml` replaces the one of its kind and name; returns once every proxy serves them. */
  apply(yaml: string): Promise<void>;
  /** `kubectl delete -f`. */
  remove(yaml: string): Promise<void>;
  close(): Promise<void>;
}

interface Workload {
  readonly app: string;
  readonly version: string;
  readonly calls: readonly string[];
}

const WORKLOADS: readonly Workload[] = [
  { app: 'productpage', version: 'v1', calls: [DETAILS_URL, REVIEWS_URL] },
  { app: 'details', version: 'v1', calls: [] },
  { app: 'reviews', version: 'v1', calls: [] },
  { app: 'reviews', version: 'v2', calls: [RATINGS_URL] },
  { app: 'reviews', version: 'v3', calls: [RATINGS_URL] },
  { app: 'ratings', version: 'v1', calls: [] },
];

const nameOf = (w: Workload): string => (w.app === 'reviews' ? `reviews-${w.version}` : w.app);

function pageOf(r: Reply): Page {
  let reply: BackendReply | undefined;
  try {
    reply = JSON.parse(r.text) as BackendReply;
  } catch {
    // a local reply (RBAC: access denied): no page
  }
  const reviews = reply?.calls?.[REVIEWS_URL];
  const reviewsBody = reviews?.body as BackendReply | undefined;
  const version = typeof reviewsBody === 'object' ? reviewsBody.version : undefined;
  return {
    status: r.status,
    text: r.text,
    details: reply?.calls?.[DETAILS_URL]?.status,
    reviews: reviews ? { status: reviews.status, version, body: reviews.body } : undefined,
    ratings: typeof reviewsBody === 'object' ? reviewsBody.calls?.[RATINGS_URL] : undefined,
  };
}

/** `extra`: further options of one workload's sidecar (metrics, an access log), by its name. */
export async function startBookinfoMesh(extra: (name: string) => Partial<SidecarOptions> = () => ({})): Promise<BookinfoMesh> {
  const ca = await testAuthority();
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-bookinfo-'));
  await copyFile(repoPath('test/fixtures/bookinfo/destination-rule-all.yaml'), join(dir, 'destination-rule-all.yaml'));
  await copyFile(repoPath('test/fixtures/bookinfo/bookinfo-gateway.yaml'), join(dir, 'bookinfo-gateway.yaml'));
  const apps: RunningBackend[] = [];
  const sidecars = new Map<string, RunningSidecar>();
  const endpoints = new Map<string, TestEndpoint[]>();
  for (const w of WORKLOADS) {
    const name = nameOf(w);
    let outbound = 0;
    const app = await startBackend({ service: w.app, version: w.version, instance: name, port: 0, calls: { proxyPort: () => outbound, urls: w.calls } });
    apps.push(app);
    const account = `bookinfo-${w.app}`;
    const sidecar = await startSidecar({
      ...sidecarOptions(ca, dir, w.app, app.port),
      identity: fixedIdentity(ca, 'default', account),
      serviceAccount: account,
      labels: { app: w.app, version: w.version },
      ...extra(name),
    });
    outbound = sidecar.outboundPort;
    sidecars.set(name, sidecar);
    const list = endpoints.get(w.app) ?? [];
    list.push({ pod: name, port: sidecar.inboundPort, serviceAccount: account, labels: { version: w.version, 'security.istio.io/tlsMode': 'istio' } });
    endpoints.set(w.app, list);
  }
  await writeFile(join(dir, 'services.yaml'), [...endpoints].map(([app, eps]) => serviceYaml(app, eps, { port: 9080 })).join('---\n'));
  const gateway = await startGateway({
    configDir: dir,
    ports: new Map([[8080, 0]]),
    listenHost: '127.0.0.1',
    statusPort: 0,
    adminPort: 0,
    accessLog: 'off',
    logger: pino({ level: 'silent' }),
    identity: fixedIdentity(ca, 'istio-system', 'istio-ingressgateway-service-account'),
    labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' },
  });
  const port = gateway.listenPorts.get(8080)!;
  const holders = [gateway.holder, ...[...sidecars.values()].map((s) => s.holder)];
  const known = (s: { registry: { lookup(host: string): unknown } }): boolean => ['productpage', 'details', 'reviews', 'ratings'].every((a) => s.registry.lookup(`${a}.default.svc.cluster.local`) !== undefined);
  await Promise.all(holders.map((h) => untilSnapshot(h, known)));

  return {
    ca,
    dir,
    gateway,
    sidecars,
    page: async (user) => pageOf(await send(port, 'bookinfo.example.com', '/productpage', user ? { 'end-user': user } : {})),
    apply: async (yaml) => {
      await kubectlApply(dir, yaml);
      await Promise.all(holders.map((h) => untilServed(h, yaml)));
    },
    remove: async (yaml) => {
      await kubectlDelete(dir, yaml);
      await Promise.all(holders.map((h) => untilWithdrawn(h, yaml)));
    },
    close: async () => {
      await gateway.destroy();
      await Promise.all([...sidecars.values()].map((s) => s.destroy()));
      await Promise.all(apps.map((a) => a.close()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
