// The request-limit flags the proxy commands share (gateway and sidecar): header and idle timeouts,
// header count and size, URL length and the Upgrade protocols proxied, each named after Envoy's
// setting (docs/request-limits.md).

import { DEFAULT_HTTP_LIMITS, type HttpLimits } from '../core/proxy/http-limits.js';
import { upgradeProtocols } from '../core/proxy/upgrade-policy.js';
import { UsageError } from './main.js';

export const LIMIT_FLAGS = {
  'request-headers-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'stream-idle-timeout': { type: 'string' },
  'max-headers-count': { type: 'string' },
  'max-request-headers-kb': { type: 'string' },
  'max-url-kb': { type: 'string' },
  'upgrade-types': { type: 'string' },
} as const;

const d = DEFAULT_HTTP_LIMITS;

export const LIMIT_HELP = `  --request-headers-timeout SECONDS
                        a connection must send complete request headers this soon after it opens,
                        or after a request's first byte; else 408 and closed (Envoy
                        request_headers_timeout; default ${d.requestHeadersTimeoutMs / 1000}, 0 turns it off)
  --idle-timeout SECONDS
                        close a connection with no request in flight for this long (Envoy
                        idle_timeout; default ${d.idleTimeoutMs / 1000}, 0 turns it off)
  --stream-idle-timeout SECONDS
                        cut a request in flight whose connection moves no byte either way for this
                        long: a stalled upload or an upstream that never answers (Envoy
                        stream_idle_timeout; default ${d.streamIdleTimeoutMs / 1000}, 0 turns it off)
  --max-headers-count N more request headers than this: 431 (Envoy max_headers_count; default ${d.maxHeadersCount})
  --max-request-headers-kb N
                        more KiB of request headers than this: 431 (Envoy max_request_headers_kb;
                        default ${d.maxRequestHeadersBytes / 1024})
  --max-url-kb N        a longer request target (path and query): 414 (default ${d.maxUrlBytes / 1024})
  --upgrade-types LIST  Upgrade protocols proxied as tunnels, e.g. websocket,spdy/3.1; others get
                        403 (Envoy upgrade_configs; default ${d.upgradeTypes.join(',')}). h2c is never one:
                        it is stripped and the request served as HTTP/1.1`;

type LimitValues = { [K in keyof typeof LIMIT_FLAGS]?: string };

export function parseLimitFlags(values: LimitValues): HttpLimits {
  const number = (flag: keyof typeof LIMIT_FLAGS, fallback: number, what: string, min = 0): number => {
    const text = values[flag];
    if (text === undefined) return fallback;
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n < min) throw new UsageError(`--${flag}: '${text}' is not ${what}`);
    return n;
  };
  const upgradeTypes = values['upgrade-types'] === undefined ? d.upgradeTypes : upgradeProtocols(values['upgrade-types']);
  if (upgradeTypes.includes('h2c')) throw new UsageError(`--upgrade-types: h2c cannot be tunnelled; it is always served as HTTP/1.1`);
  return Object.freeze({
    requestHeadersTimeoutMs: number('request-headers-timeout', d.requestHeadersTimeoutMs / 1000, 'a number of seconds') * 1000,
    idleTimeoutMs: number('idle-timeout', d.idleTimeoutMs / 1000, 'a number of seconds') * 1000,
    streamIdleTimeoutMs: number('stream-idle-timeout', d.streamIdleTimeoutMs / 1000, 'a number of seconds') * 1000,
    maxHeadersCount: Math.floor(number('max-headers-count', d.maxHeadersCount, 'a number of headers', 1)),
    maxRequestHeadersBytes: Math.floor(number('max-request-headers-kb', d.maxRequestHeadersBytes / 1024, 'a size in KiB', 1) * 1024),
    maxUrlBytes: Math.floor(number('max-url-kb', d.maxUrlBytes / 1024, 'a size in KiB', 1) * 1024),
    upgradeTypes: Object.freeze([...upgradeTypes]),
  });
}
