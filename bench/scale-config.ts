// A generated configuration of any size for the scale rows of the bench: per service a Service, an
// EndpointSlice with five endpoints, a DestinationRule with two subsets and a VirtualService with three
// routes, bound to one Gateway; 100 services to a file, so an edit touches one file as a person's would.
// The endpoint addresses are configuration data only (no traffic is ever sent to them), unless the
// configuration is written to be served (`upstreamPort`): then every endpoint is the bench's upstream
// on loopback, and one Pod at that address gives the endpoints the label of subset v2, which the
// first route sends to.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const SERVICES_PER_FILE = 100;
export const SCALE_GATEWAY_PORT = 80;

export function scaleHost(i: number): string {
  return `svc-${i}.scale.example.com`;
}

const UPSTREAM_ADDRESS = '127.0.0.1';

function service(i: number, revision = 0, upstreamPort?: number): string {
  const name = `svc-${i}`;
  const address = (e: number) => (upstreamPort === undefined ? `10.${(i >> 8) & 255}.${i & 255}.${e + 1}` : UPSTREAM_ADDRESS);
  const endpoints = Array.from({ length: 5 }, (_, e) => `- addresses: ["${address(e)}"]\n  conditions: {ready: true}`).join('\n');
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
ports: [{name: http, port: ${upstreamPort ?? 8080}}]
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

const upstreamPod = () => `apiVersion: v1
kind: Pod
metadata: {name: scale-upstream, namespace: default, labels: {version: v2}}
status: {podIP: ${UPSTREAM_ADDRESS}}
`;

/**
 * Writes the configuration of `count` services into `dir` (which must exist); with `upstreamPort`,
 * every endpoint is 127.0.0.1 on that port, labelled for subset v2 (module comment).
 */
export async function writeScaleConfig(dir: string, count: number, upstreamPort?: number): Promise<void> {
  await writeFile(join(dir, 'gateway.yaml'), upstreamPort === undefined ? GATEWAY : `${GATEWAY}---\n${upstreamPod()}`);
  for (let first = 0; first < count; first += SERVICES_PER_FILE) await writeServiceFile(dir, first, Math.min(count, first + SERVICES_PER_FILE), undefined, upstreamPort);
}

/** Rewrites the file holding service `i`, with that service's first route changed to `/api/v<revision>`. */
export async function editService(dir: string, count: number, i: number, revision: number): Promise<void> {
  const first = i - (i % SERVICES_PER_FILE);
  await writeServiceFile(dir, first, Math.min(count, first + SERVICES_PER_FILE), { i, revision });
}

async function writeServiceFile(dir: string, first: number, end: number, edit?: { i: number; revision: number }, upstreamPort?: number): Promise<void> {
  const docs: string[] = [];
  for (let i = first; i < end; i++) docs.push(service(i, edit?.i === i ? edit.revision : 0, upstreamPort));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, fileOf(first)), docs.join('---\n'));
}
