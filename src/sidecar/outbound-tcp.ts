// The sidecar's outbound TCP path: a connection the app opened to a mesh service port that is not
// HTTP (captured, or a `CONNECT host:port` through the outbound port) goes where the snapshot's mesh
// TCP table says (core/routing/mesh-tcp-routes.ts: VirtualService `tcp` routes with their weights,
// else the service's cluster), to an endpoint picked by the cluster's load balancer, and — auto mTLS —
// over mutual TLS with this workload's certificate when the endpoint runs a sidecar (ALPN
// `istio-peer-exchange`, `istio`, so the server sidecar knows it carries TCP), as Istio's client
// sidecar does; a DestinationRule `tls` block decides instead when it has one. Counted in Istio's TCP
// metrics with `reporter="source"`.
// A port whose VirtualService has `tls` rules routes by the SNI of the app's ClientHello: the hello is
// read (the app speaks first in TLS) and handed on untouched with the rest of the bytes.
// TCP to a destination the mesh does not know (captured under ALLOW_ANY, a CONNECT to an unknown
// host) goes to it as it is: Istio's PassthroughCluster, with the mesh's connectTimeout (a
// DestinationRule's for a host the registry declares), counted and logged under that cluster name.

import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { IdentityProvider } from '../core/pki/types.js';
import { BLACKHOLE_CLUSTER, outboundTrafficModeOf, PASSTHROUGH_CLUSTER } from '../core/policy/outbound-traffic-policy.js';
import { forwardTcp } from '../core/proxy/tcp-forward.js';
import { parseClientHello, peekClientHello } from '../core/tls/client-hello.js';
import type { MeshTcpTarget } from '../core/routing/mesh-tcp-routes.js';
import type { SnapshotHolder } from '../core/snapshot/holder.js';
import type { AccessLog } from '../core/telemetry/access-log.js';
import type { UpstreamConnector } from '../core/tls/upstream-connector.js';
import { passThrough, type PassThroughHooks } from '../core/proxy/tcp-passthrough.js';
import { TcpConnectionRecord } from '../core/proxy/tcp-record.js';
import { connectTimeoutFor } from '../core/policy/connection-limits.js';
import { clusterName } from '../core/policy/types.js';
import type { PeerMetadata } from '../core/telemetry/peer-metadata.js';

export interface OutboundTcpDeps {
  readonly holder: SnapshotHolder;
  readonly identity: IdentityProvider;
  /** The proxy's upstream TLS connector (its pools'), shared with HTTP. */
  readonly connector: UpstreamConnector;
  readonly accessLog: AccessLog;
  /** This proxy's peer metadata, for Istio's TCP metadata exchange with server sidecars. */
  readonly peerMetadata?: PeerMetadata;
  readonly random: () => number;
  readonly log: Logger;
}

/** Where a connection passed through goes; `captured`: it is the original destination the app dialled. */
export interface PassThroughTo {
  readonly host: string;
  readonly port: number;
  readonly captured?: boolean;
}

export interface OutboundTcp {
  /** The mesh service port at `address:port` (a cluster IP, a ServiceEntry address), if any. */
  byAddress(address: string, port: number): MeshTcpTarget | undefined;
  /** The mesh service port named `host:port`, if any. */
  byHost(host: string, port: number): MeshTcpTarget | undefined;
  bySni(host: string, port: number): MeshTcpTarget | undefined;
  /**
   * Whether TCP to a destination the mesh does not know may pass through (outboundTrafficPolicy
   * ALLOW_ANY, PassthroughCluster); REGISTRY_ONLY, or no configuration yet, closes it (BlackHoleCluster).
   */
  passesUnknown(): boolean;
  /**
   * Pipes `socket` (after `initial`, bytes already read from it) to the target's route; `dialled` is
   * the captured original destination, which a headless Service's target keeps to.
   */
  forward(socket: Socket, initial: Buffer, target: MeshTcpTarget, dialled?: { readonly address: string; readonly port: number }): void;
  /**
   * Pipes `socket` (after `initial`) to `host:port` as it is (PassthroughCluster). A connection that
   * cannot be made in time fails with UF: `onFailure` answers (a CONNECT's 503), else it is closed.
   */
  passThrough(socket: Socket, initial: Buffer, to: PassThroughTo, hooks?: Pick<PassThroughHooks, 'onConnect' | 'onFailure'>): void;
  /**
   * Closes `socket` (after `initial` was read from it), refused under REGISTRY_ONLY: counted and
   * logged as Envoy's BlackHoleCluster reports it, flag UH, so that what was blocked shows.
   */
  blackHole(socket: Socket, initial: Buffer): void;
}

export function createOutboundTcp(deps: OutboundTcpDeps): OutboundTcp {
  const tls = { connector: deps.connector, identity: deps.identity, ...(deps.peerMetadata ? { peerMetadata: deps.peerMetadata } : {}) };
  const table = () => deps.holder.current()?.meshTcp;
  return {
    byAddress: (address, port) => table()?.byAddress(address, port),
    byHost: (host, port) => table()?.byHost(host, port),
    bySni: (host, port) => table()?.bySni(host, port),
    passesUnknown: () => {
      const snapshot = deps.holder.current();
      return snapshot !== undefined && outboundTrafficModeOf(snapshot) === 'ALLOW_ANY';
    },
    forward: (socket, initial, target, dialled) => {
      // The dialled address is where the app connected: the line's downstream local address, as Envoy's original_dst restores it.
      const original = dialled ? (target.originalDestination ? { originalDestination: dialled, downstreamLocal: dialled } : { downstreamLocal: dialled }) : {};
      const pipe = (bytes: Buffer, sni: string | undefined): void => {
        const route = (sni !== undefined && target.sni?.lookup(sni)) || target.route;
        forwardTcp(socket, bytes, route.destinations, route.totalWeight, { random: deps.random, observer: deps.accessLog, tls, ...original, ...(sni ? { sni } : {}) });
      };
      if (!target.sni) return pipe(initial, undefined);
      const hello = parseClientHello(initial);
      if (hello.state !== 'need-more') return pipe(initial, hello.state === 'ok' ? (hello.sni ?? '') : undefined);
      // The rest of the hello is still on its way: read it with the bytes already in hand in front.
      if (initial.length > 0) socket.unshift(initial);
      void peekClientHello(socket).then(({ data, hello: full }) => pipe(data, full.state === 'ok' ? (full.sni ?? '') : undefined));
    },
    passThrough: (socket, initial, to, hooks = {}) => {
      const snapshot = deps.holder.current();
      const service = snapshot?.registry.lookup(to.host.toLowerCase());
      const declared = service && snapshot?.clusters.get(clusterName(to.port, '', service.hostname));
      passThrough(socket, initial, { ...to, connectTimeoutMs: connectTimeoutFor(snapshot, declared) }, {
        ...hooks,
        record: { observer: deps.accessLog, reporter: 'source', cluster: PASSTHROUGH_CLUSTER, ...(to.captured ? { downstreamLocal: { address: to.host, port: to.port } } : {}) },
        onFailure: (err) => {
          deps.log.debug({ destination: `${to.host}:${to.port}`, error: err.message }, 'passthrough connection failed (UF)');
          if (hooks.onFailure) hooks.onFailure(err);
          else socket.destroy();
        },
      });
    },
    blackHole: (socket, initial) => {
      const record = new TcpConnectionRecord(socket, initial.length, { observer: deps.accessLog, reporter: 'source', cluster: BLACKHOLE_CLUSTER });
      record.flags = 'UH';
      socket.once('close', () => record.finish());
      socket.destroy();
    },
  };
}
