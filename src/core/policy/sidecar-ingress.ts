// The ingress listeners of the Sidecar resource that applies to this proxy (Istio's
// `Sidecar.ingress`), read once per snapshot for the inbound side: per port the caller dialled, the
// protocol the listener declares, where its traffic goes (`defaultEndpoint`), the TLS it terminates
// for clients outside the mesh (`tls`) and the connection limits towards the app (`connectionPool`,
// else the Sidecar's `inboundConnectionPool`, through the same connectionLimits() a DestinationRule's
// pool goes through).
//
// `defaultEndpoint`, as Istio builds the inbound cluster from it:
//   unset          the app on the port the caller dialled (the inbound side's default)
//   127.0.0.1:P    loopback, port P        [::1]:P   IPv6 loopback, port P
//   0.0.0.0:P      the pod's own address (the app host), port P; `[::]:P` the same for IPv6
//   unix:///path   a Unix domain socket (`unix://@name`: the abstract namespace)
// The port's declared protocol replaces what the workload's services say about it; with `tls`
// terminated here, HTTPS is HTTP and TLS is TCP. Istio applies `tls` only where PeerAuthentication
// leaves the port DISABLE (otherwise mesh mutual TLS keeps the port): that decision is the inbound
// side's, per connection, as the mode is read there.

import { isRecord } from '../config/load.js';
import type { ConnectionPoolSettings, ServerTlsSettings } from '../model/istio.js';
import { parseProtocol } from '../registry/protocol.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { applicableSidecar } from './applicable-sidecar.js';
import { connectionLimits, connectTimeoutFor, DEFAULT_LIMITS, limitsWithConnectTimeout, type ConnectionLimits } from './connection-limits.js';

/** Where an ingress listener's traffic goes. `pod`: the app host (pod address) of that IP family. */
export type IngressEndpoint =
  | { readonly kind: 'ip'; readonly host: '127.0.0.1' | '::1' | 'pod-ipv4' | 'pod-ipv6'; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

export interface IngressListener {
  readonly port: number;
  /** Canonical protocol (registry/protocol.ts), after TLS termination when `tls` is set. */
  readonly protocol: string;
  readonly name?: string;
  /** Undefined: the app on `port`. */
  readonly endpoint?: IngressEndpoint;
  /** SIMPLE, MUTUAL or OPTIONAL_MUTUAL with certificate files; undefined when the port terminates no TLS of its own. */
  readonly tls?: ServerTlsSettings;
  readonly limits: ConnectionLimits;
  /** `name.namespace` of the Sidecar, as Istio names the listener's synthetic service. */
  readonly sidecar: string;
}

export interface SidecarIngress {
  /** By the port the caller dialled (the ingress `port.number`). */
  readonly listeners: ReadonlyMap<number, IngressListener>;
  /** `inboundConnectionPool`: ports without a listener of their own. */
  readonly limits: ConnectionLimits;
}

const NONE: SidecarIngress = Object.freeze({ listeners: new Map(), limits: DEFAULT_LIMITS });
const TERMINATING = new Set(['SIMPLE', 'MUTUAL', 'OPTIONAL_MUTUAL']);
const cache = new WeakMap<Snapshot, SidecarIngress>();

export function sidecarIngressOf(snapshot: Snapshot): SidecarIngress {
  let known = cache.get(snapshot);
  if (known === undefined) {
    known = compile(snapshot);
    cache.set(snapshot, known);
  }
  return known;
}

function compile(snapshot: Snapshot): SidecarIngress {
  const sidecar = applicableSidecar(snapshot);
  const spec = sidecar && isRecord(sidecar.spec) ? sidecar.spec : undefined;
  if (!sidecar || !spec) return NONE;
  // A pool without its own connectTimeout keeps the mesh config's, as a DestinationRule's does.
  const mesh = connectTimeoutFor(snapshot);
  const limits = isRecord(spec.inboundConnectionPool) ? connectionLimits(spec.inboundConnectionPool as ConnectionPoolSettings, mesh) : limitsWithConnectTimeout(mesh);
  const listeners = new Map<number, IngressListener>();
  for (const i of Array.isArray(spec.ingress) ? spec.ingress : []) {
    if (!isRecord(i) || !isRecord(i.port) || typeof i.port.number !== 'number') continue;
    const number = i.port.number;
    // As Istio, the first listener for a port keeps it (validation refuses duplicates).
    if (listeners.has(number)) continue;
    const tls = isRecord(i.tls) && TERMINATING.has(String(i.tls.mode)) ? (i.tls as ServerTlsSettings) : undefined;
    const declared = parseProtocol(typeof i.port.protocol === 'string' ? i.port.protocol : undefined);
    const endpoint = typeof i.defaultEndpoint === 'string' ? parseEndpoint(i.defaultEndpoint) : undefined;
    listeners.set(number, {
      port: number,
      protocol: tls ? afterTlsTermination(declared) : declared,
      ...(typeof i.port.name === 'string' ? { name: i.port.name } : {}),
      ...(endpoint ? { endpoint } : {}),
      ...(tls ? { tls } : {}),
      limits: isRecord(i.connectionPool) ? connectionLimits(i.connectionPool as ConnectionPoolSettings, mesh) : limits,
      sidecar: `${sidecar.metadata.name}.${sidecar.metadata.namespace}`,
    });
  }
  return Object.freeze({ listeners, limits });
}

/** Istio's Protocol.AfterTLSTermination: what is left once the sidecar has taken the TLS off. */
function afterTlsTermination(protocol: string): string {
  if (protocol === 'HTTPS') return 'HTTP';
  if (protocol === 'TLS') return 'TCP';
  return protocol;
}

/** A valid `defaultEndpoint` (the validator has checked the form); undefined for an empty one. */
export function parseEndpoint(text: string): IngressEndpoint | undefined {
  if (text.startsWith('unix://')) {
    const path = text.slice('unix://'.length);
    return path ? { kind: 'unix', path: path.startsWith('@') ? `\0${path.slice(1)}` : path } : undefined;
  }
  const m = /^(127\.0\.0\.1|0\.0\.0\.0|\[::1\]|\[::\]):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const host = ({ '127.0.0.1': '127.0.0.1', '0.0.0.0': 'pod-ipv4', '[::1]': '::1', '[::]': 'pod-ipv6' } as const)[m[1] as '127.0.0.1' | '0.0.0.0' | '[::1]' | '[::]'];
  return { kind: 'ip', host, port: Number(m[2]) };
}
