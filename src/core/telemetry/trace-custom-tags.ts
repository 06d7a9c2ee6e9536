// A Telemetry's `tracing[].customTags`: tags added to every span the proxy reports, as Istio turns
// them into Envoy's custom tags. A `literal` is its value; an `environment` tag is the variable of
// the proxy's own environment (read once, when the policy is built), else its `defaultValue`; a
// `header` tag is the request's header, else its `defaultValue`. A tag with no value and no default
// is left off the span, as Envoy leaves it. `formatter` (an access-log operator) is not evaluated.

import type { IncomingHttpHeaders } from 'node:http';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (o: Obj, k: string): string | undefined => (typeof o[k] === 'string' ? o[k] : undefined);

/** Fixed tags (literals, the environment's), and the request headers some tags read. */
export interface TraceCustomTags {
  readonly fixed: Readonly<Record<string, string>>;
  /** Tag name, header name (lower case), and the value when the request has no such header. */
  readonly headers: ReadonlyArray<readonly [tag: string, header: string, fallback: string | undefined]>;
}

/** The tags of one `customTags` map; undefined when it names none. */
export function customTagsFrom(spec: unknown, env: NodeJS.ProcessEnv): TraceCustomTags | undefined {
  if (!isObj(spec)) return undefined;
  const fixed: Record<string, string> = {};
  const headers: [string, string, string | undefined][] = [];
  for (const [tag, t] of Object.entries(spec)) {
    if (!isObj(t)) continue;
    if (isObj(t['literal'])) {
      const v = str(t['literal'], 'value');
      if (v !== undefined) fixed[tag] = v;
    } else if (isObj(t['environment'])) {
      const name = str(t['environment'], 'name');
      const v = (name !== undefined && env[name]) || str(t['environment'], 'defaultValue');
      if (v) fixed[tag] = v;
    } else if (isObj(t['header'])) {
      const name = str(t['header'], 'name');
      if (name) headers.push([tag, name.toLowerCase(), str(t['header'], 'defaultValue') || undefined]);
    }
  }
  return Object.keys(fixed).length === 0 && headers.length === 0 ? undefined : { fixed, headers };
}

/** The tags' values for one request, read from the headers it arrived with. */
export function customTagValues(tags: TraceCustomTags, requestHeaders: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = { ...tags.fixed };
  for (const [tag, header, fallback] of tags.headers) {
    const v = requestHeaders[header];
    const value = Array.isArray(v) ? v.join(',') : v;
    if (value) out[tag] = value;
    else if (fallback !== undefined) out[tag] = fallback;
  }
  return out;
}
