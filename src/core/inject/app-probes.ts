// Application probes under the sidecar, as Istio rewrites them: the kubelet cannot present a mesh
// certificate, so under STRICT mTLS an HTTP probe to the app's port would be refused. Injection
// points each HTTP readiness, liveness and startup probe at the sidecar's port 15020,
// `/app-health/<container>/readyz|livez|startupz`, and hands the original probes to the sidecar in
// the env var ISTIO_KUBE_APP_PROBERS (JSON, keyed by that path); the sidecar calls the real probe.

export const APP_PROBERS_ENV = 'ISTIO_KUBE_APP_PROBERS';
export const PROBE_PORT = 15020;
export const APP_HEALTH_PREFIX = '/app-health/';

/** One original probe as the sidecar needs it. */
export interface AppProber {
  readonly httpGet: {
    readonly path?: string;
    readonly port: number;
    readonly scheme?: 'HTTP' | 'HTTPS';
    readonly host?: string;
    readonly httpHeaders?: ReadonlyArray<{ readonly name: string; readonly value: string }>;
  };
  readonly timeoutSeconds?: number;
}

export type AppProbers = Readonly<Record<string, AppProber>>;

const PROBE_KINDS = [
  ['readinessProbe', 'readyz'],
  ['livenessProbe', 'livez'],
  ['startupProbe', 'startupz'],
] as const;

type Json = Record<string, unknown>;

/**
 * Rewrites the HTTP probes of `containers` in place and returns the probers they had. A probe whose
 * port is a name no container port has is left as it is (the kubelet would fail it the same way).
 */
export function rewriteAppProbes(containers: Json[]): Record<string, AppProber> {
  const probers: Record<string, AppProber> = {};
  for (const c of containers) {
    const name = typeof c.name === 'string' ? c.name : '';
    for (const [field, suffix] of PROBE_KINDS) {
      const probe = c[field] as Json | undefined;
      const get = probe?.httpGet as Json | undefined;
      if (!probe || !get) continue;
      const port = resolvePort(get.port, c);
      if (port === undefined) continue;
      const path = `${APP_HEALTH_PREFIX}${name}/${suffix}`;
      const scheme = get.scheme === 'HTTPS' ? 'HTTPS' : 'HTTP';
      probers[path] = {
        httpGet: {
          ...(typeof get.path === 'string' ? { path: get.path } : {}),
          port,
          scheme,
          ...(typeof get.host === 'string' && get.host ? { host: get.host } : {}),
          ...(Array.isArray(get.httpHeaders) && get.httpHeaders.length > 0 ? { httpHeaders: get.httpHeaders as AppProber['httpGet']['httpHeaders'] } : {}),
        },
        ...(typeof probe.timeoutSeconds === 'number' ? { timeoutSeconds: probe.timeoutSeconds } : {}),
      };
      c[field] = { ...probe, httpGet: { path, port: PROBE_PORT, scheme: 'HTTP' } };
    }
  }
  return probers;
}

/** Reads ISTIO_KUBE_APP_PROBERS; problems are messages, entries that make no sense are dropped. */
export function parseAppProbers(text: string | undefined): { probers: AppProbers; problem?: string } {
  if (text === undefined || text.trim() === '') return { probers: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { probers: {}, problem: `${APP_PROBERS_ENV} is not JSON: ${(err as Error).message}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { probers: {}, problem: `${APP_PROBERS_ENV} is not an object` };
  const out: Record<string, AppProber> = {};
  for (const [path, value] of Object.entries(raw as Json)) {
    const get = (value as Json | null)?.httpGet as Json | undefined;
    const port = typeof get?.port === 'number' ? get.port : Number(get?.port);
    if (!path.startsWith(APP_HEALTH_PREFIX) || !get || !Number.isInteger(port) || port < 1 || port > 65535) continue;
    out[path] = { ...(value as AppProber), httpGet: { ...(get as AppProber['httpGet']), port } };
  }
  return { probers: out };
}

/** A probe port: a number, a numeric string, or the name of one of the container's ports. */
function resolvePort(port: unknown, container: Json): number | undefined {
  if (typeof port === 'number') return port;
  if (typeof port !== 'string') return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  const ports = Array.isArray(container.ports) ? (container.ports as Json[]) : [];
  const named = ports.find((p) => p.name === port);
  return typeof named?.containerPort === 'number' ? named.containerPort : undefined;
}
