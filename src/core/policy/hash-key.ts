// The request attribute a consistent-hash load balancer hashes (consistentHash.httpHeaderName,
// httpCookie, useSourceIp or httpQueryParameterName), and the cookie it hands out when a cookie with
// a ttl is configured but the request has none.

import type { ConsistentHashLB } from '../model/istio.js';
import { hash53 } from './hash.js';
import type { PickContext } from './types.js';
import { parseDuration } from '../config/duration.js';

/** A freshly generated affinity cookie: its hash, and the Set-Cookie value the response must carry. */
export interface GeneratedCookie {
  readonly hash: number;
  readonly setCookie: string;
}

/**
 * The request's hash (a plain number, so the common path allocates nothing), a generated cookie, or
 * undefined when the request has no key: the balancer then picks at random, as Envoy does.
 */
export type HashKeyFn = (ctx: PickContext) => number | GeneratedCookie | undefined;

export function hashKeyFor(settings: ConsistentHashLB, random: () => number): HashKeyFn {
  if (typeof settings.httpHeaderName === 'string' && settings.httpHeaderName !== '') {
    const name = settings.httpHeaderName.toLowerCase();
    return (ctx) => {
      const v = ctx.headers[name];
      if (v === undefined) return undefined;
      return hash53(Array.isArray(v) ? v.join(',') : v);
    };
  }
  if (settings.httpCookie && typeof settings.httpCookie.name === 'string' && settings.httpCookie.name !== '') {
    const { name, path, ttl } = settings.httpCookie;
    const ttlSeconds = ttl === undefined ? undefined : durationSeconds(ttl);
    const attributes = `${path ? `; Path=${path}` : ''}${ttlSeconds ? `; Max-Age=${ttlSeconds}` : ''}; HttpOnly`;
    return (ctx) => {
      const header = ctx.headers.cookie;
      const present = cookieValue(Array.isArray(header) ? header.join('; ') : header, name);
      if (present !== undefined) return hash53(present);
      // Without a ttl there is nothing to generate; with ttl 0 the cookie lives for the session.
      if (ttlSeconds === undefined) return undefined;
      const value = hex32(random()) + hex32(random());
      return { hash: hash53(value), setCookie: `${name}=${value}${attributes}` };
    };
  }
  if (settings.useSourceIp === true) {
    return (ctx) => (ctx.sourceIp ? hash53(ctx.sourceIp) : undefined);
  }
  if (typeof settings.httpQueryParameterName === 'string' && settings.httpQueryParameterName !== '') {
    const name = settings.httpQueryParameterName;
    return (ctx) => {
      const v = ctx.query.get(name);
      return v === undefined ? undefined : hash53(v);
    };
  }
  return () => undefined;
}

/** The value of cookie `name` in a Cookie header, without allocating until it is found. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    let s = start;
    while (s < end && header.charCodeAt(s) === 32) s++;
    if (header.startsWith(name, s) && header.charCodeAt(s + name.length) === 61 /* = */ && s + name.length < end) {
      let value = header.slice(s + name.length + 1, end).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return value;
    }
    start = end + 1;
  }
  return undefined;
}

/** Whole seconds of a duration (`3600s`, `1h30m`, `0.5s`); undefined when it cannot be read or is negative. */
export function durationSeconds(text: string): number | undefined {
  const ms = parseDuration(text);
  return ms === undefined || ms < 0 ? undefined : Math.floor(ms / 1000);
}

function hex32(r: number): string {
  return (Math.floor(r * 4294967296) >>> 0).toString(16).padStart(8, '0');
}
