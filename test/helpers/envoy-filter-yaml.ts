// EnvoyFilter local rate limits as tests write them: the LocalRateLimit message, an HTTP_FILTER patch
// that inserts it where a test says, an HTTP_ROUTE patch with a route's own configuration, and a GET
// on a kept-alive connection (for buckets per downstream connection).

import { request as httpRequest, type Agent } from 'node:http';

/** filter_enabled and filter_enforced at 100%: every request counted, every refusal enforced. */
export const ALWAYS = ['filter_enabled: {default_value: {numerator: 100, denominator: HUNDRED}}', 'filter_enforced: {default_value: {numerator: 100, denominator: HUNDRED}}'];

/** A LocalRateLimit message at `indent` spaces: its @type, stat_prefix and `fields` (YAML lines without indentation). */
export function localRateLimitYaml(indent: number, fields: readonly string[]): string {
  return ['"@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit', 'stat_prefix: http_local_rate_limiter', ...fields].map((l) => `${' '.repeat(indent)}${l}\n`).join('');
}

/**
 * A configPatches entry inserting the filter with `fields`: `position` is the patch's operation and,
 * when it names one, the subFilter (`INSERT_BEFORE envoy.filters.http.router`, `INSERT_FIRST`); with
 * `portNumber`, only the listener of that Gateway port.
 */
export function filterPatchYaml(context: string, position: string, fields: readonly string[], portNumber?: number): string {
  const [operation, subFilter] = position.split(' ');
  return `  - applyTo: HTTP_FILTER
    match:
      context: ${context}
      listener:${portNumber !== undefined ? `\n        portNumber: ${portNumber}` : ''}
        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager${subFilter ? `\n            subFilter: {name: ${subFilter}}` : ''}
    patch:
      operation: ${operation}
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
${localRateLimitYaml(10, fields)}`;
}

/** A configPatches entry giving route `route` of virtual host `vhost` its own configuration. */
export function routePatchYaml(context: string, vhost: string, route: string, fields: readonly string[]): string {
  return `  - applyTo: HTTP_ROUTE
    match:
      context: ${context}
      routeConfiguration:
        vhost: {name: "${vhost}", route: {name: ${route}}}
    patch:
      operation: MERGE
      value:
        typed_per_filter_config:
          envoy.filters.http.local_ratelimit:
${localRateLimitYaml(12, fields)}`;
}

/** An EnvoyFilter in istio-system selecting `labels` (a YAML flow map), with `patches` (from the functions above). */
export function envoyFilterYaml(name: string, labels: string, patches: readonly string[]): string {
  return `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: ${name}, namespace: istio-system}
spec:
  workloadSelector:
    labels: ${labels}
  configPatches:
${patches.join('')}`;
}

/** GET `path` over `agent` (one kept-alive connection when its maxSockets is 1); the status code. */
export function getOver(agent: Agent | false, port: number, host: string, path: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host }, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}
