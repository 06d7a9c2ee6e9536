// How any proxy joins the mesh: trust the control plane only through the mesh root it was given,
// authenticate with its bearer token (read afresh for every call, as a projected service-account
// token rotates), get its workload certificate BEFORE anything else (a proxy without an identity
// opens no port), and subscribe to the configuration stream.

import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { IdentityClient } from '../pki/identity-client.js';
import { ControlPlaneClient } from './control-plane-client.js';
import { ControlPlaneSource } from './control-plane-source.js';
import type { ProxyDescription } from './control-plane-wire.js';

export interface MeshConnectionOptions {
  /** `https://host:15012`. */
  readonly url: string;
  readonly tokenFile: string;
  /** The mesh root (the control plane's `root-cert.pem`, or Istio's `istio-ca-root-cert` ConfigMap). */
  readonly rootCertFile: string;
  readonly proxyId: string;
  /** What the proxy is and its labels: the control plane sends it only what concerns it. */
  readonly description: ProxyDescription;
  readonly logger: Logger;
  /** Workload certificate lifetime to ask for (default 24 h). */
  readonly certTtlSeconds?: number;
}

export interface MeshConnection {
  readonly identity: IdentityClient;
  readonly source: ControlPlaneSource;
  readonly client: ControlPlaneClient;
  close(): void;
}

export async function connectToMesh(opts: MeshConnectionOptions): Promise<MeshConnection> {
  const rootCertPem = readFileSync(opts.rootCertFile, 'utf8');
  const token = (): string => readFileSync(opts.tokenFile, 'utf8').trim();
  token(); // an unreadable token file is a start-up error, not a retry loop
  const client = new ControlPlaneClient({ url: opts.url, rootCertPem, token });
  const identity = new IdentityClient({
    requestCertificate: client.requestCertificate,
    rootCertPem,
    log: opts.logger.child({ component: 'identity' }),
    ...(opts.certTtlSeconds !== undefined ? { ttlSeconds: opts.certTtlSeconds } : {}),
  });
  opts.logger.info({ controlPlane: client.url }, 'asking the control plane for a workload certificate');
  try {
    await identity.start();
  } catch (err) {
    client.close();
    throw err;
  }
  const source = new ControlPlaneSource({ client, proxyId: opts.proxyId, description: opts.description, logger: opts.logger.child({ component: 'config-stream' }) });
  return {
    identity,
    source,
    client,
    close: () => {
      identity.close();
      source.destroy();
      client.close();
    },
  };
}
