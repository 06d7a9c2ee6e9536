// Which TLS trust the ACME client uses to reach each ACME server. acme-client sends every request
// through one shared axios instance; a request interceptor gives requests to a registered
// directory's origin their own https.Agent (extra CAs, or no verification for `skipTLSVerify`).
// Everything else, and every other HTTPS client in the process, keeps Node's default trust, so a
// private ACME CA is never trusted beyond the ACME conversation.

import { readFileSync } from 'node:fs';
import { get as httpsGet, Agent } from 'node:https';
import { rootCertificates } from 'node:tls';
import acme from 'acme-client';

export interface AcmeTrust {
  /** PEM bundles to trust in addition to the system roots. */
  readonly ca?: readonly string[];
  /** Accept any certificate (cert-manager's `skipTLSVerify`, for test servers only). */
  readonly skipVerify?: boolean;
}

const agents = new Map<string, Agent>();
let installed = false;

/**
 * Registers the agent for `directoryUrl`'s origin and returns it (undefined when the default trust
 * applies) with a function that takes the registration back.
 */
export function trustDirectory(directoryUrl: string, trust: AcmeTrust): { agent: Agent | undefined; release: () => void } {
  const origin = new URL(directoryUrl).origin;
  const extra = (trust.ca ?? []).filter((p) => p.trim() !== '');
  if (!trust.skipVerify && extra.length === 0) return { agent: undefined, release: () => undefined };
  install();
  const agent = trust.skipVerify
    ? new Agent({ keepAlive: true, rejectUnauthorized: false })
    : new Agent({ keepAlive: true, ca: [...rootCertificates, ...environmentCas(), ...extra] });
  agents.set(origin, agent);
  return {
    agent,
    release: () => {
      if (agents.get(origin) === agent) agents.delete(origin);
      agent.destroy();
    },
  };
}

function install(): void {
  if (installed) return;
  installed = true;
  acme.axios.interceptors.request.use((config) => {
    if (agents.size === 0 || typeof config.url !== 'string') return config;
    let origin: string;
    try {
      origin = new URL(config.url).origin;
    } catch {
      return config;
    }
    const agent = agents.get(origin);
    if (agent) config.httpsAgent = agent;
    return config;
  });
}

/**
 * Giving an agent `ca` replaces Node's whole trust store, including what NODE_EXTRA_CA_CERTS added
 * at start-up; read that file again so a corporate proxy CA the environment trusts still works.
 */
function environmentCas(): string[] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return [];
  try {
    return [readFileSync(file, 'utf8')];
  } catch {
    return [];
  }
}

/**
 * Fetches the ACME directory once before an order. acme-client reports an unreachable server as
 * an unrelated TypeError after its retries; this gives the real reason, quickly.
 */
export function probeDirectory(directoryUrl: string, agent: Agent | undefined, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(directoryUrl, { ...(agent ? { agent } : {}), timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => reject(new Error(`cannot read the ACME directory ${directoryUrl}: ${err.message}`)));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`ACME directory ${directoryUrl} answered HTTP ${res.statusCode}`));
        try {
          const dir = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          if (typeof dir.newOrder !== 'string') return reject(new Error(`${directoryUrl} is not an ACME directory (no newOrder)`));
        } catch {
          return reject(new Error(`${directoryUrl} is not an ACME directory (not JSON)`));
        }
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => reject(new Error(`cannot reach the ACME server ${new URL(directoryUrl).host}: ${err.message}${err.code && !err.message.includes(err.code) ? ` (${err.code})` : ''}`)));
  });
}
