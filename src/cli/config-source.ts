// Where a proxy or the control plane gets its configuration, as the command line says: a folder
// (`--config DIR`), the Kubernetes API (`--config-source kubernetes`), or — for proxies — a control
// plane (`--control URL`, which also gives the proxy its workload identity). Exactly one.

import { join } from 'node:path';
import type { Logger } from 'pino';
import { configDirProblem } from '../core/config/load.js';
import type { ConfigSource } from '../core/sources/source.js';
import type { Snapshot } from '../core/snapshot/snapshot.js';
import { CommandError, UsageError } from './main.js';

export type SourceChoice =
  | { readonly dir: string }
  | { readonly kubeconfig: string | undefined; readonly namespaces: string[] }
  | { readonly control: ControlChoice };

export interface ControlChoice {
  readonly url: string;
  readonly tokenFile: string;
  readonly rootCertFile: string;
}

/** The mesh root a proxy trusts the control plane through when `--root-cert` is not given. */
export const DEFAULT_ROOT_CERT = join('certs', 'mesh-ca', 'root-cert.pem');
/**
 * Where a pod's projected service-account token for audience `istio-ca` is mounted (Istio's path):
 * the proxy's credential in cluster mode when `--token` is not given.
 */
export const DEFAULT_TOKEN_FILE = '/var/run/secrets/tokens/istio-token';

export interface SourceValues {
  config?: string;
  'config-source'?: string;
  kubeconfig?: string;
  'watch-namespaces'?: string;
  control?: string;
  token?: string;
  'root-cert'?: string;
}

/** `--config DIR`, `--config-source kubernetes` with its own options, or (proxies) `--control URL`; exactly one. */
export function sourceChoice(values: SourceValues): SourceChoice {
  const kind = values['config-source'];
  if (kind !== undefined && kind !== 'kubernetes') throw new UsageError(`--config-source: '${kind}' is not a source meshgate knows (use 'kubernetes')`);
  const given = [values.config !== undefined, kind !== undefined, values.control !== undefined].filter(Boolean).length;
  if (given > 1) throw new UsageError('give one of --config DIR, --config-source kubernetes or --control URL');
  if (values.control === undefined && (values.token !== undefined || values['root-cert'] !== undefined)) {
    throw new UsageError('--token and --root-cert go with --control URL');
  }
  if (values.control !== undefined) {
    if (!/^https:\/\//.test(values.control)) throw new UsageError(`--control: '${values.control}' must be an https:// URL (the control plane's TLS port, e.g. https://meshgate-control.istio-system.svc:15012)`);
    if (values.token === '') throw new UsageError('--token needs a FILE (the bearer token this proxy authenticates with)');
    return { control: { url: values.control, tokenFile: values.token ?? DEFAULT_TOKEN_FILE, rootCertFile: values['root-cert'] ?? DEFAULT_ROOT_CERT } };
  }
  if (given === 0) throw new UsageError('--config DIR or --config-source kubernetes is required');
  if (!kind) {
    if (values.kubeconfig !== undefined || values['watch-namespaces'] !== undefined) {
      throw new UsageError('--kubeconfig and --watch-namespaces go with --config-source kubernetes');
    }
    return { dir: values.config! };
  }
  const namespaces = (values['watch-namespaces'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return { kubeconfig: values.kubeconfig, namespaces };
}

/** `dir` when it can be read as a config folder; otherwise the one-line reason, before anything starts. */
export function readableConfigDir(dir: string): string {
  const why = configDirProblem(dir);
  if (why) throw new CommandError(why);
  return dir;
}

export async function kubeSource(choice: { readonly kubeconfig: string | undefined; readonly namespaces: string[] }, log: Logger): Promise<ConfigSource> {
  // Loaded only here: the Kubernetes client is large, and every other command can do without it.
  const { KubeSource } = await import('../core/sources/kube-source.js');
  return new KubeSource({ kubeconfig: await usableKubeConfig(choice), namespaces: choice.namespaces, logger: log.child({ source: 'kubernetes' }) });
}

/** The kubeconfig `--config-source kubernetes` reads, or the one-line reason it cannot be loaded (checked before anything starts). */
export async function usableKubeConfig(choice: { readonly kubeconfig: string | undefined }) {
  const { loadKubeConfig } = await import('../core/sources/kube-source.js');
  try {
    return loadKubeConfig(choice.kubeconfig);
  } catch (err) {
    const message = (err as Error).message;
    // Not a mistyped command line but a missing or broken file: a startup failure (exit 1).
    throw new CommandError(choice.kubeconfig === undefined ? message : `--kubeconfig: cannot load ${choice.kubeconfig}: ${message}`);
  }
}

/** The Secrets of the gateway's own namespace, where `credentialName` points in cluster mode. */
export async function kubeSecrets(choice: { readonly kubeconfig: string | undefined }, namespace: string, log: Logger) {
  const [{ loadKubeConfig }, { KubeSecrets }] = await Promise.all([import('../core/sources/kube-source.js'), import('../core/sources/kube-secrets.js')]);
  return new KubeSecrets({ kubeconfig: loadKubeConfig(choice.kubeconfig), namespace, logger: log.child({ source: 'kubernetes', secrets: namespace }) });
}

/**
 * The writer of Gateway API status to the API server the gateway reads (`--config-source
 * kubernetes`): of the replicas of one gateway, the holder of its Lease in `namespace` writes.
 */
export async function gatewayApiStatusWriter(
  choice: { readonly kubeconfig: string | undefined },
  log: Logger,
  where: { readonly namespace: string; readonly gatewayNames?: ReadonlySet<string> },
): Promise<{ write(s: Snapshot): unknown; close(): Promise<void> }> {
  const [{ loadKubeConfig }, { ElectedStatusWriter }] = await Promise.all([import('../core/sources/kube-source.js'), import('../core/gateway-api/status-leader.js')]);
  return new ElectedStatusWriter({ kubeconfig: loadKubeConfig(choice.kubeconfig), ...where, logger: log.child({ component: 'gateway-api-status' }) });
}

/** Which of the gateway's replicas orders its ACME certificates: the holder of its ACME Lease in `namespace`. */
export async function acmeElection(choice: { readonly kubeconfig: string | undefined }, log: Logger, where: { readonly namespace: string; readonly gatewayNames?: ReadonlySet<string> }) {
  const [{ loadKubeConfig }, { AcmeElection }] = await Promise.all([import('../core/sources/kube-source.js'), import('../gateway/acme/acme-election.js')]);
  return new AcmeElection({ kubeconfig: loadKubeConfig(choice.kubeconfig), ...where, logger: log.child({ component: 'acme' }) });
}
