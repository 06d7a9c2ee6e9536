// Envoy's local rate limit filter configuration (envoy.extensions.filters.http.local_ratelimit.v3.
// LocalRateLimit) as an EnvoyFilter patch carries it: given directly (`@type` of that message) or
// wrapped in a TypedStruct (`type_url` + `value`). Read once, into the few facts meshgate enforces:
// a token bucket, the fractions of requests the filter checks and enforces, the reply's status and
// headers, and whether each downstream connection has a bucket of its own. Anything else the message
// may hold is a warning at its exact field: meshgate does not do it, and says so.

import { STATUS_CODES } from 'node:http';
import type { FieldPath } from '../model/resource.js';
import { asInt, asObj, asString, describe, isHeaderName, isObj, isSet, type Checker, type Obj } from '../config/validate-common.js';

export const LOCAL_RATE_LIMIT_FILTER = 'envoy.filters.http.local_ratelimit';
export const LOCAL_RATE_LIMIT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
const TYPED_STRUCTS = new Set(['type.googleapis.com/udpa.type.v1.TypedStruct', 'type.googleapis.com/xds.type.v3.TypedStruct']);
/** Envoy refuses faster refills (the token bucket's documented floor). */
const MIN_FILL_INTERVAL_MS = 50;

export interface TokenBucket {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
}

export interface LocalRateLimitConfig {
  readonly statPrefix: string;
  /** Without one the filter limits nothing (a route's own configuration may give one). */
  readonly tokenBucket?: TokenBucket;
  /** The fraction of requests checked against the bucket (filter_enabled; 0 when unset, as Envoy). */
  readonly enabled: number;
  /** The fraction of checked requests a refusal is enforced for (filter_enforced; 0 when unset). */
  readonly enforced: number;
  /** What a refused request is answered with (status.code; below 400 Envoy answers 429). */
  readonly status: number;
  /** response_headers_to_add: set on refused requests' replies only. */
  readonly responseHeaders: Readonly<Record<string, string>>;
  /** local_rate_limit_per_downstream_connection: a bucket per connection instead of one per proxy. */
  readonly perConnection: boolean;
  /** enable_x_ratelimit_headers DRAFT_VERSION_03: x-ratelimit-limit, -remaining and -reset on every response it counted. */
  readonly xRateLimitHeaders: boolean;
}

/** Fields read here; any other field of the message is warned about and ignored. */
const SUPPORTED = new Set(['stat_prefix', 'token_bucket', 'filter_enabled', 'filter_enforced', 'response_headers_to_add', 'status', 'local_rate_limit_per_downstream_connection', 'enable_x_ratelimit_headers']);

/**
 * A `typed_config` (or a `typed_per_filter_config` entry) at `at`: the LocalRateLimit message, or
 * undefined (with a problem) when it is of another type or cannot be read.
 */
export function readLocalRateLimit(c: Checker, typed: unknown, at: FieldPath): LocalRateLimitConfig | undefined {
  const o = asObj(c, typed, at);
  if (!o) {
    if (!isSet(typed)) c.error(at, `${LOCAL_RATE_LIMIT_FILTER} needs its configuration, @type ${LOCAL_RATE_LIMIT_TYPE}`);
    return undefined;
  }
  const type = o['@type'];
  let message: Obj;
  let messageAt: FieldPath;
  if (typeof type === 'string' && TYPED_STRUCTS.has(type)) {
    if (o.type_url !== LOCAL_RATE_LIMIT_TYPE) {
      c.warn([...at, 'type_url'], `${describe(o.type_url)} is not ${LOCAL_RATE_LIMIT_TYPE}; this patch is ignored`);
      return undefined;
    }
    message = isObj(o.value) ? o.value : {};
    messageAt = [...at, 'value'];
  } else if (type === LOCAL_RATE_LIMIT_TYPE) {
    message = o;
    messageAt = at;
  } else {
    c.warn([...at, '@type'], `${describe(type)} is not ${LOCAL_RATE_LIMIT_TYPE} (nor a TypedStruct of it); this patch is ignored`);
    return undefined;
  }
  for (const field of Object.keys(message)) {
    if (field === '@type' || SUPPORTED.has(field)) continue;
    c.warn([...messageAt, field], `${LOCAL_RATE_LIMIT_FILTER} ${field} is not supported; this field is ignored`);
  }
  const statPrefix = asString(c, message.stat_prefix, [...messageAt, 'stat_prefix']);
  if (!statPrefix) c.error([...messageAt, 'stat_prefix'], 'stat_prefix is required (Envoy refuses the filter without it)');
  const tokenBucket = readTokenBucket(c, message.token_bucket, [...messageAt, 'token_bucket']);
  const statusObj = asObj(c, message.status, [...messageAt, 'status']);
  const code = statusObj ? statusCode(c, statusObj.code, [...messageAt, 'status', 'code']) : undefined;
  const perConnection = message.local_rate_limit_per_downstream_connection;
  if (isSet(perConnection) && typeof perConnection !== 'boolean') c.error([...messageAt, 'local_rate_limit_per_downstream_connection'], `must be true or false, not ${describe(perConnection)}`);
  return {
    statPrefix: statPrefix ?? '',
    ...(tokenBucket ? { tokenBucket } : {}),
    enabled: readFraction(c, message.filter_enabled, [...messageAt, 'filter_enabled']),
    enforced: readFraction(c, message.filter_enforced, [...messageAt, 'filter_enforced']),
    // Envoy answers 429 for a configured status below 400.
    status: code !== undefined && code >= 400 ? code : 429,
    responseHeaders: readHeaders(c, message.response_headers_to_add, [...messageAt, 'response_headers_to_add']),
    perConnection: perConnection === true,
    xRateLimitHeaders: readHeadersVersion(c, message.enable_x_ratelimit_headers, [...messageAt, 'enable_x_ratelimit_headers']),
  };
}

// XRateLimitHeadersRFCVersion: OFF (0) or DRAFT_VERSION_03 (1), by name or number as protobuf JSON allows.
const HEADER_VERSIONS: Readonly<Record<string, boolean>> = { OFF: false, '0': false, DRAFT_VERSION_03: true, '1': true };

function readHeadersVersion(c: Checker, v: unknown, at: FieldPath): boolean {
  if (!isSet(v)) return false;
  const on = HEADER_VERSIONS[String(v)];
  if (on === undefined) c.error(at, `${describe(v)} is not OFF or DRAFT_VERSION_03`);
  return on === true;
}

// Envoy's StatusCode enum names are the reason phrases without spaces (TooManyRequests, ServiceUnavailable).
const CODE_BY_NAME = new Map(Object.entries(STATUS_CODES).map(([code, text]) => [(text ?? '').replace(/[^A-Za-z]/g, ''), Number(code)]));

/** HttpStatus.code: a number, or its StatusCode enum name, as protobuf JSON allows. */
function statusCode(c: Checker, v: unknown, at: FieldPath): number | undefined {
  if (typeof v === 'string') {
    const code = CODE_BY_NAME.get(v);
    if (code === undefined) c.error(at, `${JSON.stringify(v)} is not an HTTP status name (e.g. TooManyRequests, ServiceUnavailable) nor a number`);
    return code;
  }
  return asInt(c, v, at, 100, 599);
}

function readTokenBucket(c: Checker, v: unknown, at: FieldPath): TokenBucket | undefined {
  const o = asObj(c, v, at);
  if (!o) return undefined;
  const maxTokens = asInt(c, o.max_tokens, [...at, 'max_tokens'], 1, 1_000_000_000);
  if (!isSet(o.max_tokens)) c.error([...at, 'max_tokens'], 'max_tokens is required and must be at least 1');
  // tokens_per_fill is a UInt32Value: unset means 1.
  const tokensPerFill = isSet(o.tokens_per_fill) ? asInt(c, o.tokens_per_fill, [...at, 'tokens_per_fill'], 1, 1_000_000_000) : 1;
  const fillIntervalMs = readProtoDuration(c, o.fill_interval, [...at, 'fill_interval']);
  if (fillIntervalMs !== undefined && fillIntervalMs < MIN_FILL_INTERVAL_MS) c.error([...at, 'fill_interval'], `must be at least ${MIN_FILL_INTERVAL_MS}ms (Envoy refuses faster refills)`);
  if (maxTokens === undefined || tokensPerFill === undefined || fillIntervalMs === undefined || fillIntervalMs < MIN_FILL_INTERVAL_MS) return undefined;
  return { maxTokens, tokensPerFill, fillIntervalMs };
}

/** A protobuf Duration in its JSON form (`60s`, `0.5s`), or `{seconds, nanos}`, in milliseconds. */
function readProtoDuration(c: Checker, v: unknown, at: FieldPath): number | undefined {
  if (!isSet(v)) {
    c.error(at, 'fill_interval is required, e.g. 60s');
    return undefined;
  }
  if (isObj(v)) {
    const seconds = Number(v.seconds ?? 0);
    const nanos = Number(v.nanos ?? 0);
    if (Number.isFinite(seconds) && Number.isFinite(nanos) && seconds >= 0 && nanos >= 0) return seconds * 1000 + nanos / 1e6;
  } else if (typeof v === 'string' && /^\d+(\.\d{1,9})?s$/.test(v)) {
    // Protobuf's JSON form is seconds only: `1m` or `1h` is refused, as Istio refuses it.
    return Number(v.slice(0, -1)) * 1000;
  }
  c.error(at, `${describe(v)} is not a protobuf duration: seconds with an s, e.g. 60s or 0.5s`);
  return undefined;
}

const DENOMINATORS: Readonly<Record<string, number>> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/**
 * A RuntimeFractionalPercent: meshgate has no runtime, so its default_value decides. Unset, the
 * fraction is 0: Envoy's default for filter_enabled and filter_enforced, for safety.
 */
function readFraction(c: Checker, v: unknown, at: FieldPath): number {
  const o = asObj(c, v, at);
  if (!o) return 0;
  const value = asObj(c, o.default_value, [...at, 'default_value']);
  if (!value) {
    c.error([...at, 'default_value'], 'default_value is required, e.g. {numerator: 100, denominator: HUNDRED}');
    return 0;
  }
  const numerator = isSet(value.numerator) ? asInt(c, value.numerator, [...at, 'default_value', 'numerator'], 0) : 0;
  const name = value.denominator ?? 'HUNDRED';
  const denominator = typeof name === 'string' ? DENOMINATORS[name] : undefined;
  if (denominator === undefined) c.error([...at, 'default_value', 'denominator'], `${describe(name)} is not HUNDRED, TEN_THOUSAND or MILLION`);
  return Math.min(1, (numerator ?? 0) / (denominator ?? 100));
}

/** HeaderValueOption list: `{header: {key, value}, append | append_action}`; on a reply, each is set once. */
function readHeaders(c: Checker, v: unknown, at: FieldPath): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isSet(v)) return out;
  if (!Array.isArray(v)) {
    c.error(at, `must be a list, not ${describe(v)}`);
    return out;
  }
  v.forEach((item, i) => {
    const header = isObj(item) && isObj(item.header) ? item.header : undefined;
    if (!header) {
      c.error([...at, i, 'header'], 'header is required, e.g. {key: x-local-rate-limit, value: "true"}');
      return;
    }
    const key = asString(c, header.key, [...at, i, 'header', 'key']);
    const value = asString(c, header.value, [...at, i, 'header', 'value']) ?? '';
    if (!key || !isHeaderName(key)) {
      c.error([...at, i, 'header', 'key'], `${describe(header.key)} is not a header name`);
      return;
    }
    if (value.includes('%')) c.warn([...at, i, 'header', 'value'], 'Envoy substitutes %…% command operators here; meshgate sends the text as written');
    out[key.toLowerCase()] = value;
  });
  return out;
}
