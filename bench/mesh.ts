// The mesh as a user runs it, for the benchmark: `meshgate control` on a config folder with its own
// CA, one `meshgate sidecar` in front of the upstream (the app), with the environment injection gives
// a sidecar, and `meshgate gateway --control`, each a process of its own on 127.0.0.1. The gateway gets its configuration and workload
// certificate from the control plane and, because the app's Pod carries the sidecar label, reaches
// the app through the sidecar's inbound port over mutual TLS; PeerAuthentication STRICT means a
// request that did not come over mTLS would fail, so a 200 proves the path.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts, tempDir, track, type Child } from './processes.js';
import { BENCH_HOST } from './servers.js';
import { isReady, meshgateConfig, preflight, type Target } from './targets.js';
import { SIDECAR_ENV, SIDECAR_NODE_OPTIONS } from '../src/core/inject/sidecar-node-options.js';
import { loadOrCreateAuthority } from '../src/core/pki/authority.js';
import { createWorkloadCsr } from '../src/core/pki/workload-csr.js';

// dist/bench/ → the package root.
const MESHGATE_BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));

/** The app's workload: its Pod name and the service account its sidecar's certificate names. */
const APP = { pod: 'bench-upstream-0', serviceAccount: 'bench-upstream', namespace: 'default' };
const GATEWAY = { namespace: 'istio-system', serviceAccount: 'istio-ingressgateway-service-account' };

export interface MeshTargets {
  /** The gateway's HTTP port; its requests cross the sidecar. */
  readonly gateway: Target;
  readonly sidecarPid: number | undefined;
  /** The sidecar's inbound (mutual TLS) port, and the mesh CA's folder (sidecar-floor.ts signs its own peers there). */
  readonly sidecarInbound: number;
  readonly caDir: string;
  /** Gateway, then sidecar, then control plane. */
  stop(): Promise<void>;
}

function meshgate(args: readonly string[], label: string, env?: NodeJS.ProcessEnv): Child {
  return track(spawn(process.execPath, [MESHGATE_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], ...(env ? { env } : {}) }), label);
}

/**
 * The sidecar's NODE_OPTIONS: what injection gives the proxy container, unless BENCH_SIDECAR_NODE_OPTIONS
 * says otherwise (an A/B of V8 settings; empty for Node's defaults).
 */
export function sidecarNodeOptions(): string {
  return process.env.BENCH_SIDECAR_NODE_OPTIONS ?? SIDECAR_NODE_OPTIONS;
}

export async function startMesh(appPort: number): Promise<MeshTargets> {
  const dir = await tempDir('meshgate-bench-mesh-');
  const configDir = join(dir, 'config');
  const caDir = join(dir, 'ca');
  await Promise.all([mkdir(configDir), mkdir(caDir)]);
  const [cpPort, cpStatus, inbound, outbound, scStatus, scAdmin, gwPort, gwStatus, gwAdmin] = (await freePorts(9)) as [
    number, number, number, number, number, number, number, number, number,
  ];
  await writeFile(join(configDir, 'bench.yaml'), meshgateConfig(inbound, { workload: APP }));
  const gatewayToken = randomBytes(24).toString('hex');
  const sidecarToken = randomBytes(24).toString('hex');
  await writeFile(
    join(dir, 'tokens.yaml'),
    `- {token: ${gatewayToken}, namespace: ${GATEWAY.namespace}, serviceAccount: ${GATEWAY.serviceAccount}}\n` +
      `- {token: ${sidecarToken}, namespace: ${APP.namespace}, serviceAccount: ${APP.serviceAccount}}\n`,
    { mode: 0o600 },
  );
  await writeFile(join(dir, 'gateway.token'), gatewayToken, { mode: 0o600 });
  await writeFile(join(dir, 'sidecar.token'), sidecarToken, { mode: 0o600 });

  const control = meshgate([
    'control', '--config', configDir, '--tokens', join(dir, 'tokens.yaml'), '--ca-dir', caDir,
    '--port', String(cpPort), '--status-port', String(cpStatus), '--debug-port', '0', '--listen-host', '127.0.0.1',
  ], 'meshgate control');
  const children = [control];
  // Stops whatever has started so far, in reverse order, so no proxy sees its control plane go first.
  const stop = async () => {
    for (const c of [...children].reverse()) await c.stop();
  };
  try {
    await control.until(() => isReady(cpStatus), 20_000);
    const mesh = ['--control', `https://127.0.0.1:${cpPort}`, '--root-cert', join(caDir, 'root-cert.pem')];
    const sidecar = meshgate([
      'sidecar', ...mesh, '--token', join(dir, 'sidecar.token'),
      '--namespace', APP.namespace, '--service-account', APP.serviceAccount, '--workload', APP.pod,
      '--labels', 'app=bench-upstream', '--app-port', String(appPort),
      '--inbound-port', String(inbound), '--outbound-port', String(outbound),
      '--status-port', String(scStatus), '--admin-port', String(scAdmin),
      '--listen-host', '127.0.0.1', '--access-log', 'off', '--metrics-port', '0', '--drain-seconds', '0',
    ], 'meshgate sidecar', { ...process.env, ...SIDECAR_ENV, NODE_OPTIONS: sidecarNodeOptions() });
    children.push(sidecar);
    const gateway = meshgate([
      'gateway', ...mesh, '--token', join(dir, 'gateway.token'),
      '--ports', `80=${gwPort}`, '--status-port', String(gwStatus), '--admin-port', String(gwAdmin),
      '--listen-host', '127.0.0.1', '--access-log', 'off', '--metrics-port', '0', '--drain-seconds', '0', '--workers', '1',
    ], 'meshgate gateway (mesh)');
    children.push(gateway);
    await Promise.all([sidecar.until(() => isReady(scStatus), 20_000), gateway.until(() => isReady(gwStatus), 20_000)]);

    const target: Target = { name: 'mesh, mTLS', url: `http://127.0.0.1:${gwPort}/`, host: BENCH_HOST, pid: gateway.pid, stop };
    // Ready means each has a configuration; the first request through both may still race the sidecar's.
    try {
      await gateway.until(() => preflight(target).then(() => true), 10_000);
    } catch {
      await preflight(target); // throws with what the gateway answered
      throw new Error('the mesh did not answer through the sidecar');
    }
    return { gateway: target, sidecarPid: sidecar.pid, sidecarInbound: inbound, caDir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A certificate for a mesh identity, signed by the mesh's CA; files in `dir` named after `name`. */
export async function meshCertificate(caDir: string, dir: string, name: string, namespace: string, serviceAccount: string): Promise<{ cert: string; key: string }> {
  const loaded = loadOrCreateAuthority(caDir);
  if (!loaded.ok) throw new Error(loaded.message);
  const csr = createWorkloadCsr({ keyType: 'ec' });
  const signed = loaded.ca.signWorkloadCsr(csr.csrPem, { trustDomain: loaded.ca.trustDomain, namespace, serviceAccount });
  if (!signed.ok) throw new Error(signed.message);
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  await Promise.all([writeFile(cert, signed.certChain.join('')), writeFile(key, csr.keyPem, { mode: 0o600 })]);
  return { cert, key };
}

/**
 * TLS options for a client that speaks to the sidecar's inbound port as the gateway does: a
 * certificate for the gateway's identity, signed by the mesh's CA (files in `dir`).
 */
export async function gatewayClientTls(caDir: string, dir: string): Promise<{ cert: Buffer; key: Buffer; ca: Buffer; checkServerIdentity: () => undefined }> {
  const client = await meshCertificate(caDir, dir, 'client', GATEWAY.namespace, GATEWAY.serviceAccount);
  return { cert: await readFile(client.cert), key: await readFile(client.key), ca: await readFile(join(caDir, 'root-cert.pem')), checkServerIdentity: () => undefined };
}
