// What listing a big collection costs the client, paged (500 a page, as meshgate lists) against one
// page holding everything (how it listed before): the API stand-in serves N Pods from this process;
// a child process lists them with listCollection and reports its peak RSS above what it had before
// the list (VmHWM, the kernel's high-water mark, so no peak is missed between samples) and the time.
// `node --expose-gc dist/bench/kube-list-memory.js [PODS]`, default 20,000; prints one line per mode.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { listCollection } from '../src/core/sources/kube-list.js';
import { startKubeApi } from '../test/helpers/kube-api.js';

const PATH = '/api/v1/pods';

/** A Pod about as large as a real one with one container (about 2.5 KB of JSON). */
function pod(n: number): Record<string, unknown> {
  const name = `web-${n.toString(36)}-${(n * 7919).toString(36)}`;
  const ns = `team-${n % 50}`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: ns,
      labels: { app: `web-${n % 400}`, 'pod-template-hash': (n * 31).toString(16), 'security.istio.io/tlsMode': 'istio', version: 'v1' },
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-01-01T00:00:00Z', 'prometheus.io/scrape': 'true', 'prometheus.io/port': '15020' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `web-${n % 400}-${(n * 31).toString(16)}`, uid: '1f0c2a52-0000-4000-8000-000000000000', controller: true }],
    },
    spec: {
      serviceAccountName: `web-${n % 400}`,
      nodeName: `node-${n % 300}`,
      containers: [
        {
          name: 'app',
          image: 'registry.example/web:1.2.3',
          ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
          env: [{ name: 'LOG_LEVEL', value: 'info' }, { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
          readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 10 },
          volumeMounts: [{ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
        },
      ],
      volumes: [{ name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] } }],
    },
    status: {
      phase: 'Running',
      podIP: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
      hostIP: `192.168.${(n % 300) >> 8}.${n % 256}`,
      conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({ type, status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' })),
      containerStatuses: [{ name: 'app', ready: true, restartCount: 0, image: 'registry.example/web:1.2.3', imageID: 'registry.example/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', started: true }],
    },
  };
}

function peakRssMb(): number {
  const kb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
  return kb / 1024;
}

async function client(kubeconfigYaml: string, pageSize: number): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigYaml);
  // Warm up the request path on a small collection, so the baseline holds the modules and the client.
  await listCollection(kc, '/api/v1/namespaces/none/pods', new AbortController().signal);
  globalThis.gc?.();
  const before = peakRssMb();
  const start = process.hrtime.bigint();
  const list = await listCollection(kc, PATH, new AbortController().signal, { pageSize });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  globalThis.gc?.();
  const heldMb = process.memoryUsage().heapUsed / 2 ** 20;
  console.log(JSON.stringify({ pageSize, pods: list.items.length, ms: Math.round(ms), peakRssAboveBaselineMb: Math.round(peakRssMb() - before), heapAfterMb: Math.round(heldMb) }));
}

async function main(): Promise<void> {
  const [role, arg1, arg2] = process.argv.slice(2);
  if (role === 'client') return client(Buffer.from(arg1!, 'base64').toString('utf8'), Number(arg2));
  const pods = Number(role ?? 20_000);
  const api = await startKubeApi({ maxPageSize: Infinity });
  try {
    for (let n = 0; n < pods; n++) api.apply(pod(n));
    const bytes = JSON.stringify(api.all('Pod')).length;
    console.log(JSON.stringify({ pods, listJsonMb: Math.round(bytes / 2 ** 20) }));
    const self = fileURLToPath(import.meta.url);
    const yaml = Buffer.from(api.kubeconfigYaml()).toString('base64');
    for (const pageSize of [500, pods, 500, pods]) {
      // The child runs while this process serves it: execFileSync would block the stand-in.
      const out = await new Promise<string>((resolve, reject) => {
        execFile(process.execPath, ['--expose-gc', self, 'client', yaml, String(pageSize)], { maxBuffer: 1 << 20 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
      });
      process.stdout.write(out);
    }
  } finally {
    await api.close();
  }
}

await main();
