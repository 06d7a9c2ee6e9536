// Gateway API Gateways of meshgate's classes → one Istio Gateway server per listener, plus the
// status of each listener (Accepted, Programmed, ResolvedRefs, Conflicted). Each listener becomes a
// Gateway of its own (`<name>.<listener>`, a name no Istio Gateway can have), so that routes attach
// to exactly the listeners their parentRefs select; listeners on one port still share a listen
// port, and plaintext ones a route config, exactly as Istio servers do.

import {
  CONTROLLER_NAMES, GATEWAY_API_GROUP, type GatewayClassSpec, type GatewayListener, type K8sGatewaySpec, type RouteKind,
} from '../model/gateway-api.js';
import type { GatewayServer, GatewaySpec } from '../model/istio.js';
import { compareByCreation, type FieldPath, type Origin, type Resource } from '../model/resource.js';
import { condition, setCondition, type Condition, type GatewayStatus, type ListenerStatus } from './conditions.js';
import type { ReferenceGrants } from './reference-grants.js';

/** Class names served without a GatewayClass object, as Istio serves `istio` (its examples apply as written). */
export const BUILT_IN_CLASSES: readonly string[] = ['meshgate', 'istio'];

export interface ServedListener {
  readonly gateway: Resource<K8sGatewaySpec>;
  /** `<ns>/<name>` of the Gateway API Gateway. */
  readonly gatewayKey: string;
  readonly index: number;
  readonly listener: GatewayListener;
  readonly status: ListenerStatus;
  /** The route kinds it admits (allowedRoutes.kinds ∩ what its protocol carries). */
  readonly kinds: ReadonlySet<RouteKind>;
  /** Set when the listener is served: the Istio Gateway that stands for it. */
  readonly istioGateway?: Resource<GatewaySpec>;
  /** `<ns>/<name>.<listener>`, the synthetic Gateway's reference. */
  readonly ref: string;
  /** Listener hostname, lower-case, `*` when it has none. */
  readonly hostname: string;
}

export interface ListenerSet {
  readonly listeners: readonly ServedListener[];
  readonly gateways: readonly GatewayStatus[];
  readonly classes: ReadonlyArray<{ readonly resource: Resource; readonly conditions: Condition[] }>;
}

const KINDS_BY_PROTOCOL: Readonly<Record<string, readonly RouteKind[]>> = {
  HTTP: ['HTTPRoute', 'GRPCRoute'],
  HTTPS: ['HTTPRoute', 'GRPCRoute'],
  TLS: ['TLSRoute', 'TCPRoute'],
  TCP: ['TCPRoute'],
};

/** Ports whose listeners cannot share a port with each other: HTTP alone, HTTPS and TLS together (SNI), TCP alone. */
function portFamily(protocol: string): string {
  return protocol === 'HTTPS' || protocol === 'TLS' ? 'tls' : protocol;
}

export function ourClasses(classes: readonly Resource<GatewayClassSpec>[]): { names: Set<string>; statuses: ListenerSet['classes'] } {
  const names = new Set(BUILT_IN_CLASSES);
  const statuses: Array<{ resource: Resource; conditions: Condition[] }> = [];
  for (const c of classes) {
    if (CONTROLLER_NAMES.includes(c.spec.controllerName)) {
      names.add(c.metadata.name);
      statuses.push({ resource: c, conditions: [condition('Accepted', true, 'Accepted', 'handled by meshgate')] });
    } else {
      // Another controller's class of the same name takes it away from us.
      names.delete(c.metadata.name);
    }
  }
  return { names, statuses };
}

export function serveListeners(
  gateways: readonly Resource<K8sGatewaySpec>[],
  classNames: ReadonlySet<string>,
  grants: ReferenceGrants,
  /** Narrow to these `ns/name` (the gateway's --gateway-name); undefined: every Gateway of our classes. */
  only: ReadonlySet<string> | undefined,
): Omit<ListenerSet, 'classes'> {
  const listeners: ServedListener[] = [];
  const statuses: GatewayStatus[] = [];
  // port → family and hostnames already claimed, across every Gateway this proxy serves (they share its ports).
  const ports = new Map<number, { family: string; hosts: Set<string> }>();
  for (const gw of [...gateways].sort(compareByCreation)) {
    const key = `${gw.metadata.namespace}/${gw.metadata.name}`;
    if (!classNames.has(gw.spec.gatewayClassName)) continue;
    if (only && !only.has(key)) continue;
    const gwConditions: Condition[] = [];
    const own: ServedListener[] = [];
    gw.spec.listeners.forEach((l, index) => {
      const served = serveListener(gw, key, l, index, grants, ports);
      own.push(served);
    });
    const programmed = own.filter((l) => l.istioGateway).length;
    const badAddress = (gw.spec.addresses ?? []).find((a) => a.type !== undefined && a.type !== 'IPAddress' && a.type !== 'Hostname');
    const params = gw.spec.infrastructure?.parametersRef;
    // Only a core ConfigMap can hold a Gateway's parameters (as in Istio); another kind rejects the Gateway.
    const badParams = params && ((params.group ?? '') !== '' || params.kind !== 'ConfigMap') ? params : undefined;
    if (badAddress) gwConditions.push(condition('Accepted', false, 'UnsupportedAddress', `address type ${badAddress.type} is not supported`));
    else if (badParams) gwConditions.push(condition('Accepted', false, 'InvalidParameters', `infrastructure.parametersRef ${badParams.group ? `${badParams.group}/` : ''}${badParams.kind} ${badParams.name} is not a ConfigMap`));
    else if (programmed === own.length) gwConditions.push(condition('Accepted', true, 'Accepted'));
    else gwConditions.push(condition('Accepted', programmed > 0, 'ListenersNotValid', `${own.length - programmed} of ${own.length} listeners are not served`));
    gwConditions.push(programmed > 0 && !badAddress && !badParams ? condition('Programmed', true, 'Programmed') : condition('Programmed', false, 'Invalid', 'no listener can be served'));
    statuses.push({ resource: gw, conditions: gwConditions, listeners: own.map((l) => l.status), addresses: [] });
    if (!badAddress && !badParams) listeners.push(...own);
  }
  return { listeners, gateways: statuses };
}

function serveListener(
  gw: Resource<K8sGatewaySpec>,
  gatewayKey: string,
  l: GatewayListener,
  index: number,
  grants: ReferenceGrants,
  ports: Map<number, { family: string; hosts: Set<string> }>,
): ServedListener {
  const conditions: Condition[] = [];
  const hostname = (l.hostname ?? '*').toLowerCase();
  const protocol = l.protocol;
  const mode = l.tls?.mode ?? 'Terminate';
  // A TLSRoute routes the TLS stream itself by SNI: meshgate serves it on Passthrough listeners only;
  // a Terminate TLS listener carries TCPRoutes (the decrypted stream).
  const carried = protocol === 'TLS' && mode === 'Terminate' ? (['TCPRoute'] as const) : (KINDS_BY_PROTOCOL[protocol] ?? []);
  const wanted = l.allowedRoutes?.kinds;
  const kinds = new Set<RouteKind>();
  if (wanted && wanted.length > 0) {
    const bad: string[] = [];
    for (const k of wanted) {
      const group = k.group ?? GATEWAY_API_GROUP;
      if (group === GATEWAY_API_GROUP && (carried as readonly string[]).includes(k.kind)) kinds.add(k.kind as RouteKind);
      else bad.push(`${group}/${k.kind}`);
    }
    if (bad.length > 0) setCondition(conditions, condition('ResolvedRefs', false, 'InvalidRouteKinds', `${bad.join(', ')} cannot attach to a ${protocol} listener`));
  } else {
    for (const k of carried) kinds.add(k);
  }
  const ref = `${gw.metadata.namespace}/${gw.metadata.name}.${l.name}`;
  const status: ListenerStatus = { name: l.name, attachedRoutes: 0, supportedKinds: [...kinds].map((kind) => ({ group: GATEWAY_API_GROUP, kind })), conditions };
  const base = { gateway: gw, gatewayKey, index, listener: l, status, kinds, ref, hostname };
  /** Not served: `type` False (or Conflicted True) for `reason`, and not Programmed. */
  const refuse = (reason: string, message: string, type = 'Accepted'): ServedListener => {
    setCondition(conditions, type === 'Conflicted' ? condition('Conflicted', true, reason, message) : condition(type, false, reason, message));
    setCondition(conditions, condition('Programmed', false, 'Invalid', message));
    fill(conditions);
    return base;
  };

  if (!KINDS_BY_PROTOCOL[protocol]) return refuse('UnsupportedProtocol', `protocol ${protocol} is not supported (HTTP, HTTPS, TLS, TCP are)`);
  if (kinds.size === 0 && protocol === 'TLS' && mode === 'Terminate' && wanted?.some((k) => k.kind === 'TLSRoute')) {
    return refuse('UnsupportedValue', 'TLSRoute on a TLS listener in Terminate mode is not supported; use mode Passthrough, or TCPRoute');
  }
  if (protocol === 'HTTPS' && mode === 'Passthrough') return refuse('UnsupportedValue', 'an HTTPS listener terminates TLS; use protocol TLS for Passthrough');

  // Conflicts with listeners already placed on this port (of this or an older Gateway).
  const onPort = ports.get(l.port);
  if (onPort && onPort.family !== portFamily(protocol)) return refuse('ProtocolConflict', `port ${l.port} already serves ${onPort.family}`, 'Conflicted');
  if (onPort && protocol === 'TCP') return refuse('ProtocolConflict', `port ${l.port} already has a TCP listener`, 'Conflicted');
  if (onPort && onPort.hosts.has(hostname)) return refuse('HostnameConflict', `hostname ${hostname} on port ${l.port} is already served by another listener`, 'Conflicted');

  let credentialName: string | undefined;
  if (mode === 'Terminate' && (protocol === 'HTTPS' || protocol === 'TLS')) {
    const refs = l.tls?.certificateRefs ?? [];
    const first = refs[0];
    if (!first) return refuse('InvalidCertificateRef', 'no certificateRefs', 'ResolvedRefs');
    const group = first.group ?? '';
    const kind = first.kind ?? 'Secret';
    const ns = first.namespace ?? gw.metadata.namespace;
    if (group !== '' || kind !== 'Secret') return refuse('InvalidCertificateRef', `certificateRefs[0] is a ${group ? `${group}/` : ''}${kind}; only Secrets are supported`, 'ResolvedRefs');
    const granted = grants.allows({
      fromGroup: GATEWAY_API_GROUP, fromKind: 'Gateway', fromNamespace: gw.metadata.namespace, toGroup: '', toKind: 'Secret', toNamespace: ns, toName: first.name,
    });
    if (!granted) return refuse('RefNotPermitted', `Secret ${ns}/${first.name} is in another namespace and no ReferenceGrant there allows it`, 'ResolvedRefs');
    credentialName = first.name;
  }

  const claimed = onPort ?? { family: portFamily(protocol), hosts: new Set<string>() };
  claimed.hosts.add(hostname);
  ports.set(l.port, claimed);

  const server: GatewayServer = {
    port: { number: l.port, protocol, name: l.name },
    hosts: [hostname],
    ...(protocol === 'HTTPS' || protocol === 'TLS' ? { tls: mode === 'Passthrough' ? { mode: 'PASSTHROUGH' as const } : { mode: 'SIMPLE' as const, credentialName: credentialName! } } : {}),
  };
  fill(conditions);
  return { ...base, istioGateway: syntheticGateway(gw, l, index, server) };
}

/** Conditions not set to something worse are the good ones. */
function fill(conditions: Condition[]): void {
  const good: Condition[] = [
    condition('Accepted', true, 'Accepted'),
    condition('Programmed', true, 'Programmed'),
    condition('ResolvedRefs', true, 'ResolvedRefs'),
    condition('Conflicted', false, 'NoConflicts'),
  ];
  for (const g of good) if (!conditions.some((c) => c.type === g.type)) conditions.push(g);
}

function syntheticGateway(gw: Resource<K8sGatewaySpec>, l: GatewayListener, index: number, server: GatewayServer): Resource<GatewaySpec> {
  const at: FieldPath = ['spec', 'listeners', index];
  const origin: Origin = { file: gw.origin.file, line: gw.origin.lineOf(at), order: gw.origin.order, lineOf: (p) => gw.origin.lineOf(p.length > 3 ? [...at, ...p.slice(3)] : at) };
  return Object.freeze({
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { ...gw.metadata, name: `${gw.metadata.name}.${l.name}` },
    spec: { servers: [server] },
    origin,
    raw: {},
  });
}
