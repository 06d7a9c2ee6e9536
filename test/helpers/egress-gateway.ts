// Istio's egress gateway tasks on loopback: one config folder read by a sidecar (the `sleep` app's)
// and by a gateway started as `istio-egressgateway` (labels `istio: egressgateway`, namespace
// istio-system, its own mesh identity), the gateway's Service and pod as a cluster holds them, and
// requests the way the app makes them through its sidecar (HTTP_PROXY, CONNECT for https://).

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { parseAllDocuments, stringify } from 'yaml';
import { startGateway, type RunningGateway } from '../../src/gateway/main.js';
import { startSidecar, type RunningSidecar } from '../../src/sidecar/main.js';
import type { CertificateAuthority } from '../../src/core/pki/authority.js';
import { FileSource } from '../../src/core/sources/file-source.js';
import { parseConfigText } from '../../src/core/config/load.js';
import type { SnapshotHolder } from '../../src/core/snapshot/holder.js';
import { fixedIdentity, sidecarOptions, untilSnapshot } from './mesh.js';
import type { ManualIdentity } from './mesh-tls.js';
import { seededRandom } from './random.js';

/** The egress gateway's Service as `istioctl install` makes it: 80 (http2) → 8080, 443 (https) → 8443. */
export function egressGatewayServiceYaml(http: number, https: number): string {
  return `apiVersion: v1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  ports:
  - {name: http2, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}
---
apiVersion: v1
kind: Pod
metadata:
  name: istio-egressgateway-1
  namespace: istio-system
  labels: {istio: egressgateway, app: istio-egressgateway}
spec: {serviceAccountName: istio-egressgateway-service-account}
status: {podIP: 127.0.0.1}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: istio-egressgateway-1
  namespace: istio-system
  labels: {kubernetes.io/service-name: istio-egressgateway}
addressType: IPv4
ports: [{name: http2, port: ${http}}, {name: https, port: ${https}}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: istio-egressgateway-1, namespace: istio-system}
`;
}

/** Where the stand-ins for the outside world listen on loopback. */
export interface Outside {
  /** ServiceEntry host → its port name → the loopback port serving it. */
  readonly entries?: Record<string, Record<string, number>>;
  /** `namespace/name` of a Service outside the mesh (no sidecar) → the loopback port of its one pod. */
  readonly services?: Record<string, number>;
  /**
   * A PEM file to trust where a rule's SIMPLE TLS trusts the public roots: the stand-in's CA stands
   * in for them (set as the rule's caCertificates).
   */
  readonly publicRoots?: string;
}

/**
 * A task's YAML as Istio's docs write it (test/fixtures/egress-gateway/), pointed at the loopback
 * stand-ins: a ServiceEntry that lets DNS find its host gets a static 127.0.0.1 endpoint instead, a
 * Service outside the mesh gets a pod and EndpointSlice as the cluster would hold them. Nothing else
 * changes.
 */
export async function taskYaml(fixture: string, outside: Outside): Promise<string> {
  const text = await readFile(new URL(`../../../test/fixtures/egress-gateway/${fixture}`, import.meta.url), 'utf8');
  const out: string[] = [];
  for (const doc of parseAllDocuments(text)) {
    const r = doc.toJS() as { kind: string; metadata: { name: string; namespace?: string }; spec: Record<string, unknown> };
    if (r.kind === 'ServiceEntry') {
      const ports = outside.entries?.[(r.spec['hosts'] as string[])[0]!];
      if (ports) Object.assign(r.spec, { resolution: 'STATIC', endpoints: [{ address: '127.0.0.1', ports }] });
    }
    if (r.kind === 'DestinationRule' && outside.publicRoots) {
      const policies = [r.spec['trafficPolicy'], ...(((r.spec['trafficPolicy'] as { portLevelSettings?: unknown[] })?.portLevelSettings) ?? [])] as Array<{ tls?: Record<string, unknown> } | undefined>;
      for (const p of policies) if (p?.tls?.['mode'] === 'SIMPLE' && !p.tls['caCertificates'] && !p.tls['credentialName']) p.tls['caCertificates'] = outside.publicRoots;
    }
    out.push(stringify(r));
    const ns = r.metadata.namespace ?? 'default';
    const port = r.kind === 'Service' ? outside.services?.[`${ns}/${r.metadata.name}`] : undefined;
    if (port !== undefined) out.push(outsidePod(r.metadata.name, ns, r.spec['selector'] as Record<string, string>, port));
  }
  return out.join('---\n');
}

/** A pod without a sidecar behind Service `name`, and the EndpointSlice naming it (its one port, unnamed). */
function outsidePod(name: string, ns: string, labels: Record<string, string>, port: number): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}-0, namespace: ${ns}, labels: ${JSON.stringify(labels)}}
status: {podIP: 127.0.0.1}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-0, namespace: ${ns}, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
ports: [{name: '', port: ${port}}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: ${name}-0, namespace: ${ns}}
`;
}

export interface EgressMesh {
  readonly dir: string;
  readonly sidecar: RunningSidecar;
  readonly gateway: RunningGateway;
  /** The egress gateway's workload identity, to rotate by hand. */
  readonly gatewayIdentity: ManualIdentity;
  /** The ports the egress gateway listens on for its Service ports 80 and 443. */
  readonly gatewayHttp: number;
  readonly gatewayHttps: number;
  readonly sidecarLog: string;
  readonly gatewayLog: string;
  /** Writes a config file and resolves once both proxies serve what it says. */
  write(file: string, yaml: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the egress gateway, then writes its Service (now that its ports are known) and `files`, then
 * the sidecar. `certsDir` holds the gateway's credentialName secrets.
 */
export async function startEgressMesh(ca: CertificateAuthority, files: Record<string, string>, certsDir?: { gateway?: string; sidecar?: string }): Promise<EgressMesh> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-egressgw-'));
  const logs = await mkdtemp(join(tmpdir(), 'meshgate-egressgw-logs-'));
  const gatewayLog = join(logs, 'egressgateway.log');
  const gatewayIdentity = fixedIdentity(ca, 'istio-system', 'istio-egressgateway-service-account');
  const sidecarLog = join(logs, 'sidecar.log');
  const gateway = await startGateway({
    configDir: dir,
    ports: new Map([
      [80, 0],
      [443, 0],
    ]),
    labels: { istio: 'egressgateway', app: 'istio-egressgateway' },
    namespace: 'istio-system',
    identity: gatewayIdentity,
    listenHost: '127.0.0.1',
    statusPort: 0,
    adminPort: 0,
    accessLog: gatewayLog,
    metricsPort: 0,
    logger: pino({ level: 'silent' }),
    random: seededRandom(7),
    ...(certsDir?.gateway ? { certsDir: certsDir.gateway } : {}),
  });
  const gatewayHttp = gateway.listenPorts.get(80)!;
  const gatewayHttps = gateway.listenPorts.get(443)!;
  const all = { 'egressgateway.yaml': egressGatewayServiceYaml(gatewayHttp, gatewayHttps), ...files };
  for (const [name, text] of Object.entries(all)) await writeFile(join(dir, name), text);
  const sidecar = await startSidecar({ ...sidecarOptions(ca, dir, 'sleep', 1), source: new FileSource({ dir }), accessLog: sidecarLog, metricsPort: 0, ...(certsDir?.sidecar ? { certsDir: certsDir.sidecar } : {}) });
  const landed = async (file: string, yaml: string): Promise<void> => {
    await Promise.all([gateway.holder, sidecar.holder].map((h) => serves(h, file, yaml)));
  };
  for (const [name, text] of Object.entries(all)) await landed(name, text);
  return {
    dir,
    sidecar,
    gateway,
    gatewayIdentity,
    gatewayHttp,
    gatewayHttps,
    sidecarLog,
    gatewayLog,
    write: async (file, yaml) => {
      await writeFile(join(dir, file), yaml);
      await landed(file, yaml);
    },
    close: async () => {
      await Promise.all([sidecar.destroy(), gateway.destroy()]);
      await rm(dir, { recursive: true, force: true });
      await rm(logs, { recursive: true, force: true });
    },
  };
}

/** Resolves once `holder` serves every resource of `yaml` as written (the file watcher is asynchronous). */
async function serves(holder: SnapshotHolder, file: string, yaml: string): Promise<void> {
  const key = (r: { kind: string; metadata: { namespace?: string; name: string }; spec: unknown; raw: unknown }): string => JSON.stringify([r.kind, r.metadata.namespace, r.metadata.name, r.spec, r.raw]);
  const wanted = parseConfigText(yaml, file).resources.map(key);
  await untilSnapshot(holder, (s) => {
    const have = new Set(s.resources.map(key));
    return wanted.every((w) => have.has(w));
  });
}

export interface HttpsReply {
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

/**
 * `curl https://<host><path>` through the sidecar as its HTTP proxy: CONNECT host:443, then TLS to the
 * far end inside the tunnel, checked against `ca` for `host`, and one HTTP/1.1 request.
 */
export function httpsViaProxy(proxyPort: number, host: string, path: string, ca: string): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: `${host}:443` });
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        resolve({ status: res.statusCode ?? 0, head: '', body: '' });
        return;
      }
      const tls = tlsConnect({ socket, servername: host, ca, ALPNProtocols: ['http/1.1'] });
      let raw = '';
      tls.on('secureConnect', () => tls.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: curl/8.5.0\r\nConnection: close\r\n\r\n`));
      tls.on('data', (d: Buffer) => (raw += d.toString()));
      tls.on('error', reject);
      tls.on('close', () => {
        const end = raw.indexOf('\r\n\r\n');
        const head = end >= 0 ? raw.slice(0, end) : raw;
        resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body: end >= 0 ? raw.slice(end + 4) : '' });
      });
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, head: '', body: '' });
    });
    req.on('error', reject);
    req.end();
  });
}
