// The proxies of the push rows: configuration streams in one process, each the real client code
// (a ControlPlaneClient of its own, so a TLS connection of its own, and a ControlPlaneSource) that
// acknowledges every version as applied. Prints `ready` once every stream has its first set.
// Run by bench/xds-push-size.ts as `node dist/bench/xds-push-clients.js URL ROOT_PEM_FILE TOKEN FIRST END`
// (proxies FIRST to END-1).

import { readFileSync } from 'node:fs';
import { ControlPlaneClient } from '../src/core/sources/control-plane-client.js';
import { ControlPlaneSource } from '../src/core/sources/control-plane-source.js';

const [url, rootFile, token, first, end] = process.argv.slice(2) as [string, string, string, string, string];
const rootCertPem = readFileSync(rootFile, 'utf8');
const starts: Promise<void>[] = [];
for (let i = Number(first); i < Number(end); i++) {
  const client = new ControlPlaneClient({ url, rootCertPem, token });
  // Ten kinds of workload, as replicas of ten deployments would be.
  const source = new ControlPlaneSource({ client, proxyId: `bench-${i}.default`, description: { role: 'sidecar', labels: { app: `svc-${i % 10}` } } });
  starts.push(source.start((u) => u.acknowledge?.({ accepted: true })));
}
// Ended by the bench: exit normally, so that a --cpu-prof run still writes its profile.
process.on('SIGTERM', () => process.exit(0));
await Promise.all(starts);
console.log('ready');
