// The mesh config's `extensionProviders` as the telemetry policy reads them: one entry by name, and
// the address of its collector. Spans and access logs are sent to `http://<service>:<port>`, the
// service name taken as a host name as it is written, plaintext, whatever the protocol.

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The entry of `extensionProviders` named `name`, if there is one. */
export function extensionProvider(mesh: Obj | undefined, name: string): Obj | undefined {
  const list = mesh?.['extensionProviders'];
  if (!Array.isArray(list)) return undefined;
  for (const p of list) if (isObj(p) && p['name'] === name) return p;
  return undefined;
}

/** `http://host:port` of a provider's `service` and `port` (an IPv6 address in brackets); undefined without both. */
export function collectorUrl(spec: Obj): string | undefined {
  const service = spec['service'];
  const port = spec['port'];
  if (typeof service !== 'string' || typeof port !== 'number') return undefined;
  const host = service.includes(':') && !service.startsWith('[') ? `[${service}]` : service;
  return `http://${host}:${port}`;
}
