// Validation of the per-route policies of an HTTP route: retries, fault injection and CORS
// (docs/reference/routing.md), with the enumerations Envoy accepts for them.

import type { FieldPath } from '../model/resource.js';
import {
  Checker, asBool, asEnum, asInt, asList, asObj, asString, atMostOne, checkDuration, checkPercent, isHeaderName, isObj, isSet,
  knownFields, stringList, type Obj,
} from './validate-common.js';
import { checkStringMatch } from './validate-string-match.js';

const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'retriable-headers', 'envoy-ratelimited', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);
/** gRPC status names in code order: a name's index is its number (UNAVAILABLE = 14). */
export const GRPC_STATUS: readonly string[] = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',
  'DATA_LOSS', 'UNAUTHENTICATED',
];
const CORS_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*']);

export function checkRetries(c: Checker, v: unknown, at: FieldPath): void {
  const r = asObj(c, v, at);
  if (!r) return;
  knownFields(c, r, at, ['attempts', 'perTryTimeout', 'retryOn', 'retryRemoteLocalities', 'retryIgnorePreviousHosts', 'backoff']);
  const attempts = asInt(c, r.attempts, [...at, 'attempts'], 0) ?? 0;
  checkDuration(c, r.perTryTimeout, [...at, 'perTryTimeout']);
  checkDuration(c, r.backoff, [...at, 'backoff']);
  asBool(c, r.retryRemoteLocalities, [...at, 'retryRemoteLocalities']);
  asBool(c, r.retryIgnorePreviousHosts, [...at, 'retryIgnorePreviousHosts']);
  const retryOn = asString(c, r.retryOn, [...at, 'retryOn']);
  for (const policy of retryOn ? retryOn.split(',') : []) {
    const p = policy.trim();
    const code = /^\d+$/.test(p) ? Number(p) : undefined;
    if (!RETRY_ON.has(p) && !(code !== undefined && code >= 100 && code <= 599)) c.error([...at, 'retryOn'], `${JSON.stringify(p)} is not a retryOn condition or status code`);
  }
  if (attempts === 0) {
    for (const f of ['perTryTimeout', 'retryOn', 'retryRemoteLocalities']) {
      if (isSet(r[f])) c.error([...at, f], 'retries are off (attempts is 0); set attempts to use this');
    }
  }
}

export function checkFault(c: Checker, v: unknown, at: FieldPath): void {
  const f = asObj(c, v, at);
  if (!f) return;
  knownFields(c, f, at, ['delay', 'abort']);
  if (!isSet(f.delay) && !isSet(f.abort)) c.error(at, 'fault needs a delay, an abort, or both');
  const delay = asObj(c, f.delay, [...at, 'delay']);
  if (delay) {
    const dAt = [...at, 'delay'];
    knownFields(c, delay, dAt, ['fixedDelay', 'exponentialDelay', 'percentage', 'percent']);
    if (isSet(delay.exponentialDelay)) c.error([...dAt, 'exponentialDelay'], 'exponentialDelay is not supported; use fixedDelay');
    else if (!isSet(delay.fixedDelay)) c.error([...dAt, 'fixedDelay'], 'fixedDelay is required, e.g. 5s');
    checkDuration(c, delay.fixedDelay, [...dAt, 'fixedDelay']);
    checkFaultPercent(c, delay, dAt, 'delay');
  }
  const abort = asObj(c, f.abort, [...at, 'abort']);
  if (abort) {
    const aAt = [...at, 'abort'];
    knownFields(c, abort, aAt, ['httpStatus', 'grpcStatus', 'http2Error', 'percentage']);
    const kind = atMostOne(c, abort, aAt, ['httpStatus', 'grpcStatus', 'http2Error']);
    if (kind === undefined) c.warn(aAt, 'abort has no httpStatus or grpcStatus; it does nothing');
    if (kind === 'http2Error') c.error([...aAt, 'http2Error'], 'http2Error aborts are not supported; use httpStatus or grpcStatus');
    if (kind === 'httpStatus') {
      const status = asInt(c, abort.httpStatus, [...aAt, 'httpStatus']);
      if (status !== undefined && (status < 200 || status > 599)) c.error([...aAt, 'httpStatus'], `status ${status} must be between 200 and 599`);
    }
    if (kind === 'grpcStatus') asEnum(c, abort.grpcStatus, [...aAt, 'grpcStatus'], GRPC_STATUS);
    checkFaultPercent(c, abort, aAt, 'abort');
  }
}

function checkFaultPercent(c: Checker, o: Obj, at: FieldPath, what: string): void {
  if (isSet(o.percent)) {
    asInt(c, o.percent, [...at, 'percent'], 0, 100);
    c.warn([...at, 'percent'], 'percent is deprecated; use percentage: {value: N}');
  } else if (!isSet(o.percentage)) {
    // The default changed from 100% to 0%; say so, since a silent no-op is hard to debug.
    c.warn(at, `${what} has no percentage, so it never fires (the default is 0%); set percentage: {value: 100}`);
  }
  checkPercent(c, o.percentage, [...at, 'percentage']);
}

export function checkCors(c: Checker, v: unknown, at: FieldPath): void {
  const p = asObj(c, v, at);
  if (!p) return;
  knownFields(c, p, at, ['allowOrigins', 'allowOrigin', 'allowMethods', 'allowHeaders', 'exposeHeaders', 'maxAge', 'allowCredentials', 'unmatchedPreflights']);
  const origins = (o: unknown): boolean => Array.isArray(o) && o.length > 0;
  if (!origins(p.allowOrigins) && !origins(p.allowOrigin)) c.warn(at, 'corsPolicy allows no origin, so it never adds CORS headers; list allowOrigins');
  asList(c, p.allowOrigins, [...at, 'allowOrigins'])?.forEach((o, i) => {
    const oAt = [...at, 'allowOrigins', i];
    checkStringMatch(c, o, oAt, 'field');
    // Empty prefix and regex are reported by checkStringMatch; an empty exact would match no origin.
    if (isObj(o) && o.exact === '') c.error([...oAt, 'exact'], 'an origin must not be empty');
  });
  if (isSet(p.allowOrigin)) {
    stringList(c, p.allowOrigin, [...at, 'allowOrigin']);
    c.warn([...at, 'allowOrigin'], 'allowOrigin is deprecated; use allowOrigins: [{exact: ...}]');
  }
  for (const { value, at: mAt } of stringList(c, p.allowMethods, [...at, 'allowMethods'])) {
    if (!CORS_METHODS.has(value)) c.error(mAt, `${JSON.stringify(value)} is not an HTTP method (use upper case, e.g. GET)`);
  }
  for (const f of ['allowHeaders', 'exposeHeaders']) {
    for (const { value, at: hAt } of stringList(c, p[f], [...at, f])) {
      if (value !== '*' && !isHeaderName(value)) c.error(hAt, `${JSON.stringify(value)} is not a valid header name`);
    }
  }
  checkDuration(c, p.maxAge, [...at, 'maxAge'], { wholeSeconds: true });
  asBool(c, p.allowCredentials, [...at, 'allowCredentials']);
  asEnum(c, p.unmatchedPreflights, [...at, 'unmatchedPreflights'], ['UNSPECIFIED', 'FORWARD', 'IGNORE']);
}
