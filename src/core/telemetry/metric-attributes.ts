// The request and connection attributes a Telemetry `tagOverrides` expression can read
// (metric-expression.ts), with Envoy's attribute names (request.host, response.code,
// upstream_peer.app, …), built lazily from the record the observe step already has: nothing is
// computed for a request unless an UPSERT reads it.

import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { RequestRecord } from './access-log.js';
import type { Attributes, Value } from './metric-expression.js';
import { nodeIdOf, TRUST_DOMAIN, type WorkloadInfo } from './workload.js';
import { parseSpiffeId } from '../pki/spiffe.js';
import { responseHeaderMap } from './body-meter.js';

const PEER_FIELDS = ['workload', 'namespace', 'app', 'version', 'service', 'revision', 'cluster'] as const;

/**
 * Envoy's attributes meshgate provides: root → field → whether it is a map (`headers`), or a peer's
 * `labels`, a struct of `{value}` as Istio's peer metadata holds them (`upstream_peer.labels['app'].value`).
 */
const KNOWN: Readonly<Record<string, Readonly<Record<string, 'value' | 'map' | 'labels'>>>> = {
  request: { host: 'value', method: 'value', path: 'value', url_path: 'value', scheme: 'value', protocol: 'value', id: 'value', useragent: 'value', referer: 'value', headers: 'map', size: 'value' },
  response: { code: 'value', code_details: 'value', flags: 'value', grpc_status: 'value', size: 'value', headers: 'map' },
  source: { address: 'value', port: 'value' },
  destination: { address: 'value', port: 'value' },
  connection: { mtls: 'value', requested_server_name: 'value' },
  upstream: { address: 'value', port: 'value' },
  xds: { cluster_name: 'value', route_name: 'value' },
  node: { id: 'value', metadata: 'map' },
  upstream_peer: { ...Object.fromEntries(PEER_FIELDS.map((f) => [f, 'value'])), labels: 'labels' },
  downstream_peer: { ...Object.fromEntries(PEER_FIELDS.map((f) => [f, 'value'])), labels: 'labels' },
};

/** True when a path (`['request', 'headers', '[]']`) names an attribute meshgate has; else why not. */
export function knownAttribute(path: readonly string[]): true | string {
  const [root, name, ...rest] = path;
  const fields = KNOWN[root!];
  // What Wasm plugins (Istio's attributegen, in the Classifying Metrics task) and Envoy filters write.
  if (root === 'filter_state') return "attribute 'filter_state' is not supported: it holds what Wasm plugins (such as attributegen) and Envoy filters write, and meshgate runs none";
  if (!fields) return `attribute '${root}' is not supported (known: ${Object.keys(KNOWN).join(', ')})`;
  if (name === undefined) return true;
  const kind = fields[name];
  if (!kind) return `attribute '${root}.${name}' is not supported (known: ${Object.keys(fields).map((f) => `${root}.${f}`).join(', ')})`;
  if (kind === 'labels' && rest.length === 2 && rest[0] === '[]' && rest[1] === 'value') return true;
  if (rest.length > (kind === 'map' ? 1 : 0)) return `attribute '${path.join('.').replace('.[]', '[…]')}' is not supported`;
  return true;
}

/** The proxy reporting: Envoy's `node` attribute, whose metadata Istio fills from the pod. */
export interface ReportingNode {
  readonly role: 'gateway' | 'sidecar';
  readonly self: WorkloadInfo;
}

const nodes = new WeakMap<WorkloadInfo, Value>();

/** `node.id` and `node.metadata['NAMESPACE' | 'WORKLOAD_NAME' | 'CLUSTER_ID' | 'MESH_ID' | 'SERVICE_ACCOUNT']`, made once per proxy. */
function nodeAttribute(n: ReportingNode | undefined): Value {
  if (!n) return undefined;
  let v = nodes.get(n.self);
  if (!v) {
    const sa = (n.self.principal ? parseSpiffeId(n.self.principal) : undefined)?.serviceAccount;
    const metadata = new Map<string, string>([['namespace', n.self.namespace], ['workload_name', n.self.workload], ['cluster_id', n.self.cluster ?? ''], ['mesh_id', TRUST_DOMAIN], ...(sa ? [['service_account', sa] as [string, string]] : [])]);
    nodes.set(n.self, (v = { id: nodeIdOf(n.role, n.self), metadata }));
  }
  return v;
}

function peer(w: WorkloadInfo | undefined): Value {
  if (!w) return undefined;
  return { workload: w.workload, namespace: w.namespace, app: w.app, version: w.version, service: w.canonicalService, revision: w.canonicalRevision, cluster: w.cluster, labels: peerLabels(w) };
}

/** The labels a peer's metadata carries (app, version, its canonical name and revision); others are unknown. */
function peerLabels(w: WorkloadInfo): Value {
  const out: Record<string, { value: string }> = {};
  const add = (k: string, v: string | undefined): void => {
    if (v !== undefined) out[k] = { value: v };
  };
  add('app', w.app);
  add('version', w.version);
  add('service.istio.io/canonical-name', w.canonicalService);
  add('service.istio.io/canonical-revision', w.canonicalRevision);
  return out;
}

function headerMap(h: Readonly<Record<string, string | string[] | number | undefined>>): ReadonlyMap<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of Object.entries(h)) if (v !== undefined) m.set(k.toLowerCase(), Array.isArray(v) ? v.join(',') : String(v));
  return m;
}

function splitAddress(a: string | undefined): { address?: string; port?: number } {
  const m = a ? /^\[?(.*?)\]?:(\d+)$/.exec(a) : null;
  return m ? { address: m[1]!, port: Number(m[2]) } : {};
}

/** The attributes of one finished HTTP request, as the proxy `node` reporting it sees them. */
export function requestAttributes(r: RequestRecord, node?: ReportingNode): Attributes {
  const req: IncomingMessage | undefined = r.request;
  return (root) => {
    switch (root) {
      case 'request': {
        const q = r.path.indexOf('?');
        return {
          host: r.authority,
          method: r.method,
          path: r.path,
          url_path: q >= 0 ? r.path.slice(0, q) : r.path,
          scheme: req && (req.socket as TLSSocket).encrypted ? 'https' : 'http',
          protocol: r.protocol,
          id: r.requestId,
          useragent: r.userAgent,
          referer: typeof req?.headers.referer === 'string' ? req.headers.referer : undefined,
          headers: headerMap(req?.headers ?? {}),
          size: r.bytesReceived,
        };
      }
      case 'response':
        return {
          code: r.responseCode,
          code_details: r.details,
          flags: r.flags,
          grpc_status: r.grpcStatus !== undefined ? Number(r.grpcStatus) : undefined,
          size: r.bytesSent,
          // Made only when an expression reads it (`response.headers['x-cache']`).
          get headers(): Value {
            return r.response ? responseHeaderMap(r.response) : undefined;
          },
        };
      case 'source':
        return splitAddress(r.downstreamRemoteAddress) as Value;
      case 'destination':
        return { address: req?.socket.localAddress, port: req?.socket.localPort };
      case 'connection':
        return { mtls: r.downstreamPeer !== undefined, requested_server_name: req ? ((req.socket as TLSSocket).servername || undefined) : undefined };
      case 'upstream':
        return splitAddress(r.upstreamHost) as Value;
      case 'xds':
        return { cluster_name: r.upstreamCluster, route_name: r.routeName };
      case 'upstream_peer':
        return peer(r.upstreamPeer);
      case 'downstream_peer':
        return peer(r.downstreamPeer);
      case 'node':
        return nodeAttribute(node);
      default:
        return undefined;
    }
  };
}

/** What is known of one TCP connection: the cluster and peers always; the rest once its line is written. */
export interface ConnectionFacts {
  readonly cluster: string;
  readonly upstreamPeer?: WorkloadInfo | undefined;
  readonly downstreamPeer?: WorkloadInfo | undefined;
  /** Envoy's response flags ('' or '-' for none). */
  readonly flags?: string;
  readonly upstreamHost?: string | undefined;
  readonly downstreamRemoteAddress?: string;
  readonly sni?: string | undefined;
}

/**
 * The attributes of one TCP connection, for tag expressions and access-log filters alike: who is on
 * each end, the cluster, the flags, the addresses; no request (`request.*`, `response.code` and
 * `response.size` are errors, as Envoy has no request, status or body for a TCP connection).
 */
export function connectionAttributes(c: ConnectionFacts, node?: ReportingNode): Attributes {
  return (root) => {
    switch (root) {
      case 'connection':
        return { mtls: c.downstreamPeer !== undefined, requested_server_name: c.sni || undefined };
      case 'response':
        // Envoy sets a TCP connection's flags, not an HTTP status or body size: those stay errors.
        return c.flags === undefined ? undefined : { flags: c.flags || '-' };
      case 'source':
        return splitAddress(c.downstreamRemoteAddress) as Value;
      case 'upstream':
        return splitAddress(c.upstreamHost) as Value;
      case 'xds':
        return { cluster_name: c.cluster };
      case 'upstream_peer':
        return peer(c.upstreamPeer);
      case 'downstream_peer':
        return peer(c.downstreamPeer);
      case 'node':
        return nodeAttribute(node);
      default:
        return undefined;
    }
  };
}
