// What one request is counted as under a rate limit: its client address, the value of a header, or
// the identity in its client certificate. A request without the key (no such header, no verified
// certificate) is not counted by that limit, as Envoy skips a descriptor it cannot build. An EnvoyFilter
// local rate limit counts every request in one bucket, or each downstream connection in its own.

import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { RateLimitKeyKind } from './rate-limit-table.js';

/** What the request path knows about a request; the getters are only called for the keys in use. */
export interface RateLimitSubject {
  readonly headers: IncomingHttpHeaders;
  clientIp(): string;
  principal(): string | undefined;
  /** The downstream connection, unique in this process. */
  connection?(): string;
}

/** Values longer than this are stored as their digest, so a huge header cannot inflate the counters' memory. */
const MAX_KEY_LENGTH = 128;

export function rateLimitKey(kind: RateLimitKeyKind, subject: RateLimitSubject): string | undefined {
  let value: string | undefined;
  if (kind.kind === 'proxy') return '*';
  if (kind.kind === 'connection') return subject.connection?.();
  if (kind.kind === 'clientIp') value = subject.clientIp();
  else if (kind.kind === 'principal') value = subject.principal();
  else {
    const h = subject.headers[kind.name];
    value = Array.isArray(h) ? h.join(',') : h;
  }
  if (value === undefined) return undefined;
  return value.length > MAX_KEY_LENGTH ? `sha256:${createHash('sha256').update(value).digest('base64url')}` : value;
}
