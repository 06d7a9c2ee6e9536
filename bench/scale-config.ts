// A generated configuration of any size for the scale rows of the bench: per service a Service, an
// EndpointSlice with five endpoints, a DestinationRule with two subsets and a VirtualService with three
// routes, bound to one Gateway; 100 services to a file, so an edit touches one file as a person's would.
// The endpoint addresses are configuration data only: no traffic is ever sent to them.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const SERVICES_PER_FILE = 100;
export const SCALE_GATEWAY_PORT = 80;

export function scaleHost(i: number): string {
  return `svc-${i}.scale.example.com`;
}

function service(i: number, revision = 0): string {
  const name = `svc-${i}`;
  const endpoints = Array.from({ length: 5 }, (_, e) => `- addresses: ["10.${(i >> 8) & 255}.${i & 255}.${e + 1}"]\n  conditions: {ready: true}`).join('\n');
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-1, namespace: default, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
${endpoints}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: default}
spec:
  host: ${name}
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${scaleHost(i)}]
  gateways: [scale-gateway]
  http:
  - name: api
    match: [{uri: {prefix: /api/v${revision}}}]
    route: [{destination: {host: ${name}, subset: v2}}]
  - name: exact
    match: [{uri: {exact: /health}}]
    directResponse: {status: 200}
  - name: default
    route: [{destination: {host: ${name}, subset: v1}, weight: 90}, {destination: {host: ${name}, subset: v2}, weight: 10}]
`;
}

const GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: scale-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: ${SCALE_GATEWAY_PORT}, name: http, protocol: HTTP}
    hosts: ["*.scale.example.com"]
`;

export function fileOf(i: number): string {
  return `services-${String(Math.floor(i / SERVICES_PER_FILE)).padStart(4, '0')}.yaml`;
}

/** Writes the configuration of `count` services into `dir` (which must exist). */
export async function writeScaleConfig(dir: string, count: number): Promise<void> {
  await writeFile(join(dir, 'gateway.yaml'), GATEWAY);
  for (let first = 0; first < count; first += SERVICES_PER_FILE) await writeServiceFile(dir, first, Math.min(count, first + SERVICES_PER_FILE));
}

/** Rewrites the file holding service `i`, with that service's first route changed to `/api/v<revision>`. */
export async function editService(dir: string, count: number, i: number, revision: number): Promise<void> {
  const first = i - (i % SERVICES_PER_FILE);
  await writeServiceFile(dir, first, Math.min(count, first + SERVICES_PER_FILE), { i, revision });
}

async function writeServiceFile(dir: string, first: number, end: number, edit?: { i: number; revision: number }): Promise<void> {
  const docs: string[] = [];
  for (let i = first; i < end; i++) docs.push(service(i, edit?.i === i ? edit.revision : 0));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, fileOf(first)), docs.join('---\n'));
}
