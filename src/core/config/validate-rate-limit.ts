// Validation of meshgate.io/v1 RateLimitPolicy (model/rate-limit.ts): the target it attaches to, the
// key each limit counts by, and numbers the counters can hold exactly. Whether the target exists is
// a question about the whole configuration, answered when the snapshot is built (rate-limit-table.ts).

import type { FieldPath } from '../model/resource.js';
import {
  Checker, asEnum, asInt, asObj, asString, atMostOne, checkDuration, eachObj, hostProblem, isDnsLabel, isDnsSubdomain,
  isHeaderName, isSet, knownFields, type Obj,
} from './validate-common.js';

const TARGET_KINDS = ['VirtualService', 'Gateway', 'HTTPRoute'] as const;
const KEY_KINDS = ['clientIp', 'header', 'principal'];
/** Counters are integers in Redis and in memory; far beyond any real limit, well inside 2^53. */
const MAX_REQUESTS = 1_000_000_000;

export function validateRateLimitPolicy(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], ['targetRef', 'limits', 'store']);
  checkTargetRef(c, spec.targetRef, ['spec', 'targetRef']);
  if (!isSet(spec.limits) || (Array.isArray(spec.limits) && spec.limits.length === 0)) {
    c.error(['spec', 'limits'], 'limits needs at least one limit, e.g. {key: {clientIp: {}}, requests: 100, interval: 1m}');
  }
  eachObj(c, spec.limits, ['spec', 'limits'], (limit, at) => checkLimit(c, limit, at));
  asEnum(c, spec.store, ['spec', 'store'], ['memory', 'redis']);
}

function checkTargetRef(c: Checker, v: unknown, at: FieldPath): void {
  if (!isSet(v)) {
    c.error(at, 'targetRef is required, e.g. {kind: VirtualService, name: product}');
    return;
  }
  const ref = asObj(c, v, at);
  if (!ref) return;
  knownFields(c, ref, at, ['kind', 'name', 'namespace', 'route', 'host']);
  if (!isSet(ref.kind)) c.error([...at, 'kind'], 'kind is required: VirtualService or Gateway');
  const kind = asEnum(c, ref.kind, [...at, 'kind'], TARGET_KINDS);
  const name = asString(c, ref.name, [...at, 'name']);
  if (!isSet(ref.name)) c.error([...at, 'name'], `name is required: the ${kind ?? 'resource'} this policy applies to`);
  else if (name !== undefined && !(kind === 'Gateway' ? isDnsLabel(name) : isDnsSubdomain(name))) {
    c.error([...at, 'name'], `${JSON.stringify(name)} is not a ${kind ?? 'resource'} name`);
  }
  const namespace = asString(c, ref.namespace, [...at, 'namespace']);
  if (namespace !== undefined && namespace !== c.resource.metadata.namespace) {
    c.error([...at, 'namespace'], `a RateLimitPolicy applies only to resources in its own namespace (${c.resource.metadata.namespace}); create it in ${namespace} instead`);
  }
  const route = asString(c, ref.route, [...at, 'route']);
  if (route !== undefined) {
    if (kind === 'Gateway') c.error([...at, 'route'], 'route goes with kind VirtualService; a Gateway target is narrowed with host');
    else if (route === '') c.error([...at, 'route'], 'must not be empty: the name of one of the VirtualService http routes');
  }
  const host = asString(c, ref.host, [...at, 'host']);
  if (host !== undefined) {
    if (kind === 'VirtualService' || kind === 'HTTPRoute') c.error([...at, 'host'], `host goes with kind Gateway; a ${kind} target is narrowed with route`);
    else {
      const why = hostProblem(host, false);
      if (why) c.error([...at, 'host'], why);
    }
  }
}

function checkLimit(c: Checker, limit: Obj, at: FieldPath): void {
  knownFields(c, limit, at, ['key', 'requests', 'interval', 'burst']);
  checkKey(c, limit.key, [...at, 'key']);
  if (!isSet(limit.requests)) c.error([...at, 'requests'], 'requests is required: how many requests one key may make per interval');
  else asInt(c, limit.requests, [...at, 'requests'], 1, MAX_REQUESTS);
  if (!isSet(limit.interval)) c.error([...at, 'interval'], 'interval is required, e.g. 1s, 1m or 1h');
  // Counters expire in whole seconds (Redis EXPIRE), so shorter or fractional windows cannot be kept.
  else checkDuration(c, limit.interval, [...at, 'interval'], { wholeSeconds: true });
  if (isSet(limit.burst)) asInt(c, limit.burst, [...at, 'burst'], 0, MAX_REQUESTS);
}

function checkKey(c: Checker, v: unknown, at: FieldPath): void {
  const key = asObj(c, v, at);
  if (!key) {
    if (!isSet(v)) c.error(at, 'key is required: {clientIp: {}}, {header: {name: x-api-key}} or {principal: {}}');
    return;
  }
  knownFields(c, key, at, KEY_KINDS);
  const kind = atMostOne(c, key, at, KEY_KINDS);
  if (kind === undefined) {
    c.error(at, 'key needs one of clientIp: {}, header: {name: ...} or principal: {}');
    return;
  }
  const body = asObj(c, key[kind], [...at, kind]);
  if (!body) return;
  if (kind !== 'header') {
    knownFields(c, body, [...at, kind], []);
    return;
  }
  knownFields(c, body, [...at, 'header'], ['name']);
  const name = asString(c, body.name, [...at, 'header', 'name']);
  if (!isSet(body.name)) c.error([...at, 'header', 'name'], 'name is required: the request header whose value is the key');
  else if (name !== undefined && !isHeaderName(name)) c.error([...at, 'header', 'name'], `${JSON.stringify(name)} is not a valid header name`);
}
